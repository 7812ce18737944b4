//! The real model: SmolLM2-135M-Instruct from its Q4_1 GGUF, against Hugging Face transformers
//! loading the same GGUF (which dequantises to f32). Reference: tests/fixtures/smollm2, made by
//! scripts/fixtures/make_fixtures.py. Tolerance: max |Δlogit| ≤ 1e-3 and the same top-10 order;
//! residual streams within 1e-3 + 5e-6·max|x| (f32 rounding at SmolLM2's massive activations).

mod common;

use common::*;
use lantern_engine::*;

#[test]
fn smollm2_matches_transformers() {
    let lm = load_smollm2();
    let cfg = lm.model.config();
    assert_eq!(
        (
            cfg.n_layers,
            cfg.d_model,
            cfg.n_heads,
            cfg.n_kv_heads,
            cfg.vocab_size
        ),
        (30, 576, 9, 3, 49152)
    );
    let reference = load_reference("smollm2", "reference.safetensors");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir("smollm2").join("reference.json")).unwrap(),
    )
    .unwrap();
    let prompts: Vec<String> = json["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    assert!(prompts.len() >= 3);
    for (i, prompt) in prompts.iter().enumerate() {
        let ids = lm.tokenizer.encode(prompt).unwrap();
        let expected_ids: Vec<u32> =
            ids_of(&reference[&format!("p{i}.input_ids")].unsqueeze(0).unwrap()).remove(0);
        assert_eq!(ids, expected_ids, "tokenizer differs on {prompt:?}");
        let batch = Batch::from_ids(vec![ids]).unwrap();
        let mut hooks = if i == 0 {
            Hooks::new()
                .capture_pattern(cfg, "blocks.*.hook_resid_post,ln_final.hook_normalized")
                .unwrap()
        } else {
            Hooks::new()
        };
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
        let want = &reference[&format!("p{i}.last_logits")];
        let d = max_abs_diff(&logits, want);
        eprintln!("prompt {i}: max |Δlogit| = {d:.2e}");
        assert!(d <= 1e-3, "prompt {i}: max |Δlogit| = {d}");
        let top = |t: &Tensor| -> Vec<u32> {
            t.arg_sort_last_dim(false)
                .unwrap()
                .narrow(0, 0, 10)
                .unwrap()
                .to_vec1::<u32>()
                .unwrap()
        };
        assert_eq!(top(&logits), top(want), "prompt {i}: top-10 order differs");
        if i == 0 {
            let resid = reference["p0.resid_post"].clone(); // [30, T, 576]
            for layer in 0..cfg.n_layers {
                let ours = hooks
                    .cache
                    .get(HookPoint::resid_post(layer))
                    .unwrap()
                    .squeeze(0)
                    .unwrap();
                let want = resid.get(layer).unwrap();
                let d = max_abs_diff(&ours, &want);
                let scale = max_abs(&want);
                // SmolLM2 has massive activations (|x| up to ~2e4 from layer 11 on), where one f32 ulp
                // is ~2e-3 and 30 layers accumulate it: the tolerance is 1e-3 plus 5e-6 of the layer's largest value.
                let tol = 1e-3 + 5e-6 * scale;
                assert!(
                    d <= tol,
                    "layer {layer}: resid_post differs by {d} (max |x| {scale}, tolerance {tol})"
                );
            }
            let d = max_abs_diff(
                &hooks
                    .cache
                    .get_name("ln_final.hook_normalized")
                    .unwrap()
                    .squeeze(0)
                    .unwrap(),
                &reference["p0.ln_final"],
            );
            assert!(d <= 1e-3, "ln_final differs by {d}");
        }
    }
}

#[test]
fn smollm2_tokenizer_matches_hugging_face() {
    let lm = load_smollm2();
    let cases = tokenizer_cases("smollm2");
    assert!(cases.len() >= 5);
    for (text, want, _) in cases {
        let text = text.as_str();
        assert_eq!(lm.tokenizer.encode(text).unwrap(), want, "{text:?}");
        assert_eq!(lm.tokenizer.decode(&want).unwrap(), text, "decode {text:?}");
    }
}

#[test]
fn smollm2_knows_the_capital_of_france() {
    let lm = load_smollm2();
    let batch = Batch::from_prompts(&lm.tokenizer, &["The capital of France is"]).unwrap();
    assert_eq!(batch.row(0), &[504, 3575, 282, 4649, 314]);
    let logits = lm
        .model
        .run(
            &batch,
            &mut Hooks::new(),
            RunOptions::default().logits(Logits::Last),
        )
        .unwrap()
        .last_logits()
        .unwrap();
    let probs = candle_nn::ops::softmax_last_dim(&logits)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let paris = lm.tokenizer.single_token(" Paris").unwrap() as usize;
    let top = generate::argmax(&probs) as usize;
    assert_eq!(top, paris);
    assert!(probs[paris] > 0.5, "p(Paris) = {}", probs[paris]);
}
