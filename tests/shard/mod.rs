//! Sharded sweeps (`--shard I/N --out PART.jsonl`) and `lantern merge` on the tiny fixture
//! models: merged = unsharded byte for byte, resuming after a kill, and bad input refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{lantern, lantern_env, model, scratch};
use crate::common::fixture_dir;

const TEMPLATE: &str = "{{a: Hello there.}}{{b: The weather is fine.}}{{c: We like tea.}}{{d: It is late.}}{{e: Go on.}} The answer is";

fn patch_args(m: &str) -> Vec<String> {
    [
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
        "--batch-size",
        "2",
        "--quiet",
    ]
    .map(String::from)
    .to_vec()
}

fn shapley_args(m: &str, template: &Path, method: &str) -> Vec<String> {
    [
        "shapley",
        m,
        "--template",
        template.to_str().unwrap(),
        "--target",
        " a",
        "--method",
        method,
        "--budget",
        "24",
        "--seed",
        "7",
        "--coalitions-per-call",
        "4",
        "--quiet",
    ]
    .map(String::from)
    .to_vec()
}

fn run_ok(args: &[String], extra: &[&str]) -> String {
    let all: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect();
    let (ok, out, err) = lantern(&all);
    assert!(ok, "{all:?}: {err}");
    out
}

fn run_err(args: &[String], extra: &[&str]) -> String {
    let all: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect();
    let (ok, _, err) = lantern(&all);
    assert!(!ok, "{all:?} should fail");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `args` as `n` shards into `dir/NAME-i.jsonl` and returns the part paths.
fn shards(args: &[String], dir: &Path, name: &str, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("{name}-{i}.jsonl"));
            run_ok(
                args,
                &["--shard", &format!("{i}/{n}"), "--out", p.to_str().unwrap()],
            );
            p
        })
        .collect()
}

fn merge_json(parts: &[PathBuf]) -> String {
    let args: Vec<String> = std::iter::once("merge".to_string())
        .chain(parts.iter().map(|p| p.display().to_string()))
        .chain(["--json".to_string()])
        .collect();
    run_ok(&args, &[])
}

#[test]
fn merged_shards_print_exactly_what_one_run_prints() {
    let dir = scratch("shard-merge");
    let m = model();
    let patch = patch_args(&m);
    let whole = run_ok(&patch, &["--json"]);
    for n in [1, 3, 4] {
        let parts = shards(&patch, &dir, &format!("patch{n}"), n);
        assert_eq!(merge_json(&parts), whole, "patch in {n} shards");
    }
    // A budget of about one layer's activations (3584 bytes here) sweeps layer by layer: same bytes.
    let chunked = run_ok(&patch, &["--json", "--max-cache-bytes", "4000"]);
    assert_eq!(chunked, whole, "chunked by --max-cache-bytes");
    let e = run_err(&patch, &["--json", "--max-cache-bytes", "10"]);
    assert!(
        e.contains("--max-cache-bytes 10") && e.contains("one layer"),
        "{e}"
    );

    let template = dir.join("template.txt");
    std::fs::write(&template, TEMPLATE).unwrap();
    for method in ["exact", "permutation", "kernel"] {
        let args = shapley_args(&m, &template, method);
        let whole = run_ok(&args, &["--json"]);
        let parts = shards(&args, &dir, method, 3);
        assert_eq!(merge_json(&parts), whole, "{method} in 3 shards");
    }

    // P1's α sweep: one α per unit.
    let config = p1_config(&dir, "n_prompts = 100", "n_prompts = 3");
    let scale: Vec<String> = [
        "scale",
        &m,
        "--config",
        config.to_str().unwrap(),
        "--head",
        "1.0",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    let whole = run_ok(&scale, &["--json"]);
    let parts = shards(&scale, &dir, "scale", 3);
    assert_eq!(merge_json(&parts), whole, "scale in 3 shards");

    // Without --shard, a Slurm array task's variables pick the shard (ids 1..=2 here).
    let args = shapley_args(&m, &template, "exact");
    let parts: Vec<PathBuf> = (1..=2)
        .map(|id| {
            let p = dir.join(format!("slurm-{id}.jsonl"));
            let all: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .chain(["--out", p.to_str().unwrap()])
                .collect();
            let id = id.to_string();
            let (ok, _, err) = lantern_env(
                &all,
                &[
                    ("SLURM_ARRAY_TASK_ID", &id),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "2"),
                ],
            );
            assert!(ok, "{err}");
            assert!(
                err.contains(&format!("shard {}/2", id.parse::<usize>().unwrap() - 1)),
                "{err}"
            );
            p
        })
        .collect();
    assert_eq!(merge_json(&parts), run_ok(&args, &["--json"]));
}

