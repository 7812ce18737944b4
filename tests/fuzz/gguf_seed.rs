//! A tiny GGUF written here, with the metadata keys of SmolLM2-135M-Instruct's GGUF (llama
//! architecture, gpt2 byte-level BPE tokenizer) and the weights of the `llama` fixture model, so
//! the seed loads and mutations reach every stage (header, metadata → config, tokenizer,
//! tensors). A file-level model ([`Gguf`]) lets mutations break the structure in ways a byte
//! flip rarely finds: huge declared counts and dims, wrong dtypes, NaN hyperparameters,
//! duplicated and missing keys.

use proptest::prelude::*;

use crate::common::fixture_dir;
use crate::mutate::HUGE_U64;

/// A metadata value. `RawArray` declares `len` elements of type `elem` and writes none.
#[derive(Debug, Clone)]
pub enum Meta {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    RawArray {
        elem: u32,
        len: u64,
    },
    /// A value type id GGUF does not define.
    BadType(u32),
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order (innermost first).
    pub dims: Vec<u64>,
    pub dtype: u32,
    /// Into the data section; `None`: where the writer puts the data.
    pub offset: Option<u64>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Gguf {
    pub meta: Vec<(String, Meta)>,
    pub tensors: Vec<TensorInfo>,
}

const ALIGN: usize = 32;

impl Gguf {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0x4655_4747u32.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.meta.len() as u64).to_le_bytes());
        for (k, v) in &self.meta {
            put_str(&mut b, k);
            put_value(&mut b, v, true);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            put_str(&mut b, &t.name);
            b.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(t.dtype.to_le_bytes());
            b.extend(t.offset.unwrap_or(offset).to_le_bytes());
            offsets.push(offset);
            offset += t.data.len().next_multiple_of(ALIGN) as u64;
        }
        b.resize(b.len().next_multiple_of(ALIGN), 0);
        for t in &self.tensors {
            b.extend(&t.data);
            b.resize(b.len().next_multiple_of(ALIGN), 0);
        }
        b
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

