//! The real model: SmolLM2-135M-Instruct from its Q4_1 GGUF, against Hugging Face transformers
//! loading the same GGUF (which dequantises to f32). Reference: tests/fixtures/smollm2, made by
//! scripts/fixtures/make_fixtures.py. Tolerance: max |Δlogit| ≤ 1e-3 and the same top-10 order;
//! residual streams within 1e-3 + 5e-6·max|x| (f32 rounding at SmolLM2's massive activations).
//!
//! Also the parity of every real model known by a short name (`lantern_engine::models`) with
//! transformers on prompts with code, digits, whitespace runs and non-Latin text
//! (tests/fixtures/real_parity, made by scripts/fixtures/make_real_parity.py): identical token
//! ids for all four, and for Qwen2.5-Coder 0.5B (1.5B: `--ignored`, run by
//! scripts/check-real-parity.sh) the logits at every position: max |Δlogit| ≤ 1e-3 over the
//! reference's top-20 and 44 seeded other ids, and the same top-10.

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

// ---------------------------------------------------------------------------------------------
// Real models by short name: tests/fixtures/real_parity
// ---------------------------------------------------------------------------------------------

/// A real model's GGUF in [`model_dir`], fetched by the library's own fetch (the alias path of
/// `lantern_engine::load`) when missing.
fn alias_path(alias: &str) -> std::path::PathBuf {
    let model = models::lookup(alias).unwrap();
    models::cached_or_fetch(model, &model_dir(), true).unwrap()
}

fn parity_json(file: &str) -> serde_json::Value {
    let path = fixture_dir("real_parity").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn real_models_tokenize_tricky_prompts_like_transformers() {
    let table = parity_json("tokens.json");
    let table = table.as_object().unwrap();
    assert_eq!(
        table.len(),
        models::aliases().len(),
        "one entry per known model"
    );
    for (alias, cases) in table {
        let model = models::lookup(alias).unwrap();
        // The 1.5B (1.1 GB) is not fetched by CI: checked where it is cached
        // (scripts/check-real-parity.sh fetches it).
        let path = model_dir().join(&model.file);
        if alias == "qwen2.5-coder-1.5b" && !path.exists() {
            eprintln!(
                "{alias}: not in {}, token ids not checked",
                model_dir().display()
            );
            continue;
        }
        let tok = gguf::GgufFile::open(&alias_path(alias))
            .unwrap()
            .tokenizer()
            .unwrap();
        for case in cases.as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want = json_ids(&case["ids"]);
            assert_eq!(tok.encode(text).unwrap(), want, "{alias}: {text:?}");
            let raw = &want[usize::from(tok.bos().is_some())..];
            assert_eq!(tok.decode(raw).unwrap(), text, "{alias}: decode {text:?}");
        }
    }
}

#[test]
fn qwen2_tokenizer_keeps_code_punctuation_with_its_neighbours() {
    // transformers: 'def', ' fibonacci', '(n', '):\n', '   ', ' if', ' n', ' <'.
    let tok = gguf::GgufFile::open(&alias_path("qwen2.5-coder-0.5b"))
        .unwrap()
        .tokenizer()
        .unwrap();
    let ids = tok.encode("def fibonacci(n):\n    if n <").unwrap();
    let pieces: Vec<String> = ids.iter().map(|&i| tok.token_text(i)).collect();
    assert_eq!(
        pieces,
        ["def", " fibonacci", "(n", "):\n", "   ", " if", " n", " <"]
    );
}