/// Lines of a part file.
fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_killed_shard_resumes_where_it_stopped() {
    let dir = scratch("shard-resume");
    let m = model();
    let template = dir.join("template.txt");
    std::fs::write(&template, TEMPLATE).unwrap();
    let mut args = shapley_args(&m, &template, "exact");
    let cpc = args.iter().position(|a| a == "4").unwrap();
    args[cpc] = "1".into(); // one coalition per block: 32 blocks
    let whole = run_ok(&args, &["--json"]);
    let part = dir.join("part.jsonl");
    let out = ["--shard", "0/1", "--out", part.to_str().unwrap()];

    // SIGKILL once a few blocks are written (or after the run if it was faster than that).
    let mut child = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args.iter().map(String::as_str).chain(out))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < 60 {
        if std::fs::read_to_string(&part).is_ok_and(|t| t.lines().count() >= 4) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let killed_at = lines(&part).len();
    run_ok(&args, &out);
    assert_eq!(
        merge_json(std::slice::from_ref(&part)),
        whole,
        "killed after {killed_at} lines"
    );

    // A torn last line (a write cut by the kill) and a block missing: dropped and redone.
    let full = std::fs::read_to_string(&part).unwrap();
    let keep = full.len() - 30;
    std::fs::write(&part, &full[..keep]).unwrap();
    let e = run_err(&["merge".to_string(), part.display().to_string()], &[]);
    assert!(e.contains("line 33 is torn") && e.contains("rerun"), "{e}");
    let (ok, _, err) = lantern(
        &args
            .iter()
            .map(String::as_str)
            .chain(out)
            .collect::<Vec<_>>(),
    );
    assert!(ok, "{err}");
    assert!(err.contains("1 blocks run, 31 already in"), "{err}");
    assert_eq!(std::fs::read_to_string(&part).unwrap(), full);
    assert_eq!(merge_json(&[part]), whole);
}

#[test]
fn bad_shards_and_parts_are_refused_by_name() {
    let dir = scratch("shard-bad");
    let m = model();
    let patch = patch_args(&m);
    let p = dir.join("p.jsonl");
    let ps = p.to_str().unwrap();
    let e = run_err(&patch, &["--shard", "5/4", "--out", ps]);
    assert!(
        e.contains("--shard 5/4") && e.contains("not below the shard count 4"),
        "{e}"
    );
    let e = run_err(&patch, &["--shard", "0/0", "--out", ps]);
    assert!(e.contains("--shard 0/0") && e.contains("at least 1"), "{e}");
    let e = run_err(&patch, &["--shard", "0/2"]);
    assert!(e.contains("needs --out PART.jsonl"), "{e}");
    let (ok, _, e) = lantern_env(
        &patch
            .iter()
            .map(String::as_str)
            .chain(["--out", ps])
            .collect::<Vec<_>>(),
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
    );
    assert!(!ok && e.contains("not below the shard count 4"), "{e}");
    assert!(!p.exists(), "no part file from refused input");

    let parts = shards(&patch, &dir, "a", 2);
    let merged = dir.join("merged.json");
    let ms = merged.to_str().unwrap();
    let merge = |parts: &[&Path]| -> String {
        let args: Vec<String> = std::iter::once("merge".to_string())
            .chain(parts.iter().map(|p| p.display().to_string()))
            .chain(["--json", "--out", ms].map(String::from))
            .collect();
        let e = run_err(&args, &[]);
        assert!(!merged.exists(), "nothing half-merged: {e}");
        e
    };
    // A missing shard, a duplicated one.
    let e = merge(&[&parts[0]]);
    assert!(
        e.contains("units are missing, first `L0/2` (block 1, shard 1/2)"),
        "{e}"
    );
    let e = merge(&[&parts[0], &parts[1], &parts[1]]);
    assert!(
        e.contains("is duplicated") && e.contains("a-1.jsonl"),
        "{e}"
    );
    // Other options, another model, another command.
    let mut other = patch.clone();
    let i = other.iter().position(|a| a == "logit_diff").unwrap();
    other[i] = "prob".into();
    let o = shards(&other, &dir, "metric", 2);
    let e = merge(&[&parts[0], &o[1]]);
    assert!(
        e.contains("different option `metric`: \"logit_diff\" vs \"prob\""),
        "{e}"
    );
    let template = dir.join("template.txt");
    std::fs::write(&template, TEMPLATE).unwrap();
    let s = shards(&shapley_args(&m, &template, "exact"), &dir, "gpt2", 2);
    let e = merge(&[&s[0], &parts[1]]);
    assert!(
        e.contains("different commands: `shapley` vs `patch`"),
        "{e}"
    );
    let llama = fixture_dir("llama").display().to_string();
    let l = shards(&shapley_args(&llama, &template, "exact"), &dir, "llama", 2);
    let e = merge(&[&s[0], &l[1]]);
    assert!(
        e.contains("different models") && e.contains("sha256"),
        "{e}"
    );
    let e = merge(&[&parts[0], &shards(&patch, &dir, "three", 3)[1]]);
    assert!(e.contains("different shard counts: 2 vs 3"), "{e}");
    // A corrupted line, and a part rerun into a file of another sweep.
    let text = std::fs::read_to_string(&parts[1]).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, text.replacen("\"value\":", "\"valeu\":", 1)).unwrap();
    let e = merge(&[&parts[0], &bad]);
    assert!(e.contains("bad.jsonl line 2 is corrupted"), "{e}");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut record: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    record["value"] = "x".into();
    lines[1] = record.to_string();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let e = merge(&[&parts[0], &bad]);
    assert!(e.contains("value \"x\" is not a number"), "{e}");
    let e = run_err(
        &other,
        &["--shard", "1/2", "--out", parts[1].to_str().unwrap()],
    );
    assert!(
        e.contains("holds another sweep's part") && e.contains("metric"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&parts[1]).unwrap(),
        text,
        "left as it was"
    );
}

