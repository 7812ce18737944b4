//! Parity with Hugging Face transformers (after llm.c's `test_gpt2.c`): tiny random models of every
//! architecture, made and run by `scripts/fixtures/make_fixtures.py`, are run here and compared
//! logit by logit and at intermediate activations. Tolerance: 1e-4 absolute (f32).

mod common;

use common::*;
use lantern_engine::{Batch, HookKind, HookPoint, Hooks, RunOptions};

const TOL: f32 = 1e-4;

fn check_architecture(name: &str) {
    let lm = load_fixture(name);
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
