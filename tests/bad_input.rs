//! Bad input gets a clear error naming the problem, never a panic.

mod common;

use std::path::Path;

use common::*;
use lantern_engine::*;

fn err_of<T>(r: Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("bad-{name}"))
}

/// A copy of a fixture folder whose files can be damaged.
fn copy_fixture(name: &str, to: &str) -> ScratchDir {
    let dir = scratch(to);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir(name).join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn missing_files() {
    let e = err_of(load_path(Path::new("/nonexistent/model.gguf"), &quiet()).map(|_| ()));
    assert!(e.contains("/nonexistent/model.gguf"), "{e}");
    let e = err_of(load("/nonexistent/folder", &quiet()).map(|_| ()));
    assert!(e.contains("no such file"), "{e}");
    let dir = copy_fixture("gpt2", "missing-weights");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(e.contains("model.safetensors"), "{e}");
    let dir = copy_fixture("gpt2", "missing-tokenizer");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let dir = copy_fixture("llama", "truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(e.contains("safetensors"), "{e}");
    std::fs::write(&path, b"this is not a safetensors file at all").unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(e.contains("safetensors"), "{e}");
}

#[test]
fn truncated_and_corrupt_gguf() {
    let dir = scratch("gguf");
    let path = dir.join("bad.gguf");
    std::fs::write(&path, b"GGUF but nothing else").unwrap();
    let e = err_of(load_path(&path, &quiet()).map(|_| ()));
    assert!(e.contains("bad.gguf"), "{e}");
    // A real GGUF cut short: the header reads, a tensor does not.
    let real = std::fs::read(smollm2_path()).unwrap();
    std::fs::write(&path, &real[..real.len() / 3]).unwrap();
    let e = err_of(load_path(&path, &quiet()).map(|_| ()));
    assert!(e.contains("bad.gguf") && e.contains("tensor"), "{e}");
}

#[test]
fn config_that_does_not_match_the_weights_names_the_tensor_and_shapes() {
    let dir = copy_fixture("gpt2", "mismatch");
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let n_embd = cfg["n_embd"].as_u64().unwrap();
    cfg["n_embd"] = serde_json::json!(n_embd * 2);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(
        e.contains("wte.weight")
            && e.contains(&format!("{}", n_embd * 2))
            && e.contains(&format!("{n_embd}")),
        "{e}"
    );
}

#[test]
fn unknown_architecture() {
    let dir = copy_fixture("gpt2", "unknown-arch");
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["model_type"] = serde_json::json!("mamba");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = err_of(load_path(&dir, &quiet()).map(|_| ()));
    assert!(e.contains("mamba") && e.contains("supported"), "{e}");
}

#[test]
fn empty_and_over_long_prompts() {
    let lm = load_fixture("gpt2");
    assert!(err_of(Batch::from_prompts(&lm.tokenizer, &[""])).contains("empty"));
    let max = lm.model.config().max_positions;
    let long = Batch::from_ids(vec![vec![1; max + 1]]).unwrap();
    let e = err_of(
        lm.model
            .run(&long, &mut Hooks::new(), RunOptions::default()),
    );
    assert!(
        e.contains(&format!("{}", max + 1)) && e.contains(&format!("{max}")),
        "{e}"
    );
    let gen = GenerateConfig {
        max_new_tokens: max,
        ..Default::default()
    };
    assert!(err_of(
        lm.model
            .generate(&lm.tokenizer, "Hello", &gen, &mut Hooks::new())
    )
    .contains("context window"));
}

#[test]
fn run_options_that_do_not_fit_the_input() {
    let lm = load_fixture("gpt2");
    let cfg = lm.model.config().clone();
    let batch = Batch::from_prompts(&lm.tokenizer, &["Hello there", "Hi"]).unwrap();
    let run = |input: Input, opts: RunOptions| err_of(lm.model.run(input, &mut Hooks::new(), opts));
    let e = run(Input::Batch(&batch), RunOptions::from_layer(1));
    assert!(
        e.contains("layer 1") && e.contains("residual stream"),
        "{e}"
    );
    let e = run(Input::Batch(&batch), RunOptions::from_layer(cfg.n_layers));
    assert!(e.contains(&format!("layer {}", cfg.n_layers)), "{e}");
    let e = run(
        Input::Batch(&batch),
        RunOptions::default().padding(&batch.pad_left),
    );
    assert!(e.contains("padding once"), "{e}");
    let resid = Tensor::zeros(
        (2, batch.seq_len(), cfg.d_model + 1),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let e = run(
        Input::Resid(&resid),
        RunOptions::from_layer(1).padding(&batch.pad_left),
    );
    assert!(
        e.contains("resid_pre for layer 1") && e.contains(&format!("{}", cfg.d_model)),
        "{e}"
    );
    let resid = Tensor::zeros((2, batch.seq_len(), cfg.d_model), DType::F32, &Device::Cpu).unwrap();
    let e = run(
        Input::Resid(&resid),
        RunOptions::from_layer(1).padding(&[0, 0, 0]),
    );
    assert!(e.contains("2 rows") && e.contains("padding has 3"), "{e}");
    let mut cache = lm.model.new_kv_cache(&[0]);
    let ids = batch.ids_tensor(&Device::Cpu).unwrap();
    let e = run(Input::Tokens(&ids), RunOptions::default().cache(&mut cache));
    assert!(e.contains("2 rows") && e.contains("KV cache has 1"), "{e}");
}

#[test]
fn hook_names_layers_heads_positions() {
    let lm = load_fixture("llama");
    let cfg = lm.model.config().clone();
    let e = err_of(HookPoint::parse_for("blocks.0.attn.hook_zz", &cfg));
    assert!(
        e.contains("did you mean") && e.contains("blocks.0.attn.hook_z"),
        "{e}"
    );
    let e = err_of(HookPoint::parse_for("blocks.7.hook_resid_pre", &cfg));
    assert!(
        e.contains("layer 7") && e.contains(&format!("{} layers", cfg.n_layers)),
        "{e}"
    );
    let e = err_of(hooks::resolve("blocks.*.hook_nothing", &cfg));
    assert!(e.contains("matches no hook point"), "{e}");
    let batch = Batch::from_prompts(&lm.tokenizer, &["Hello there"]).unwrap();
    let z = HookPoint::attn(0, HookKind::AttnZ);
    let e = err_of(lm.model.run(
        &batch,
        &mut Hooks::new().intervene(z, Intervention::zero().heads([cfg.n_heads])),
        RunOptions::default(),
    ));
    assert!(
        e.contains("head") && e.contains(&format!("{}", cfg.n_heads)),
        "{e}"
    );
    let e = err_of(lm.model.run(
        &batch,
        &mut Hooks::new().intervene(z, Intervention::zero().positions([99])),
        RunOptions::default(),
    ));
    assert!(e.contains("position 99"), "{e}");
    let e = err_of(lm.model.run(
        &batch,
        &mut Hooks::new().intervene(z, Intervention::zero().rows([3])),
        RunOptions::default(),
    ));
    assert!(e.contains("batch row 3"), "{e}");
    let e = err_of(lantern_steering::scale_head_values(
        &lm.model,
        0,
        cfg.n_heads,
        2.0,
        false,
    ));
    assert!(e.contains("head"), "{e}");
    let e = err_of(lm.model.run(
        &batch,
        &mut Hooks::new().intervene(
            z,
            Intervention::add(Tensor::ones(7, DType::F32, &Device::Cpu).unwrap()),
        ),
        RunOptions::default(),
    ));
    assert!(e.contains("broadcast"), "{e}");
    let e = err_of(lantern_steering::parse_intervention(
        "scale blocks.0.attn.hook_v head=1",
        &lm.model,
    ));
    assert!(e.contains("alpha"), "{e}");
    let e = err_of(lantern_steering::parse_intervention(
        "scale blocks.0.attn.hook_v head=9 alpha=2",
        &lm.model,
    ));
    assert!(e.contains("KV head 9"), "{e}");
}

#[test]
fn unreachable_hub_says_how_to_give_a_local_path() {
    // No network here: the hub id cannot be fetched.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let e = err_of(load("someone/some-model-that-does-not-exist", &quiet()).map(|_| ()));
    assert!(e.contains("local path"), "{e}");
}

#[test]
fn a_corrupt_weight_is_reported_at_the_first_non_finite_hook_point() {
    // NaN in layer 1's value projection: everything before `blocks.1.attn.hook_v` is finite
    // (queries and keys of layer 1 included), everything after is poisoned.
    let dir = scratch("nan-weight");
    fixture_with_weight(
        "llama",
        "model.layers.1.self_attn.v_proj.weight",
        f32::NAN,
        &dir,
    );
    let lm = load_path(&dir, &quiet()).unwrap();
    let batch = Batch::from_prompts(&lm.tokenizer, &["Hello there"]).unwrap();
    let at = finite::first_non_finite(&lm.model, &batch, &Hooks::new())
        .unwrap()
        .expect("a non-finite point");
    assert_eq!(at.point.name(), "blocks.1.attn.hook_v");
    assert!(at.has_nan && at.count > 0 && at.count < at.total, "{at:?}");
    let e = err_of(finite::check_forward(&lm.model, &batch, &Hooks::new()));
    assert!(e.contains("blocks.1.attn.hook_v"), "{e}");
    assert!(e.contains("NaN"), "{e}");

    // +Inf in layer 0's query projection: first seen at `blocks.0.attn.hook_q`.
    let dir = scratch("inf-weight");
    fixture_with_weight(
        "llama",
        "model.layers.0.self_attn.q_proj.weight",
        f32::INFINITY,
        &dir,
    );
    let lm = load_path(&dir, &quiet()).unwrap();
    let e = err_of(finite::check_forward(&lm.model, &batch, &Hooks::new()));
    assert!(e.contains("blocks.0.attn.hook_q"), "{e}");

    // The intact model passes, and its masked attention scores (-Inf on purpose) do not count.
    let lm = load_fixture("llama");
    assert_eq!(
        finite::first_non_finite(&lm.model, &batch, &Hooks::new()).unwrap(),
        None
    );
    finite::check_forward(&lm.model, &batch, &Hooks::new()).unwrap();
}

#[test]
fn intervention_numbers_must_be_finite_and_fit_f32() {
    let lm = load_fixture("gpt2");
    let err = |spec: &str| err_of(lantern_steering::parse_intervention(spec, &lm.model));
    let e = err("scale blocks.0.hook_resid_post alpha=NaN");
    assert!(e.contains("alpha must be finite, got NaN"), "{e}");
    let e = err("scale blocks.0.attn.hook_v head=1 alpha=inf");
    assert!(e.contains("alpha must be finite, got inf"), "{e}");
    let e = err("add blocks.0.hook_resid_post value=1e39");
    assert!(e.contains("value must fit a 32-bit float"), "{e}");
    let e = err("replace blocks.0.hook_resid_post value=-inf");
    assert!(e.contains("value must be finite"), "{e}");
    let dir = scratch("vector");
    let d_model = lm.model.config().d_model;
    let mut v = vec!["0.5".to_string(); d_model];
    v[3] = "1e39".into();
    let path = dir.join("v.json");
    std::fs::write(&path, format!("[{}]", v.join(","))).unwrap();
    let e = err(&format!(
        "add blocks.0.hook_resid_post vector={}",
        path.display()
    ));
    assert!(e.contains("number 3 of the vector"), "{e}");
    let ok = vec![10.0f32; d_model];
    std::fs::write(&path, serde_json::to_string(&ok).unwrap()).unwrap();
    let e = err(&format!(
        "add blocks.0.hook_resid_post vector={} alpha=1e38",
        path.display()
    ));
    assert!(e.contains("overflows"), "{e}");
}