#[test]
fn devices_are_parsed_and_a_gpu_without_the_cuda_build_is_named() {
    let dir = scratch("shard-device");
    let m = model();
    let run = |device: &str| {
        let (ok, _, err) = lantern(&["run", &m, "--prompt", "Hi", "--device", device]);
        (ok, err)
    };
    assert!(run("cpu").0);
    let (ok, e) = run("gpu");
    assert!(
        !ok && e.contains("unknown device `gpu`") && e.contains("cuda:N"),
        "{e}"
    );
    let (ok, e) = run("cuda:x");
    assert!(!ok && e.contains("unknown device `cuda:x`"), "{e}");
    if !cfg!(feature = "cuda") {
        let (ok, e) = run("cuda:1");
        assert!(
            !ok && e.contains("`cuda:1`") && e.contains("--features cuda"),
            "{e}"
        );
    }
    // An experiment file's device and dtype keys reach the model loader (and the flags
    // override them).
    let file = p1_config(&dir, "[p1]", "device = \"tpu\"\ndtype = \"f64\"\n\n[p1]");
    let f = file.to_str().unwrap();
    let (ok, _, e) = lantern(&["experiment", f, "--model", &m, "--quiet"]);
    assert!(!ok && e.contains("unknown dtype `f64`"), "{e}");
    let (ok, _, e) = lantern(&["experiment", f, "--model", &m, "--dtype", "f32", "--quiet"]);
    assert!(!ok && e.contains("unknown device `tpu`"), "{e}");
}

/// The repository's P1 experiment file with its data path made absolute and `from` replaced by
/// `to`, written into `dir`.
fn p1_config(dir: &Path, from: &str, to: &str) -> PathBuf {
    let root = crate::common::repo_root();
    let text = std::fs::read_to_string(root.join("experiments/p1_capitals.toml"))
        .unwrap()
        .replace(from, to)
        .replace("max_new_tokens = 15", "max_new_tokens = 3")
        .replace(
            "data/capitals.csv",
            &root
                .join("experiments/data/capitals.csv")
                .display()
                .to_string(),
        );
    let file = dir.join("p1.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The llama fixture with its position window widened (its rotary model reads any length; the
/// 64-token window is only a config value, too short for P3's question + answer contexts).
fn wide_llama(dir: &Path) -> String {
    let m = dir.join("llama-wide");
    std::fs::create_dir_all(&m).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir("llama").join(f), m.join(f)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir("llama").join("config.json")).unwrap(),
    )
    .unwrap();
    config["max_position_embeddings"] = serde_json::json!(1024);
    std::fs::write(m.join("config.json"), config.to_string()).unwrap();
    m.display().to_string()
}

