//! The `lantern` binary on the tiny fixture models: JSON shapes, files written, clear errors with
//! a non-zero exit and no half-written output.

mod common;

use std::process::Command;

use common::*;

fn lantern(args: &[&str]) -> (bool, String, String) {
    // With backtraces on, as many users have them: errors must still be one clear message.
    let out = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn model() -> String {
    fixture_dir("gpt2").display().to_string()
}

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("cli-{name}"))
}

#[test]
fn run_json_has_the_documented_shape() {
    let (ok, out, err) = lantern(&[
        "run",
        &model(),
        "--prompt",
        "Hello there",
        "--top-k",
        "4",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["model"].is_string());
    assert_eq!(
        v["token_ids"].as_array().unwrap().len(),
        v["tokens"].as_array().unwrap().len()
    );
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 4);
    for t in top {
        for k in ["id", "token", "logit", "prob"] {
            assert!(!t[k].is_null(), "{k} missing");
        }
    }
    let logits: Vec<f64> = top.iter().map(|t| t["logit"].as_f64().unwrap()).collect();
    assert!(logits.windows(2).all(|w| w[0] >= w[1]), "ordered by logit");
}

#[test]
fn heads_json_has_one_row_per_layer() {
    let (ok, out, err) = lantern(&[
        "heads",
        &model(),
        "--prompt",
        "The capital of Germany is",
        "--target",
        "A",
        "--versus",
        "B",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layers"], 2);
    assert_eq!(v["heads"], 4);
    let values = v["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0].as_array().unwrap().len(), 4);
    assert!(v["metric"].as_str().unwrap().contains("logit"));
}

#[test]
fn generate_with_an_intervention_and_cache_export() {
    let (ok, plain, err) = lantern(&[
        "generate",
        &model(),
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "6",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let (ok, steered, err) = lantern(&[
        "generate",
        &model(),
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "6",
        "--json",
        "--quiet",
        "--intervene",
        "scale blocks.1.attn.hook_v head=0,1,2,3 alpha=-8",
    ]);
    assert!(ok, "{err}");
    let ids = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["new_ids"].clone();
    assert_ne!(ids(&plain), ids(&steered));
    let dir = scratch("cache");
    let out = dir.join("c.safetensors");
    let (ok, _, err) = lantern(&[
        "cache",
        &model(),
        "--prompt",
        "Hello",
        "--hooks",
        "blocks.*.hook_resid_post",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let t = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    assert_eq!(t.len(), 2);
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_message() {
    // A GGUF header that promises tensors and metadata, then ends.
    let dir = scratch("truncated");
    let truncated = dir.join("model.gguf");
    let mut header = b"GGUF".to_vec();
    header.extend(3u32.to_le_bytes());
    header.extend(5u64.to_le_bytes());
    header.extend(2u64.to_le_bytes());
    std::fs::write(&truncated, header).unwrap();
    let truncated = truncated.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), truncated, "--prompt".into(), "x".into()],
            "not a valid GGUF file",
        ),
        (
            vec![
                "shapley".into(),
                model(),
                "--template".into(),
                "/no/such/template.txt".into(),
                "--target".into(),
                " A".into(),
                "--batch-size".into(),
                "0".into(),
            ],
            "--batch-size",
        ),
        (
            vec![
                "run".into(),
                "/no/such/model.gguf".into(),
                "--prompt".into(),
                "x".into(),
            ],
            "/no/such/model.gguf",
        ),
        (
            vec!["run".into(), model(), "--prompt".into(), "".into()],
            "empty",
        ),
        (
            vec![
                "generate".into(),
                model(),
                "--prompt".into(),
                "Hi".into(),
                "--intervene".into(),
                "scale blocks.9.attn.hook_v head=0 alpha=2".into(),
            ],
            "layer 9",
        ),
        (
            vec![
                "generate".into(),
                model(),
                "--prompt".into(),
                "Hi".into(),
                "--intervene".into(),
                "scale blocks.0.attn.hook_zz alpha=2".into(),
            ],
            "did you mean",
        ),
        (
            vec![
                "heads".into(),
                model(),
                "--prompt".into(),
                "Hi".into(),
                "--target".into(),
                " two tokens maybe".into(),
            ],
            "single token",
        ),
        (
            vec!["experiment".into(), "/no/such/file.toml".into()],
            "file.toml",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).chain(["--quiet"]).collect();
        let (ok, _, err) = lantern(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(
            !err.contains("backtrace.rs"),
            "{args:?} printed a backtrace: {err}"
        );
    }
    // A failed cache export leaves nothing behind.
    let dir = scratch("nocache");
    let out = dir.join("c.safetensors");
    let (ok, _, _) = lantern(&[
        "cache",
        &model(),
        "--prompt",
        "Hello",
        "--hooks",
        "blocks.7.hook_resid_post",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!ok);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no partial file"
    );
}

#[test]
fn graph_runs_on_any_recorded_series() {
    // A lag-1 chain a -> b -> c with noise, two sessions.
    let dir = scratch("graph");
    let mut csv = String::from("session,step,a,b,c\n");
    let mut rng = 12345u64;
    let mut noise = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    for s in 0..2 {
        let (mut a, mut b) = (0.0, 0.0);
        for t in 0..200 {
            let (na, nb, nc) = (0.5 * a + noise(), 0.8 * a + noise(), 0.8 * b + noise());
            (a, b) = (na, nb);
            let c = nc;
            csv.push_str(&format!("{s},{t},{a},{b},{c}\n"));
        }
    }
    let path = dir.join("series.csv");
    std::fs::write(&path, csv).unwrap();
    let (ok, out, err) = lantern(&[
        "graph",
        "--series",
        path.to_str().unwrap(),
        "--bootstrap",
        "10",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nodes"], serde_json::json!(["a", "b", "c"]));
    let edges = v["edges"].as_array().unwrap();
    let has = |f: &str, t: &str| {
        edges
            .iter()
            .any(|e| e["from"] == f && e["to"] == t && e["lag"] == 1)
    };
    assert!(has("a", "b") && has("b", "c"), "{edges:?}");
    for k in ["sccs", "cycles", "spectral_radius"] {
        assert!(!v[k].is_null(), "{k}");
    }
    std::fs::write(&path, "a,b\n1,2\n1,x\n").unwrap();
    let (ok, _, err) = lantern(&["graph", "--series", path.to_str().unwrap(), "--json"]);
    assert!(!ok && err.contains('x'), "{err}");
}

/// Every numeric flag is checked before any work: NaN, infinities, zero counts and
/// out-of-range probabilities are refused with a message naming the flag.
#[test]
fn numeric_flags_are_checked_before_any_work() {
    let series = scratch("flags-series");
    let csv = series.join("s.csv");
    std::fs::write(&csv, "a,b\n1,2\n2,1\n3,4\n").unwrap();
    let csv = csv.to_str().unwrap().to_string();
    let m = model();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", &m, "--prompt", "x", "--top-k", "0"], "--top-k"),
        (
            vec!["generate", &m, "--prompt", "x", "--temperature", "NaN"],
            "--temperature",
        ),
        (
            vec!["generate", &m, "--prompt", "x", "--temperature", "-1"],
            "--temperature",
        ),
        (
            vec!["generate", &m, "--prompt", "x", "--top-p", "0"],
            "--top-p",
        ),
        (
            vec!["generate", &m, "--prompt", "x", "--top-p", "inf"],
            "--top-p",
        ),
        (
            vec!["generate", &m, "--prompt", "x", "--top-k", "0"],
            "--top-k",
        ),
        (vec!["graph", "--series", &csv, "--alpha", "NaN"], "--alpha"),
        (vec!["graph", "--series", &csv, "--alpha", "1"], "--alpha"),
        (
            vec!["graph", "--series", &csv, "--tau-max", "0"],
            "--tau-max",
        ),
        (
            vec![
                "scale", &m, "--config", "x.toml", "--head", "0.1", "--alphas", "1,NaN",
            ],
            "--alphas",
        ),
        (
            vec!["shapley", &m, "--template", "t.txt", "--budget", "0"],
            "--budget",
        ),
        (
            vec![
                "run",
                &m,
                "--prompt",
                "x",
                "--intervene",
                "scale blocks.0.hook_resid_post alpha=NaN",
            ],
            "alpha must be finite",
        ),
        (
            vec![
                "run",
                &m,
                "--prompt",
                "x",
                "--intervene",
                "add blocks.0.hook_resid_post value=1e39",
            ],
            "32-bit",
        ),
    ];
    for (args, needle) in cases {
        let (ok, _, err) = lantern(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A huge token budget is "too long", not an overflow.
    let (ok, _, err) = lantern(&[
        "generate",
        &m,
        "--prompt",
        "x",
        "--max-new-tokens",
        "18446744073709551615",
    ]);
    assert!(
        !ok && !err.contains("panicked") && err.contains("long"),
        "{err}"
    );
}
