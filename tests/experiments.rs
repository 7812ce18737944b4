//! The paper pipelines end to end on tiny fixture models: every step runs and writes its files.
//! (The real-model runs are in experiments/ and their numbers in the issue notes.)

mod common;

use common::*;
use lantern_experiments::p1;

fn out_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lantern-exp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn p1_pipeline_writes_every_result_and_figure() {
    let lm = load_fixture("llama");
    let cfg: p1::P1Config = toml::from_str(
        r#"
        data = "experiments/data/capitals.csv"
        template = "The capital of {country} is {ctx_city}. The capital of {country} is"
        n_prompts = 6
        alphas = [0.0, 1.0, 4.0]
        patch_pairs = 2
        max_new_tokens = 4
        batch_size = 4
        "#,
    )
    .unwrap();
    let out = out_dir("p1");
    let bar = |_: &str, _: usize| -> Box<dyn FnMut(usize, usize)> { Box::new(|_, _| {}) };
    let report = p1::run_all(&lm, &cfg, &repo_root(), &out, &bar).unwrap();
    assert_eq!(report.n_prompts, 6);
    assert_eq!(report.heads.values.len(), lm.model.config().n_layers);
    for s in &report.sweeps {
        assert_eq!(s.points.len(), 3);
        for p in &s.points {
            assert!((p.in_context + p.memorized + p.other - 1.0).abs() < 1e-9);
        }
        // alpha = 1 is the unscaled model: its continuations equal the baseline's.
        assert_eq!(s.points[1].continuations, report.baseline.with_context.continuations);
    }
    for f in ["prompts.json", "baseline.json", "heads.json", "heads.csv", "patching.json", "patching_resid_pre.csv", "alpha_sweep.csv", "report.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for fig in ["heads_dla", "patching_resid_pre", "patching_heads", "alpha_sweep", "baseline"] {
        for ext in ["svg", "png"] {
            let path = out.join(format!("{fig}.{ext}"));
            assert!(std::fs::metadata(&path).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", path.display());
        }
    }
    // Same seed, same prompts.
    let caps = p1::read_capitals(&repo_root().join("experiments/data/capitals.csv")).unwrap();
    let a = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap();
    let b = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap();
    assert_eq!(a.iter().map(|p| &p.prompt).collect::<Vec<_>>(), b.iter().map(|p| &p.prompt).collect::<Vec<_>>());
    assert!(a.iter().all(|p| p.ctx_city != p.capital));
}

#[test]
fn p1_bad_template_and_data_are_clear_errors() {
    let lm = load_fixture("llama");
    let mut cfg: p1::P1Config = toml::from_str(r#"data = "experiments/data/capitals.csv""#).unwrap();
    cfg.template = "no placeholders here".into();
    let caps = p1::read_capitals(&repo_root().join("experiments/data/capitals.csv")).unwrap();
    let e = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap_err().to_string();
    assert!(e.contains("{country}"), "{e}");
    let e = p1::read_capitals(&repo_root().join("experiments/data/states.csv")).unwrap_err().to_string();
    assert!(e.contains("country"), "{e}");
    let e = toml::from_str::<p1::P1Config>("data = 'x'\nunknown_key = 3").unwrap_err().to_string();
    assert!(e.contains("unknown_key"), "{e}");
}