#[test]
fn sharded_p3_sessions_merge_into_the_unsharded_series() {
    let dir = scratch("shard-sessions");
    let m = wide_llama(&dir);
    let data = crate::common::repo_root().join("experiments/data");
    // 5 sessions in batches of 2: blocks of 2, 2 and 1 sessions.
    let config = dir.join("p3.toml");
    std::fs::write(
        &config,
        format!(
            "[p3]\ndata = \"{}\"\nquestions = \"{}\"\nlayer = 1\nmethod = \"diff_means\"\n\
             accuracy_threshold = 0.0\nsessions = 5\nsteps = 3\ncontext_turns = 1\n\
             max_new_tokens = 3\nbatch_size = 2\nseed = 3\n",
            data.join("states.csv").display(),
            data.join("session_questions.txt").display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let states = dir.join("states.json");
    run_ok(
        &[
            "states",
            &m,
            "--config",
            c,
            "--out",
            states.to_str().unwrap(),
            "--quiet",
        ]
        .map(String::from),
        &[],
    );
    let args: Vec<String> = [
        "sessions",
        &m,
        "--config",
        c,
        "--states",
        states.to_str().unwrap(),
        "--steer",
        "worry",
        "--steer-steps",
        "1",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    let whole_csv = dir.join("whole.csv");
    run_ok(&args, &["--out", whole_csv.to_str().unwrap()]);
    let whole = std::fs::read_to_string(&whole_csv).unwrap();
    assert_eq!(whole.lines().count(), 1 + 5 * 3, "{whole}");
    let merge_to = |parts: &[PathBuf], out: &Path| -> String {
        let args: Vec<String> = std::iter::once("merge".to_string())
            .chain(parts.iter().map(|p| p.display().to_string()))
            .chain(["--json", "--out", out.to_str().unwrap()].map(String::from))
            .collect();
        run_ok(&args, &[])
    };
    for n in [2, 3] {
        let parts = shards(&args, &dir, &format!("sessions{n}"), n);
        let merged = dir.join(format!("merged{n}.csv"));
        let printed = merge_to(&parts, &merged);
        assert_eq!(
            std::fs::read_to_string(&merged).unwrap(),
            whole,
            "{n} shards"
        );
        assert_eq!(printed, whole, "{n} shards, printed");
    }

    // A kill mid-block: the torn record and its block's other record are dropped and redone.
    let part = dir.join("resume.jsonl");
    let out = ["--shard", "0/1", "--out", part.to_str().unwrap()];
    run_ok(&args, &out);
    let full = std::fs::read_to_string(&part).unwrap();
    let record_lines: Vec<&str> = full.split_inclusive('\n').collect();
    assert_eq!(
        record_lines.len(),
        1 + 5,
        "a header and one line per session"
    );
    let cut: usize = record_lines[..4].iter().map(|l| l.len()).sum::<usize>() + 10;
    std::fs::write(&part, &full[..cut]).unwrap();
    let (ok, _, err) = lantern(
        &args
            .iter()
            .map(String::as_str)
            .chain(out)
            .collect::<Vec<_>>(),
    );
    assert!(ok, "{err}");
    assert!(err.contains("2 blocks run, 1 already in"), "{err}");
    assert_eq!(std::fs::read_to_string(&part).unwrap(), full);
    let merged = dir.join("resumed.csv");
    merge_to(std::slice::from_ref(&part), &merged);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), whole);

    // A sessions part is not a patch part; --shard needs a part file.
    let patch = shards(&patch_args(&super::model()), &dir, "patch", 2);
    let e = run_err(
        &[
            "merge".to_string(),
            part.display().to_string(),
            patch[1].display().to_string(),
        ],
        &[],
    );
    assert!(
        e.contains("different commands: `sessions` vs `patch`"),
        "{e}"
    );
    let e = run_err(&args, &["--shard", "0/2", "--out", "series.csv"]);
    assert!(e.contains("needs --out PART.jsonl"), "{e}");
}
