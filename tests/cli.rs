//! The `lantern` binary on the tiny fixture models: JSON shapes, files written, clear errors with
//! a non-zero exit and no half-written output.

mod common;
mod shard;

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
    // Issue #11's additions: self-loops apart, feedback-loop count, density, what happens to
    // unoriented links, and the bootstrap settings in every result.
    for k in [
        "self_loops",
        "n_feedback_loops",
        "density",
        "unoriented_links",
    ] {
        assert!(!v[k].is_null(), "{k}");
    }
    assert_eq!(v["bootstrap"]["requested"], 10);
    assert_eq!(v["bootstrap"]["min_frequency"], 0.5);
    assert!(v["self_loops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["state"] == "a"));
    for (flag, value, msg) in [
        ("--fdr", "1.5", "FDR level must be in (0, 1)"),
        (
            "--session-normalization",
            "sideways",
            "unknown session normalisation",
        ),
    ] {
        let (ok, _, err) = lantern(&["graph", "--series", path.to_str().unwrap(), flag, value]);
        assert!(!ok && err.contains(msg), "{flag} {value}: {err}");
    }
    std::fs::write(&path, "a,b\n1,2\n1,x\n").unwrap();
    let (ok, _, err) = lantern(&["graph", "--series", path.to_str().unwrap(), "--json"]);
    assert!(!ok && err.contains('x'), "{err}");
}

/// `lantern` with extra environment variables.
fn lantern_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lag-1 chain a -> b -> c of `graph_runs_on_any_recorded_series`, smaller.
fn write_series(path: &std::path::Path) {
    let mut csv = String::from("session,step,a,b,c\n");
    let mut rng = 777u64;
    let mut noise = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    for s in 0..2 {
        let (mut a, mut b) = (0.0, 0.0);
        for t in 0..80 {
            let (na, nb, c) = (0.5 * a + noise(), 0.8 * a + noise(), 0.8 * b + noise());
            (a, b) = (na, nb);
            csv.push_str(&format!("{s},{t},{a},{b},{c}\n"));
        }
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn same_inputs_and_seed_give_byte_identical_json() {
    let dir = scratch("determinism");
    let template = dir.join("template.txt");
    std::fs::write(
        &template,
        "{{a: Hello there.}}{{b: The weather is fine.}}{{c: We like tea.}}{{d: It is late.}}{{e: Go on.}}{{f: Yes.}} The answer is",
    )
    .unwrap();
    let series = dir.join("series.csv");
    write_series(&series);
    let m = model();
    let commands: Vec<Vec<&str>> = vec![
        vec!["run", &m, "--prompt", "Hello there", "--top-k", "8"],
        vec![
            "heads",
            &m,
            "--prompt",
            "Hello there",
            "--target",
            " a",
            "--versus",
            " b",
        ],
        vec![
            "patch",
            &m,
            "--clean",
            "Hello there",
            "--corrupted",
            "Jello there",
            "--target",
            " a",
            "--versus",
            " b",
            "--metric",
            "logit_diff",
        ],
        vec![
            "shapley",
            &m,
            "--template",
            template.to_str().unwrap(),
            "--target",
            " a",
            "--method",
            "permutation",
            "--budget",
            "30",
            "--seed",
            "7",
        ],
        vec![
            "graph",
            "--series",
            series.to_str().unwrap(),
            "--bootstrap",
            "8",
            "--seed",
            "3",
        ],
        vec![
            "generate",
            &m,
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "8",
            "--temperature",
            "1.0",
            "--seed",
            "11",
        ],
    ];
    for args in commands {
        let args: Vec<&str> = args.into_iter().chain(["--json", "--quiet"]).collect();
        let (ok, first, err) = lantern(&args);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&first)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {first}"));
        let (ok, second, err) = lantern(&args);
        assert!(ok, "{args:?}: {err}");
        assert!(
            first == second,
            "{args:?} differs between two runs:\n{first}\n---\n{second}"
        );
    }
}

#[test]
fn a_corrupt_weight_fails_with_the_hook_point_where_it_first_shows() {
    let dir = scratch("nan");
    let m = fixture_with_weight(
        "llama",
        "model.layers.1.self_attn.v_proj.weight",
        f32::NAN,
        &dir,
    );
    let m = m.to_str().unwrap();
    let experiments = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let p1_file = experiments.join("p1_capitals.toml").display().to_string();
    let p3_file = experiments.join("p3_states.toml").display().to_string();
    for args in [
        vec!["run", m, "--prompt", "Hello there"],
        vec!["generate", m, "--prompt", "Hello", "--max-new-tokens", "3"],
        vec!["heads", m, "--prompt", "Hello there", "--target", " a"],
        vec![
            "patch",
            m,
            "--clean",
            "Hello there",
            "--corrupted",
            "Jello there",
            "--target",
            " a",
            "--versus",
            " b",
        ],
        // Long pipelines check the model once, right after loading it.
        vec!["scale", m, "--config", &p1_file, "--head", "0.1"],
        vec!["states", m, "--config", &p3_file],
    ] {
        let args: Vec<&str> = args.into_iter().chain(["--json", "--quiet"]).collect();
        let (ok, out, err) = lantern(&args);
        assert!(!ok, "{args:?} should fail, printed {out}");
        assert!(err.contains("blocks.1.attn.hook_v"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn hub_ids_use_the_hf_environment_and_explain_offline_use() {
    let dir = scratch("hub");
    let home = dir.to_str().unwrap();
    // Port 9 on the loopback address refuses at once: no network is needed.
    let env = [
        ("HF_HOME", home),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
        ("HF_TOKEN", "hf_test"),
    ];
    let (ok, _, err) = lantern_env(
        &[
            "run",
            "some-org/some-model@v1.0",
            "--prompt",
            "x",
            "--quiet",
        ],
        &env,
    );
    assert!(!ok);
    assert!(err.contains("some-org/some-model@v1.0"), "{err}");
    assert!(
        err.contains("http://127.0.0.1:9"),
        "HF_ENDPOINT is used: {err}"
    );
    assert!(err.contains("local path"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

const KILL_TEST_HOOKS: &str = "blocks.*.attn.hook_*,blocks.*.mlp.hook_*";

/// Runs `lantern cache` writing `out`, SIGKILLed after `delay` (if still running).
fn killed_cache_export(
    model: &str,
    prompt: &str,
    out: &std::path::Path,
    delay: std::time::Duration,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args([
            "cache",
            model,
            "--prompt",
            prompt,
            "--hooks",
            KILL_TEST_HOOKS,
        ])
        .args(["--quiet", "--out"])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL on Unix; fails harmlessly when the run has already ended
    let _ = child.wait();
}

/// Every file of a folder by name, with its bytes.
fn folder_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Removes what killed runs left behind (their hidden temporary files and folders).
fn remove_leftovers(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            let _ = std::fs::remove_dir_all(e.path());
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[test]
fn a_run_killed_mid_write_leaves_the_old_file_or_the_complete_new_one() {
    use std::time::Instant;
    // The tiny llama with a longer context (rotary positions have no weights), so one export of
    // every attention and MLP hook is tens of MB and writing it takes a measurable time.
    let dir = scratch("sigkill");
    let model_dir = dir.join("model");
    std::fs::create_dir(&model_dir).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir("llama").join(f), model_dir.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir("llama").join("config.json")).unwrap(),
    )
    .unwrap();
    cfg["max_position_embeddings"] = serde_json::json!(2048);
    std::fs::write(model_dir.join("config.json"), cfg.to_string()).unwrap();
    let m = model_dir.to_str().unwrap();
    let old_prompt = "An older, shorter prompt.";
    let new_prompt = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();

    // The complete outputs, and how long a full run takes.
    let export = |prompt: &str, out: &std::path::Path| {
        let (ok, _, err) = lantern(&[
            "cache",
            m,
            "--prompt",
            prompt,
            "--hooks",
            KILL_TEST_HOOKS,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
    };
    export(old_prompt, &dir.join("old.safetensors"));
    // The slower of the two exports; runs vary (fsync, a busy machine), so the kills below reach
    // well past it.
    let timed = |out: &str| {
        let start = Instant::now();
        export(&new_prompt, &dir.join(out));
        start.elapsed()
    };
    let full_run = timed("new.safetensors").max(timed("new_npy"));
    let old = std::fs::read(dir.join("old.safetensors")).unwrap();
    let new = std::fs::read(dir.join("new.safetensors")).unwrap();
    let new_npy = folder_files(&dir.join("new_npy"));
    assert!(
        new.len() > 10_000_000,
        "the new export is {} bytes",
        new.len()
    );
    assert_ne!(old, new);

    // Kill runs at delays spread over the whole run, the write included: one replacing an old
    // safetensors file, one creating a folder of .npy files.
    let file = out_dir.join("c.safetensors");
    let folder = out_dir.join("npy");
    let (mut kept_old, mut got_new, mut no_folder, mut full_folder) = (0, 0, 0, 0);
    let steps = 16;
    for i in 0..=steps {
        let delay = full_run.mul_f64(0.2 + 1.8 * i as f64 / steps as f64);
        std::fs::write(&file, &old).unwrap();
        killed_cache_export(m, &new_prompt, &file, delay);
        let now = std::fs::read(&file).expect("the old file is never removed without a new one");
        if now == old {
            kept_old += 1;
        } else if now == new {
            got_new += 1;
            candle_core::safetensors::load(&file, &candle_core::Device::Cpu).expect("parses");
        } else {
            panic!(
                "killed after {delay:?}: a torn file of {} bytes (old {}, new {})",
                now.len(),
                old.len(),
                new.len()
            );
        }

        let _ = std::fs::remove_dir_all(&folder);
        killed_cache_export(m, &new_prompt, &folder, delay);
        if !folder.exists() {
            no_folder += 1;
        } else {
            let files = folder_files(&folder);
            assert!(
                files == new_npy,
                "killed after {delay:?}: a partial folder of {} files ({} expected)",
                files.len(),
                new_npy.len()
            );
            full_folder += 1;
        }
        remove_leftovers(&out_dir);
    }
    eprintln!(
        "full run {full_run:?}: safetensors kept old {kept_old}, new {got_new}; npy folder none \
         {no_folder}, complete {full_folder}"
    );
    assert!(
        kept_old > 0 && no_folder > 0,
        "no kill landed before the rename: the test did not probe the write"
    );
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
            // `=` keeps clap from reading -1 as a flag: the value parser must refuse it.
            vec!["generate", &m, "--prompt", "x", "--temperature=-1"],
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

#[test]
fn a_model_name_loads_the_cached_model_and_an_unknown_name_lists_the_known_ones() {
    let dir = model_dir();
    smollm2_path(); // cached (fetched by scripts/test.sh), so the name needs no download here
    let env = [("LANTERN_MODEL_DIR", dir.to_str().unwrap())];
    let args = [
        "run",
        "smollm2-135m",
        "--prompt",
        "The capital of France is",
    ];
    let (ok, out, err) = lantern_env(&[&args[..], &["--json", "--quiet"]].concat(), &env);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["top"][0]["token"], " Paris");
    let (ok, _, err) = lantern_env(
        &["run", "qwen2.5-coder-9b", "--prompt", "x", "--quiet"],
        &env,
    );
    assert!(!ok);
    assert!(err.contains("not a known model name"), "{err}");
    for name in [
        "smollm2-135m",
        "gemma3-270m",
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
    ] {
        assert!(err.contains(name), "{err}");
    }
}

/// `lantern patch --method atp`: the top cells verified exactly come back beside their AtP
/// estimates, the JSON is deterministic, and flags that mean nothing are refused by name.
#[test]
fn patch_method_atp_verifies_its_top_cells_and_refuses_bad_flags() {
    let m = model();
    let m = m.as_str();
    let base = [
        "patch",
        m,
        "--clean",
        "Hello there",
        "--corrupted",
        "Jello there",
        "--target",
        " a",
        "--versus",
        " b",
        "--metric",
        "logit_diff",
        "--quiet",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    let (ok, out, err) = lantern(&with(&["--method", "atp", "--verify", "2", "--json"]));
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let verified = json["verified"].as_array().unwrap();
    assert_eq!(verified.len(), 2);
    for v in verified {
        assert!(v["atp"].as_f64().unwrap().is_finite() && v["exact"].as_f64().unwrap().is_finite());
    }
    assert_eq!(json["method"], "atp");
    let (_, again, _) = lantern(&with(&["--method", "atp", "--verify", "2", "--json"]));
    assert_eq!(out, again, "same inputs, same JSON");
    for (extra, needle) in [
        (&["--method", "atp", "--verify", "0"][..], "--verify 0"),
        (&["--verify", "3"][..], "belong to --method atp"),
        (&["--method", "gradient"][..], "unknown --method `gradient`"),
        (
            &["--method", "atp", "--shard", "0/2"][..],
            "takes no --shard",
        ),
    ] {
        let (ok, _, err) = lantern(&with(extra));
        assert!(!ok, "{extra:?} should fail");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }
}

/// `lantern bench` on the tiny Llama fixture: forward timings with and without every hook
/// cached, and with `--generate` prefill and decoding speed with and without steering; plain
/// and `--dtype q8_0`. Bad counts and a sequence longer than the context are refused.
#[test]
fn bench_reports_forward_and_generation_timings() {
    let llama = fixture_dir("llama").display().to_string();
    for dtype in ["f32", "q8_0"] {
        let (ok, out, err) = lantern(&[
            "bench",
            &llama,
            "--dtype",
            dtype,
            "--batch",
            "2",
            "--seq",
            "8",
            "--reps",
            "2",
            "--generate",
            "4",
            "--json",
            "--quiet",
        ]);
        assert!(ok, "{dtype}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let r = &v["report"];
        assert_eq!((r["batch"].as_u64(), r["seq"].as_u64()), (Some(2), Some(8)));
        for t in [
            &r["forward"],
            &r["forward_all_hooks"],
            &r["generate"]["prefill"],
        ] {
            let (lo, mid, hi) = (
                t["min_ms"].as_f64().unwrap(),
                t["median_ms"].as_f64().unwrap(),
                t["max_ms"].as_f64().unwrap(),
            );
            assert!(0.0 < lo && lo <= mid && mid <= hi, "{t}");
        }
        assert!(r["hook_points_cached"].as_u64().unwrap() > 20);
        let g = &r["generate"];
        assert_eq!(g["new_tokens"].as_u64(), Some(4));
        assert!(g["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(g["decode_tokens_per_s_with_intervention"].as_f64().unwrap() > 0.0);
        assert_eq!(g["streams"]["streams"].as_u64(), Some(2));
        assert!(g["streams"]["tokens_per_s"].as_f64().unwrap() > 0.0);
    }
    let (ok, out, _) = lantern(&["bench", &llama, "--seq", "4", "--reps", "1", "--quiet"]);
    assert!(
        ok && out.contains("all") && out.contains("hooks cached"),
        "{out}"
    );
    for (args, want) in [
        (vec!["--batch", "0"], "--batch must be at least 1"),
        (vec!["--generate", "0"], "--generate must be at least 1"),
        (vec!["--seq", "65"], "longer than the model's context of 64"),
        (
            vec!["--seq", "60", "--generate", "8"],
            "longer than the model's context",
        ),
        (vec!["--dtype", "q3"], "unknown dtype `q3`"),
    ] {
        let mut all = vec!["bench", llama.as_str(), "--quiet"];
        all.extend(args.iter().copied());
        let (ok, _, err) = lantern(&all);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
}
