//! Model files: GGUF (header, metadata → config and tokenizer, tensors), a Hugging Face folder's
//! `model.safetensors`, `model.safetensors.index.json`, `config.json` and `tokenizer.json`. All
//! go through the public loaders (`load_path`, `ModelConfig::from_hf_json`,
//! `Tokenizer::from_file`).

use std::path::Path;
use std::sync::OnceLock;

use lantern_engine::{load_path, ModelConfig, Tokenizer};
use proptest::prelude::*;
use serde_json::Value;

use crate::common::{fixture_dir, quiet};
use crate::gguf_seed::{self, gguf_mutation, Gguf};
use crate::harness::{check, config, scratch};
use crate::mutate::{apply_all, json_mutations, mutate_json_text, mutations};

/// Fixture folders used as seeds (one of each config family).
const MODELS: [&str; 4] = ["gpt2", "llama", "gemma3", "gpt_neox"];

fn seed_gguf() -> &'static Gguf {
    static SEED: OnceLock<Gguf> = OnceLock::new();
    SEED.get_or_init(gguf_seed::seed)
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Copies a fixture model folder into `dir`.
fn copy_model(name: &str, dir: &Path) {
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir(name).join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn gguf_seed_loads() {
    let dir = scratch("gguf-seed");
    let path = dir.join("seed.gguf");
    std::fs::write(&path, seed_gguf().to_bytes()).unwrap();
    let lm = load_path(&path, &quiet()).unwrap();
    assert_eq!(lm.model.config().n_layers, 2);
    assert_eq!(lm.tokenizer.vocab_size(), 384);
}

proptest! {
    #![proptest_config(config())]

    /// GGUF: structural mutations of the seed, then byte mutations of the file.
    #[test]
    fn gguf(
        gms in prop::collection::vec(gguf_mutation(), 0..4),
        ms in prop::collection::vec(crate::mutate::mutation(), 0..3),
    ) {
        thread_local!(static DIR: crate::common::ScratchDir = scratch("gguf"));
        let mut g = seed_gguf().clone();
        gms.iter().for_each(|m| gguf_seed::apply(&mut g, m));
        let bytes = apply_all(&g.to_bytes(), &ms);
        let path = DIR.with(|d| d.join("model.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        check("gguf", &bytes, || load_path(&path, &quiet()))?;
    }

    /// `model.safetensors`: its JSON header mutated (dtypes, shapes, offsets, missing tensors),
    /// then byte mutations (truncation, huge header length).
    #[test]
    fn safetensors(
        model in 0..MODELS.len(),
        js in json_mutations(3),
        ms in prop::collection::vec(crate::mutate::mutation(), 0..3),
    ) {
        thread_local!(static DIRS: Vec<crate::common::ScratchDir> = MODELS
            .iter()
            .map(|m| {
                let d = scratch(&format!("safetensors-{m}"));
                copy_model(m, &d);
                d
            })
            .collect());
        let seed = std::fs::read(fixture_dir(MODELS[model]).join("model.safetensors")).unwrap();
        let header_len = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
        let mut header: Value = serde_json::from_slice(&seed[8..8 + header_len]).unwrap();
        crate::mutate::apply_json(&mut header, &js);
        let text = serde_json::to_vec(&header).unwrap();
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(&text);
        bytes.extend(&seed[8 + header_len..]);
        let bytes = apply_all(&bytes, &ms);
        let dir = DIRS.with(|d| d[model].to_path_buf());
        std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
        check("safetensors", &bytes, || load_path(&dir, &quiet()))?;
    }

    /// `model.safetensors.index.json` naming the shards: bad shard names (outside the folder,
    /// missing, not strings), missing `weight_map`, broken JSON.
    #[test]
    fn safetensors_index(
        js in json_mutations(3),
        ms in prop::collection::vec(crate::mutate::mutation(), 0..2),
    ) {
        thread_local!(static DIR: crate::common::ScratchDir = {
            let d = scratch("index");
            copy_model("llama", &d);
            std::fs::rename(d.join("model.safetensors"), d.join("model-00001-of-00001.safetensors")).unwrap();
            d
        });
        static SEED: OnceLock<Value> = OnceLock::new();
        let seed = SEED.get_or_init(|| {
            let st = std::fs::read(fixture_dir("llama").join("model.safetensors")).unwrap();
            let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
            let header: Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
            let map: serde_json::Map<String, Value> = header
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "__metadata__")
                .map(|k| (k.clone(), Value::from("model-00001-of-00001.safetensors")))
                .collect();
            serde_json::json!({"metadata": {"total_size": st.len()}, "weight_map": map})
        });
        let bytes = mutate_json_text(seed, &js, &ms);
        let dir = DIR.with(|d| d.to_path_buf());
        std::fs::write(dir.join("model.safetensors.index.json"), &bytes).unwrap();
        check("safetensors_index", &bytes, || load_path(&dir, &quiet()))?;
    }

    /// `config.json` alone (the parser is pure, so this target runs many cases per second); an
    /// accepted config must describe a model whose derived numbers are finite.
    #[test]
    fn config_json(
        model in 0..MODELS.len() + 2,
        js in json_mutations(4),
        ms in prop::collection::vec(crate::mutate::mutation(), 0..3),
    ) {
        static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
        let seeds = SEEDS.get_or_init(|| {
            MODELS
                .iter()
                .chain(&["qwen2", "llama3_rope"])
                .map(|m| json_file(&fixture_dir(m).join("config.json")))
                .collect()
        });
        let bytes = mutate_json_text(&seeds[model], &js, &ms);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(cfg) = check("config_json", &bytes, || ModelConfig::from_hf_json(&text))? {
            for rope in cfg.rope.iter().chain(&cfg.rope_local) {
                let inv = rope.inv_freq();
                prop_assert!(
                    inv.iter().all(|f| f.is_finite() && *f > 0.0),
                    "accepted a rope whose inverse frequencies are {inv:?}: {}",
                    text
                );
            }
            prop_assert!(cfg.norm_eps.is_finite() && cfg.norm_eps >= 0.0, "norm_eps {}", cfg.norm_eps);
            prop_assert!(cfg.attn_scale.is_finite(), "attn_scale {}", cfg.attn_scale);
        }
    }

    /// `tokenizer.json`, then a round trip of a prompt through the accepted tokenizer.
    #[test]
    fn tokenizer_json(
        js in json_mutations(3),
        ms in mutations(3),
    ) {
        thread_local!(static DIR: crate::common::ScratchDir = scratch("tokenizer"));
        static SEED: OnceLock<Value> = OnceLock::new();
        let seed = SEED.get_or_init(|| json_file(&fixture_dir("llama").join("tokenizer.json")));
        let bytes = mutate_json_text(seed, &js, &ms);
        let path = DIR.with(|d| d.join("tokenizer.json"));
        std::fs::write(&path, &bytes).unwrap();
        check("tokenizer_json", &bytes, || -> lantern_engine::Result<()> {
            let tok = Tokenizer::from_file(&path)?;
            let ids = tok.encode("The capital of France is 42 <|endoftext|>")?;
            tok.decode(&ids)?;
            Ok(())
        })?;
    }
}