/// Lantern's logits against the reference at every position of every prompt; returns the
/// largest |Δlogit|.
fn logits_match_transformers(alias: &str) -> f32 {
    let summary = parity_json(&format!("{alias}.json"));
    let reference = load_reference("real_parity", &format!("{alias}.safetensors"));
    let start = std::time::Instant::now();
    let lm = load_path(&alias_path(alias), &quiet()).unwrap();
    eprintln!("{alias}: loaded in {:.1?}", start.elapsed());
    let mut worst = 0f32;
    for (i, prompt) in summary["prompts"].as_array().unwrap().iter().enumerate() {
        let text = prompt["text"].as_str().unwrap();
        let ids = lm.tokenizer.encode(text).unwrap();
        assert_eq!(
            ids,
            json_ids(&prompt["ids"]),
            "{alias}: token ids of {text:?}"
        );
        let batch = Batch::from_ids(vec![ids.clone()]).unwrap();
        let out = lm
            .model
            .run(
                &batch,
                &mut Hooks::new(),
                RunOptions::default().logits(Logits::All),
            )
            .unwrap();
        let logits = out.logits.unwrap().squeeze(0).unwrap(); // [T, V]
        let ref_ids = ids_of(&reference[&format!("p{i}.ids")]); // [T][K]
        let ref_logits = reference[&format!("p{i}.logits")].to_vec2::<f32>().unwrap();
        assert_eq!(ref_ids.len(), ids.len());
        for (t, (want_ids, want)) in ref_ids.iter().zip(&ref_logits).enumerate() {
            let row = logits.get(t).unwrap();
            let sel = Tensor::new(want_ids.as_slice(), &Device::Cpu).unwrap();
            let got = row.index_select(&sel, 0).unwrap().to_vec1::<f32>().unwrap();
            let diff = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff <= 1e-3,
                "{alias}: prompt {i} position {t}: max |Δlogit| {diff}"
            );
            worst = worst.max(diff);
            let top10: Vec<u32> = row
                .arg_sort_last_dim(false)
                .unwrap()
                .narrow(0, 0, 10)
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(
                top10,
                want_ids[..10],
                "{alias}: top-10 at prompt {i} position {t}"
            );
        }
    }
    eprintln!(
        "{alias}: max |Δlogit| {worst:.2e} ({:.1?} in all)",
        start.elapsed()
    );
    worst
}

#[test]
fn qwen2_5_coder_0_5b_matches_transformers() {
    logits_match_transformers("qwen2.5-coder-0.5b");
}

/// 1.1 GB and ~6 GB of f32 weights: run by scripts/check-real-parity.sh, not in CI.
#[test]
#[ignore]
fn qwen2_5_coder_1_5b_matches_transformers() {
    logits_match_transformers("qwen2.5-coder-1.5b");
}

/// `--dtype q8_0` and `--dtype gguf` against f32 on the parity prompts (last-position logits).
/// The f32 model is the GGUF dequantised, so `gguf` differs from it only by candle quantizing
/// each activation row to 8 bits inside its matmuls; `q8_0` also rounds every weight to 8 bits.
/// Measured (2026-11-27): q8_0 0.70-0.82, gguf 0.70-0.99 on logits spanning ~30, top-1 the same
/// everywhere. That gguf (same weights as f32) is no closer than q8_0 shows the error comes from
/// the 8-bit activations inside candle's quantized matmul (llama.cpp does the same), not from the
/// weights. Tolerance: max |Δlogit| ≤ 1.5 and the same top-1 token on every prompt.
#[test]
fn quantized_smollm2_stays_near_f32_on_the_parity_prompts() {
    let f32_lm = load_smollm2();
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
    let last_logits = |lm: &LoadedModel, prompt: &str| -> Tensor {
        let batch = Batch::from_prompts(&lm.tokenizer, &[prompt]).unwrap();
        lm.model
            .run(
                &batch,
                &mut Hooks::new(),
                RunOptions::default().logits(Logits::Last),
            )
            .unwrap()
            .last_logits()
            .unwrap()
            .squeeze(0)
            .unwrap()
    };
    let argmax = |t: &Tensor| t.argmax(0).unwrap().to_scalar::<u32>().unwrap();
    const TOL: f32 = 1.5;
    let mut worst = Vec::new();
    for (name, q) in [("q8_0", Quantization::Q8_0), ("gguf", Quantization::Gguf)] {
        let lm = load_as(
            smollm2_path().to_str().unwrap(),
            &quiet(),
            WeightDType::Quantized(q),
        )
        .unwrap();
        assert!(lantern_engine::quant::is_quantized(&lm.model));
        for (i, prompt) in prompts.iter().enumerate() {
            let want = last_logits(&f32_lm, prompt);
            let got = last_logits(&lm, prompt);
            let d = max_abs_diff(&got, &want);
            let same_top = argmax(&got) == argmax(&want);
            eprintln!("{name}, prompt {i}: max |Δlogit| vs f32 = {d:.3}, same top-1 {same_top}");
            worst.push((name, i, d, same_top));
        }
    }
    for (name, i, d, same_top) in worst {
        assert!(d <= TOL, "{name}, prompt {i}: max |Δlogit| = {d}");
        assert!(same_top, "{name}, prompt {i}: top-1 differs");
    }
}
