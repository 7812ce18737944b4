//! Parity with Hugging Face transformers (after llm.c's `test_gpt2.c`): tiny random models of every
//! architecture, made and run by `scripts/fixtures/make_fixtures.py`, are run here and compared
//! logit by logit and at intermediate activations. Tolerance: 1e-4 absolute (f32).

mod common;

use common::*;
use lantern_engine::{load_path, Batch, HookKind, HookPoint, Hooks, LoadedModel, RunOptions};

const TOL: f32 = 1e-4;

fn check_architecture(name: &str) {
    check_model(name, load_fixture(name));
}

/// Runs `lm` on the reference prompts of fixture `name` and compares logits and activations.
fn check_model(name: &str, lm: LoadedModel) {
    let reference = load_reference(name, "reference.safetensors");
    let batch = Batch::from_ids(ids_of(&reference["input_ids"])).unwrap();
    let cfg = lm.model.config().clone();
    let mut hooks = Hooks::new()
        .capture_pattern(&cfg, "blocks.*.hook_resid_post,blocks.0.attn.hook_pattern,blocks.0.attn.hook_z,ln_final.hook_normalized")
        .unwrap();
    let out = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let logits = out.logits.unwrap();
    let d = max_abs_diff(&logits, &reference["logits"]);
    eprintln!("{name}: max |Δlogit| = {d:.2e}");
    assert!(d <= TOL, "{name}: logits differ by {d}");
    for layer in 0..cfg.n_layers {
        let key = format!("blocks.{layer}.hook_resid_post");
        let d = max_abs_diff(
            hooks.cache.get(HookPoint::resid_post(layer)).unwrap(),
            &reference[&key],
        );
        assert!(d <= TOL, "{name}: {key} differs by {d}");
    }
    for (point, key) in [
        (
            HookPoint::attn(0, HookKind::AttnPattern),
            "blocks.0.attn.hook_pattern",
        ),
        (HookPoint::attn(0, HookKind::AttnZ), "blocks.0.attn.hook_z"),
        (
            HookPoint::global(HookKind::LnFinalNormalized),
            "ln_final.hook_normalized",
        ),
    ] {
        let d = max_abs_diff(hooks.cache.get(point).unwrap(), &reference[key]);
        assert!(d <= TOL, "{name}: {key} differs by {d}");
    }
}

#[test]
fn gpt2_matches_transformers() {
    check_architecture("gpt2");
}

#[test]
fn gpt_neox_matches_transformers() {
    check_architecture("gpt_neox");
}

#[test]
fn llama_gqa_matches_transformers() {
    check_architecture("llama");
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    check_architecture("llama3_rope");
}

#[test]
fn qwen2_matches_transformers() {
    check_architecture("qwen2");
}

#[test]
fn gemma3_matches_transformers() {
    // Sliding window 4 on a 7-token prompt, so the local mask and local rotary base both matter.
    check_architecture("gemma3");
}

#[test]
fn phi3_matches_transformers() {
    // Fused qkv and gate/up projections, partial rotary (8 of 16 dims), sliding window 5 on a
    // 7-token prompt, untied unembedding.
    check_architecture("phi3");
}

#[test]
fn phi3_gguf_matches_transformers() {
    // The same weights written as a GGUF with llama.cpp's names (gguf-py's map) and metadata.
    let path = fixture_dir("phi3").join("model.gguf");
    let lm = load_path(&path, &quiet()).unwrap_or_else(|e| panic!("{e}"));
    let from_hf = load_fixture("phi3");
    // GGUF stores eps as f32: equal up to f32 rounding, every other field exactly.
    let (mut cfg, hf_cfg) = (lm.model.config().clone(), from_hf.model.config());
    assert!(
        (cfg.norm_eps - hf_cfg.norm_eps).abs() < 1e-12,
        "{}",
        cfg.norm_eps
    );
    cfg.norm_eps = hf_cfg.norm_eps;
    assert_eq!(&cfg, hf_cfg);
    let prompt = "The capital of Germany is Berlin.";
    assert_eq!(
        lm.tokenizer.encode(prompt).unwrap(),
        from_hf.tokenizer.encode(prompt).unwrap()
    );
    check_model("phi3", lm);
}

/// `--dtype q8_0` on the tiny Llama (GQA) fixture: logits stay near transformers' f32 ones, every
/// hook point is still captured, and an intervention still changes the output. Tolerance: max
/// |Δlogit| ≤ 1.0 (8-bit weights and 8-bit activations inside the matmuls, on logits with
/// |x| up to 17.5 and std 4; measured 0.60).
/// The refusals: `gguf` mode without a GGUF file, an unknown dtype (naming the supported ones).
#[test]
fn q8_0_weights_keep_logits_near_f32_and_every_hook_working() {
    use lantern_engine::{load_as, quant, Intervention, Quantization, WeightDType};
    let dir = fixture_dir("llama");
    let spec = dir.to_str().unwrap();
    let lm = load_as(spec, &quiet(), WeightDType::Quantized(Quantization::Q8_0)).unwrap();
    assert!(quant::is_quantized(&lm.model));
    let reference = load_reference("llama", "reference.safetensors");
    let batch = Batch::from_ids(ids_of(&reference["input_ids"])).unwrap();
    let cfg = lm.model.config().clone();
    let all = lantern_engine::hooks::all_points(&cfg);
    let mut hooks = Hooks::new().capture_all(all.iter().copied());
    let out = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let logits = out.logits.unwrap();
    let d = max_abs_diff(&logits, &reference["logits"]);
    eprintln!("llama q8_0: max |Δlogit| vs transformers f32 = {d:.2e}");
    assert!(d <= 1.0, "q8_0 logits differ by {d}");
    assert!(
        d > 0.0,
        "q8_0 weights gave exactly the f32 logits: not quantized"
    );
    assert_eq!(hooks.cache.len(), all.len(), "every hook point captured");

    // Steering still acts: zeroing the last block's MLP output changes the logits.
    let mut zero = Hooks::new().intervene(
        HookPoint::block(cfg.n_layers - 1, HookKind::MlpOut),
        Intervention::zero(),
    );
    let steered = lm
        .model
        .run(&batch, &mut zero, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&steered, &logits) > 1e-3);

    let err = load_as(spec, &quiet(), WeightDType::Quantized(Quantization::Gguf))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("needs a .gguf"), "{err}");
    let err = WeightDType::parse("q4_k").unwrap_err().to_string();
    assert!(
        err.contains("q4_k") && err.contains("q8_0") && err.contains("gguf"),
        "{err}"
    );
}
