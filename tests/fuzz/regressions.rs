//! Every crash the fuzz harnesses found, as a named test with its minimal input (the seed file
//! with the one or two changes proptest shrank the failure to). Each asserts the clear error that
//! replaced the panic or abort.

use lantern_engine::{load_path, ModelConfig};

use crate::common::{fixture_dir, quiet};
use crate::gguf_seed::{self, Meta};
use crate::harness::scratch;

/// The `llama` fixture's config.json with `key` set to `value` (or removed with `Null`).
fn llama_config_with(key: &str, value: serde_json::Value) -> String {
    let text = std::fs::read_to_string(fixture_dir("llama").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    if value.is_null() {
        v.as_object_mut().unwrap().remove(key);
    } else {
        v[key] = value;
    }
    v.to_string()
}

fn config_err(text: &str) -> String {
    ModelConfig::from_hf_json(text).unwrap_err().to_string()
}

/// The GGUF seed with metadata `key` set to `value`, loaded.
fn gguf_err(key: &str, value: Meta) -> String {
    let mut g = gguf_seed::seed();
    g.meta.iter_mut().find(|(k, _)| k == key).unwrap().1 = value;
    let dir = scratch(&format!("regression-{key}"));
    let path = dir.join("m.gguf");
    std::fs::write(&path, g.to_bytes()).unwrap();
    match load_path(&path, &quiet()) {
        Ok(_) => panic!("{key}: the damaged GGUF loaded"),
        Err(e) => e.to_string(),
    }
}

/// Found by `config_json`: `d_model / n_heads` panicked ("attempt to divide by zero").
#[test]
fn config_with_zero_attention_heads() {
    let e = config_err(&llama_config_with("num_attention_heads", 0.into()));
    assert!(
        e.contains("num_attention_heads") && e.contains("got 0"),
        "{e}"
    );
}

/// Found by `config_json`: a head_dim of 2469797323747810860 sized the rotary table
/// ("capacity overflow").
#[test]
fn config_with_huge_head_dim() {
    let e = config_err(&llama_config_with(
        "head_dim",
        2469797323747810860u64.into(),
    ));
    assert!(e.contains("d_head must be at most"), "{e}");
}

/// Found by `gguf`: `llama.embedding_length = 3998247291` made a 4 GB allocation (refused by the
/// capped allocator: an abort).
#[test]
fn gguf_with_huge_embedding_length() {
    let e = gguf_err("llama.embedding_length", Meta::U32(3998247291));
    assert!(
        e.contains("llama.embedding_length") && e.contains("3998247291"),
        "{e}"
    );
}

/// Same class as above, on the other counts the GGUF config divides by or sizes a table with.
/// Found by the long run (`gguf`, seed 2000001300): a `llama.block_count` far above the file's
/// tensor count sized the tensor-name list (a 377 MB allocation, refused by the capped allocator).
#[test]
fn gguf_with_more_blocks_than_tensors() {
    let e = gguf_err("llama.block_count", Meta::U32(1_000_000));
    assert!(e.contains("1000000 blocks") && e.contains("tensors"), "{e}");
}

#[test]
fn gguf_with_zero_or_huge_counts() {
    for key in [
        "llama.attention.head_count",
        "llama.block_count",
        "llama.embedding_length",
    ] {
        let e = gguf_err(key, Meta::U32(0));
        assert!(e.contains(key) && e.contains("got 0"), "{e}");
        let e = gguf_err(key, Meta::U64(1 << 60));
        assert!(e.contains(key), "{e}");
    }
}

/// Found by `gguf`: a tensor dim of 2^60 wrapped candle's element count to a size that passed
/// its checks, then its copy panicked ("range end index 1152921504606846976 out of range").
#[test]
fn gguf_tensor_with_huge_dim() {
    let mut g = gguf_seed::seed();
    g.tensors[0].dims[0] = 1 << 60;
    let dir = scratch("regression-huge-dim");
    let path = dir.join("m.gguf");
    std::fs::write(&path, g.to_bytes()).unwrap();
    let e = load_path(&path, &quiet())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&g.tensors[0].name) && e.contains("more elements than the file"),
        "{e}"
    );
}

/// Found by `tokenizer_json`: a JSON syntax error inside `decoder` made tokenizers panic
/// (`expect("Helper")`) instead of returning its error.
#[test]
fn tokenizer_with_broken_decoder_json() {
    let text = std::fs::read_to_string(fixture_dir("llama").join("tokenizer.json")).unwrap();
    let at = text.find("\"decoder\"").unwrap();
    let brace = at + text[at..].find('{').unwrap();
    // `"decoder": [ {` … `}`: the object in an unclosed array.
    let broken = format!("{}[{}", &text[..brace], &text[brace..]);
    let dir = scratch("regression-decoder");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, broken).unwrap();
    let e = lantern_engine::Tokenizer::from_file(&path)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not valid JSON") && e.contains("tokenizer.json"),
        "{e}"
    );
}

/// Found by `gguf`: `general.alignment = 0` made candle's reader divide by zero.
#[test]
fn gguf_with_zero_alignment() {
    let mut g = gguf_seed::seed();
    g.meta.push(("general.alignment".into(), Meta::U32(0)));
    let dir = scratch("regression-alignment");
    let path = dir.join("m.gguf");
    std::fs::write(&path, g.to_bytes()).unwrap();
    let e = load_path(&path, &quiet())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a valid GGUF file") && e.contains("m.gguf"),
        "{e}"
    );
}

/// Found by `tokenizer_json`: a `continuing_subword_prefix` longer than a merge's second token
/// made tokenizers' BPE builder slice out of range.
#[test]
fn tokenizer_with_a_prefix_longer_than_a_merge() {
    let text = std::fs::read_to_string(fixture_dir("llama").join("tokenizer.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["model"]["continuing_subword_prefix"] = "F64".into();
    let dir = scratch("regression-prefix");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let e = lantern_engine::Tokenizer::from_file(&path)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("continuing_subword_prefix"), "{e}");
}