fn put_value(b: &mut Vec<u8>, v: &Meta, with_type: bool) {
    let ty = |b: &mut Vec<u8>, t: u32| {
        if with_type {
            b.extend(t.to_le_bytes())
        }
    };
    match v {
        Meta::U32(x) => {
            ty(b, 4);
            b.extend(x.to_le_bytes())
        }
        Meta::I32(x) => {
            ty(b, 5);
            b.extend(x.to_le_bytes())
        }
        Meta::F32(x) => {
            ty(b, 6);
            b.extend(x.to_le_bytes())
        }
        Meta::Bool(x) => {
            ty(b, 7);
            b.push(*x as u8)
        }
        Meta::Str(s) => {
            ty(b, 8);
            put_str(b, s)
        }
        Meta::U64(x) => {
            ty(b, 10);
            b.extend(x.to_le_bytes())
        }
        Meta::F64(x) => {
            ty(b, 12);
            b.extend(x.to_le_bytes())
        }
        Meta::Strs(items) => {
            ty(b, 9);
            b.extend(8u32.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            items.iter().for_each(|s| put_str(b, s));
        }
        Meta::I32s(items) => {
            ty(b, 9);
            b.extend(5u32.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            items.iter().for_each(|x| b.extend(x.to_le_bytes()));
        }
        Meta::RawArray { elem, len } => {
            ty(b, 9);
            b.extend(elem.to_le_bytes());
            b.extend(len.to_le_bytes());
        }
        Meta::BadType(t) => {
            ty(b, *t);
            b.extend(0u64.to_le_bytes())
        }
    }
}

/// GGUF name of a Hugging Face tensor name of a Llama model.
fn gguf_name(hf: &str) -> String {
    let hf = hf.strip_prefix("model.").unwrap_or(hf);
    match hf {
        "embed_tokens.weight" => return "token_embd.weight".into(),
        "norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = hf.strip_prefix("layers.").expect("a layer tensor");
    let (layer, tail) = rest.split_once('.').expect("layer.name");
    let (module, kind) = tail.rsplit_once('.').expect("module.kind");
    let name = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        other => panic!("unexpected llama tensor {other}"),
    };
    format!("blk.{layer}.{name}.{kind}")
}

/// The seed: the `llama` fixture (2 layers, d_model 64, 4 heads / 2 KV heads, vocab 384) as an
/// f32 GGUF with SmolLM2's metadata keys.
pub fn seed() -> Gguf {
    let dir = fixture_dir("llama");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let n = |k: &str| cfg[k].as_u64().unwrap() as u32;
    let tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap())
            .unwrap();
    let mut vocab: Vec<(String, u64)> = tok["model"]["vocab"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    vocab.sort_by_key(|(_, id)| *id);
    let tokens: Vec<String> = vocab.into_iter().map(|(k, _)| k).collect();
    let merges: Vec<String> = tok["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(p) => {
                format!("{} {}", p[0].as_str().unwrap(), p[1].as_str().unwrap())
            }
            other => panic!("unexpected merge {other}"),
        })
        .collect();
    let types: Vec<i32> = (0..tokens.len())
        .map(|i| if i == 0 { 3 } else { 1 })
        .collect();
    let s = |x: &str| Meta::Str(x.to_string());
    let meta = vec![
        ("general.architecture".to_string(), s("llama")),
        ("general.type".into(), s("model")),
        ("general.name".into(), s("Tiny Llama fixture")),
        ("general.file_type".into(), Meta::U32(0)),
        ("general.quantization_version".into(), Meta::U32(2)),
        (
            "llama.block_count".into(),
            Meta::U32(n("num_hidden_layers")),
        ),
        (
            "llama.context_length".into(),
            Meta::U32(n("max_position_embeddings")),
        ),
        ("llama.embedding_length".into(), Meta::U32(n("hidden_size"))),
        (
            "llama.feed_forward_length".into(),
            Meta::U32(n("intermediate_size")),
        ),
        (
            "llama.attention.head_count".into(),
            Meta::U32(n("num_attention_heads")),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Meta::U32(n("num_key_value_heads")),
        ),
        ("llama.rope.freq_base".into(), Meta::F32(10000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Meta::F32(1e-5),
        ),
        ("llama.rope.dimension_count".into(), Meta::U32(16)),
        ("llama.vocab_size".into(), Meta::U32(tokens.len() as u32)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        ("tokenizer.ggml.tokens".into(), Meta::Strs(tokens)),
        ("tokenizer.ggml.token_type".into(), Meta::I32s(types)),
        ("tokenizer.ggml.merges".into(), Meta::Strs(merges)),
        ("tokenizer.ggml.bos_token_id".into(), Meta::U32(0)),
        ("tokenizer.ggml.eos_token_id".into(), Meta::U32(0)),
        ("tokenizer.ggml.unknown_token_id".into(), Meta::U32(0)),
        ("tokenizer.ggml.padding_token_id".into(), Meta::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), Meta::Bool(false)),
    ];
    let weights =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let tensors = names
        .into_iter()
        .map(|name| {
            let t = &weights[name];
            let data: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            TensorInfo {
                name: gguf_name(name),
                dims: t.dims().iter().rev().map(|&d| d as u64).collect(),
                dtype: 0, // F32
                offset: None,
                data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            }
        })
        .collect();
    Gguf { meta, tensors }
}

/// Keys a mutation may add (optional keys the reader looks at) besides the seed's own.
const EXTRA_KEYS: [&str; 8] = [
    "llama.rope.scaling.type",
    "llama.rope.scaling.factor",
    "llama.attention.key_length",
    "general.alignment",
    "llama.attention.sliding_window",
    "qwen2.attention.head_count",
    "gemma3.embedding_length",
    "tokenizer.ggml.add_bos_token",
];

/// A structural change to a [`Gguf`]; indices are taken modulo the current counts.
#[derive(Debug, Clone)]
pub enum GgufMutation {
    DropKey(u16),
    DuplicateKey(u16),
    /// Key `key` of the seed's keys followed by [`EXTRA_KEYS`] gets `value` (added if absent).
    SetMeta {
        key: u16,
        value: Meta,
    },
    DropTensor(u16),
    DuplicateTensor(u16),
    SetDim {
        tensor: u16,
        dim: u8,
        value: u64,
    },
    /// Extra dimensions (GGUF allows 4; more must be refused).
    AddDims {
        tensor: u16,
        count: u8,
    },
    SetDtype {
        tensor: u16,
        dtype: u32,
    },
    SetOffset {
        tensor: u16,
        value: u64,
    },
}

fn hostile_meta() -> impl Strategy<Value = Meta> {
    let fixed = vec![
        Meta::U32(0),
        Meta::U32(1),
        Meta::U32(3),
        Meta::U32(u32::MAX),
        Meta::I32(-1),
        Meta::U64(1 << 60),
        Meta::U64(u64::MAX),
        Meta::F32(f32::NAN),
        Meta::F32(f32::INFINITY),
        Meta::F32(-1.0),
        Meta::F32(0.0),
        Meta::F64(f64::NAN),
        Meta::Bool(true),
        Meta::Str(String::new()),
        Meta::Str("linear".into()),
        Meta::Str("qwen2".into()),
        Meta::Str("gemma3".into()),
        Meta::Str("llama".into()),
        Meta::Str("mistral".into()),
        Meta::Strs(vec![]),
        Meta::Strs(vec!["a".into(), "a b".into()]),
        Meta::I32s(vec![-7; 3]),
        Meta::RawArray {
            elem: 8,
            len: 1 << 60,
        },
        Meta::RawArray {
            elem: 9,
            len: 1 << 20,
        },
        Meta::RawArray {
            elem: 10,
            len: u64::MAX,
        },
        Meta::RawArray { elem: 99, len: 1 },
        Meta::BadType(13),
        Meta::BadType(u32::MAX),
    ];
    prop_oneof![
        5 => prop::sample::select(fixed),
        1 => any::<u32>().prop_map(Meta::U32),
        1 => any::<f32>().prop_map(Meta::F32),
    ]
}

pub fn gguf_mutation() -> impl Strategy<Value = GgufMutation> {
    let t = any::<u16>();
    prop_oneof![
        2 => any::<u16>().prop_map(GgufMutation::DropKey),
        1 => any::<u16>().prop_map(GgufMutation::DuplicateKey),
        6 => (any::<u16>(), hostile_meta()).prop_map(|(key, value)| GgufMutation::SetMeta { key, value }),
        1 => t.prop_map(GgufMutation::DropTensor),
        1 => t.prop_map(GgufMutation::DuplicateTensor),
        3 => (t, 0u8..4, prop_oneof![prop::sample::select(&HUGE_U64[..]), 0u64..600])
            .prop_map(|(tensor, dim, value)| GgufMutation::SetDim { tensor, dim, value }),
        1 => (t, 1u8..8).prop_map(|(tensor, count)| GgufMutation::AddDims { tensor, count }),
        2 => (t, prop_oneof![0u32..42, Just(u32::MAX)])
            .prop_map(|(tensor, dtype)| GgufMutation::SetDtype { tensor, dtype }),
        2 => (t, prop::sample::select(&HUGE_U64[..]))
            .prop_map(|(tensor, value)| GgufMutation::SetOffset { tensor, value }),
    ]
}

pub fn apply(g: &mut Gguf, m: &GgufMutation) {
    let nk = g.meta.len();
    let nt = g.tensors.len();
    match m {
        GgufMutation::DropKey(i) if nk > 0 => {
            g.meta.remove(*i as usize % nk);
        }
        GgufMutation::DuplicateKey(i) if nk > 0 => {
            let kv = g.meta[*i as usize % nk].clone();
            g.meta.push(kv);
        }
        GgufMutation::SetMeta { key, value } => {
            let k = *key as usize % (nk + EXTRA_KEYS.len());
            if k < nk {
                g.meta[k].1 = value.clone();
            } else {
                g.meta.push((EXTRA_KEYS[k - nk].to_string(), value.clone()));
            }
        }
        GgufMutation::DropTensor(i) if nt > 0 => {
            g.tensors.remove(*i as usize % nt);
        }
        GgufMutation::DuplicateTensor(i) if nt > 0 => {
            let t = g.tensors[*i as usize % nt].clone();
            g.tensors.push(t);
        }
        GgufMutation::SetDim { tensor, dim, value } if nt > 0 => {
            let t = &mut g.tensors[*tensor as usize % nt];
            if !t.dims.is_empty() {
                let n = t.dims.len();
                t.dims[*dim as usize % n] = *value;
            }
        }
        GgufMutation::AddDims { tensor, count } if nt > 0 => {
            let t = &mut g.tensors[*tensor as usize % nt];
            t.dims.resize(t.dims.len() + *count as usize, 1);
        }
        GgufMutation::SetDtype { tensor, dtype } if nt > 0 => {
            g.tensors[*tensor as usize % nt].dtype = *dtype;
        }
        GgufMutation::SetOffset { tensor, value } if nt > 0 => {
            g.tensors[*tensor as usize % nt].offset = Some(*value);
        }
        _ => {}
    }
}
