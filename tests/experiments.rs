//! The paper pipelines end to end on tiny fixture models: every step runs and writes its files.
//! (The real-model runs are in experiments/ and their numbers in the issue notes.)

mod common;

use common::*;
use lantern_experiments::p1;

fn out_dir(name: &str) -> ScratchDir {
    ScratchDir::new(&format!("exp-{name}"))
}

/// Σ log p(continuation tokens | prompt tokens) from one plain forward pass (the reference the
/// scorer is checked against).
fn direct_logprob(lm: &lantern_engine::LoadedModel, prompt: &[u32], cont: &[u32]) -> f64 {
    let ids: Vec<u32> = prompt.iter().chain(cont).copied().collect();
    let batch = lantern_engine::Batch::from_ids(vec![ids]).unwrap();
    let logits = lm
        .model
        .run(
            &batch,
            &mut lantern_engine::Hooks::new(),
            lantern_engine::RunOptions::default(),
        )
        .unwrap()
        .logits
        .unwrap()
        .squeeze(0)
        .unwrap();
    let logp = candle_nn::ops::log_softmax(&logits, 1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    cont.iter()
        .enumerate()
        .map(|(j, &t)| f64::from(logp[prompt.len() + j - 1][t as usize]))
        .sum()
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
        assert_eq!(
            s.points[1].continuations,
            report.baseline.with_context.continuations
        );
    }
    for f in [
        "prompts.json",
        "baseline.json",
        "heads.json",
        "heads.csv",
        "patching.json",
        "patching_resid_pre.csv",
        "alpha_sweep.csv",
        "report.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for fig in [
        "heads_dla",
        "patching_resid_pre",
        "patching_heads",
        "alpha_sweep",
        "baseline",
    ] {
        for ext in ["svg", "png"] {
            let path = out.join(format!("{fig}.{ext}"));
            assert!(
                std::fs::metadata(&path)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{} missing or empty",
                path.display()
            );
        }
    }
    // Same seed, same prompts.
    let caps = p1::read_capitals(&repo_root().join("experiments/data/capitals.csv")).unwrap();
    let a = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap();
    let b = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap();
    assert_eq!(
        a.iter().map(|p| &p.prompt).collect::<Vec<_>>(),
        b.iter().map(|p| &p.prompt).collect::<Vec<_>>()
    );
    assert!(a.iter().all(|p| p.ctx_city != p.capital));
}

#[test]
fn p1_bad_template_and_data_are_clear_errors() {
    let lm = load_fixture("llama");
    let mut cfg: p1::P1Config =
        toml::from_str(r#"data = "experiments/data/capitals.csv""#).unwrap();
    cfg.template = "no placeholders here".into();
    let caps = p1::read_capitals(&repo_root().join("experiments/data/capitals.csv")).unwrap();
    let e = p1::build_prompts(&cfg, &caps, &lm.tokenizer)
        .unwrap_err()
        .to_string();
    assert!(e.contains("{country}"), "{e}");
    let e = p1::read_capitals(&repo_root().join("experiments/data/states.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("country"), "{e}");
    // A split that leaves no held-out prompt is refused before anything runs.
    cfg.template = p1::P1Config::default_template_for_tests();
    cfg.n_prompts = 1;
    let one = p1::build_prompts(&cfg, &caps, &lm.tokenizer).unwrap();
    let e = p1::split_prompts(&cfg, &one).unwrap_err().to_string();
    assert!(e.contains("held out"), "{e}");
    let e = toml::from_str::<p1::P1Config>("data = 'x'\nunknown_key = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown_key"), "{e}");
}

#[test]
fn engine_scorer_matches_direct_log_probabilities() {
    use lantern_shapley::{LanguageModelScorer, ScoreRequest};
    let lm = load_fixture("llama");
    let prefix = "The capital of";
    let requests = vec![
        ScoreRequest::new("The capital of Germany is", " Berlin"),
        ScoreRequest::new("The capital of Poland is Warsaw. The capital of", " Poland"),
        ScoreRequest::new("The capital", " of France"),
    ];
    let direct: Vec<f64> = requests
        .iter()
        .map(|r| {
            let p = lm.tokenizer.encode(&r.prompt).unwrap();
            let c = lm.tokenizer.encode(&r.continuation).unwrap();
            direct_logprob(&lm, &p, &c)
        })
        .collect();
    for (batch_size, with_prefix) in [(1, false), (3, false), (2, true), (3, true)] {
        let mut s = lantern_experiments::scorer::EngineScorer::new(&lm);
        s.batch_size = batch_size;
        if with_prefix {
            s.prepare_shared_prefix(prefix).unwrap();
        }
        let got = s.continuation_logprobs(&requests).unwrap();
        for (g, d) in got.iter().zip(&direct) {
            assert!(
                (g - d).abs() < 1e-4,
                "batch {batch_size}, prefix {with_prefix}: {g} vs {d}"
            );
        }
    }
    let mut s = lantern_experiments::scorer::EngineScorer::new(&lm);
    assert!(s
        .continuation_logprobs(&[ScoreRequest::new("Hello", "")])
        .is_err());
    // An empty prompt reads as the start token.
    let bos = lm
        .model
        .config()
        .bos_token_id
        .or(lm.model.config().eos_token_id)
        .unwrap();
    let c = lm.tokenizer.encode(" Berlin").unwrap();
    let want = direct_logprob(&lm, &[bos], &c);
    let got = s
        .continuation_logprobs(&[ScoreRequest::new("", " Berlin")])
        .unwrap()[0];
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}

#[test]
fn p2_pipeline_on_a_tiny_model() {
    let lm = load_fixture("llama");
    // The fixture's context is 64 tokens, so a short template stands in for the real ones.
    let out = out_dir("p2");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("framing.txt"), "Pick.\n{{context: Jobs. }}{{politeness: Thanks! }}{{framing: Saved. }}{{option_a: A 200. }}{{option_b: B all. }}Answer:").unwrap();
    let cfg: lantern_experiments::p2::P2Config = toml::from_str(
        r#"
        templates = ["framing.txt"]
        noise_players = ["politeness"]
        # The fixture's vocabulary splits " B" in two; options must be single tokens.
        options = ["A", "B"]
        budgets = [18, 32]
        seeds = 2
        "#,
    )
    .unwrap();
    let bar = |_: &str, _: usize| -> Box<dyn FnMut(usize, usize)> { Box::new(|_, _| {}) };
    let reports = lantern_experiments::p2::run_all(&lm, &cfg, &out, &out, &bar).unwrap();
    let r = &reports[0];
    assert_eq!(r.exact.evaluations, 32);
    let sum: f64 = r.exact.values.iter().sum();
    assert!(
        (sum - (r.exact.v_full - r.exact.v_empty)).abs() < 1e-6,
        "efficiency"
    );
    assert!(r.noise_share >= 0.0 && r.noise_share <= 1.0);
    // With the full lattice as budget the kernel estimate is exact.
    let last_kernel = r
        .convergence
        .iter()
        .rfind(|c| c.method == "kernel")
        .unwrap();
    assert!(
        last_kernel.mean_abs_error < 1e-6,
        "{}",
        last_kernel.mean_abs_error
    );
    for fig in [
        "shapley_framing",
        "waterfall_framing",
        "convergence_framing",
        "interaction_framing",
    ] {
        assert!(out.join(format!("{fig}.png")).is_file(), "{fig}");
    }
    let mut two_tokens = cfg.clone();
    two_tokens.options = vec![" A".into(), " B".into()];
    let e = lantern_experiments::p2::run_all(&lm, &two_tokens, &out, &out.join("x"), &bar)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not one"), "{e}");
    assert!(!out.join("x").exists(), "a refused run writes nothing");
    let mut bad = cfg.clone();
    bad.noise_players = vec!["nobody".into()];
    assert!(
        lantern_experiments::p2::run_all(&lm, &bad, &out, &out, &bar)
            .unwrap_err()
            .to_string()
            .contains("nobody")
    );
}

#[test]
fn p3_pipeline_on_a_tiny_model() {
    // The fixture's rotary model reads any length; its 64-token window is only a config value,
    // too short for question + sentence with its 384-token vocabulary, so it is widened here.
    let dir = out_dir("p3-model");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_dir("llama").join(f), dir.join(f)).unwrap();
    }
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir("llama").join("config.json")).unwrap(),
    )
    .unwrap();
    config["max_position_embeddings"] = serde_json::json!(1024);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let lm = lantern_engine::load_path(&dir, &quiet()).unwrap();
    let mut cfg: lantern_experiments::p3::P3Config = toml::from_str(
        r#"
        data = "experiments/data/states.csv"
        questions = "experiments/data/session_questions.txt"
        layer = 1
        method = "diff_means"
        accuracy_threshold = 0.0
        sessions = 4
        steps = 8
        context_turns = 1
        max_new_tokens = 3
        steer_state = "worry"
        steer_steps = [2, 3]
        check_step = 2
        check_sessions = 2
        bootstrap = 4
        alpha = 0.2
        "#,
    )
    .unwrap();
    let out = out_dir("p3");
    let bar = |_: &str, _: usize| -> Box<dyn FnMut(usize, usize)> { Box::new(|_, _| {}) };
    let report = lantern_experiments::p3::run_all(&lm, &cfg, &repo_root(), &out, &bar).unwrap();
    assert_eq!(
        report.probe_accuracy.len(),
        5,
        "five states besides the neutral baseline"
    );
    for f in [
        "states.json",
        "probe_accuracy.csv",
        "series.csv",
        "series_steered.csv",
        "graph.json",
        "graph.dot",
        "report.json",
        "graph.png",
        "session_0.png",
        "session_0_steered.png",
        "probe_accuracy.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let series = std::fs::read_to_string(out.join("series.csv")).unwrap();
    assert_eq!(series.lines().count(), 1 + 4 * 8);
    // Steering changes the measured states only from the first steered step on.
    let steered = std::fs::read_to_string(out.join("series_steered.csv")).unwrap();
    let rows = |s: &str| {
        s.lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .skip(2)
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (rows(&series), rows(&steered));
    assert_eq!(a[0], b[0], "step 0 is before any steering");
    assert_eq!(a[1], b[1], "step 1 is before any steering");
    assert!(
        a[2].iter().zip(&b[2]).any(|(x, y)| (x - y).abs() > 1e-9),
        "steering at step 2 must change the states"
    );
    // The intervention check and its random-direction control cover every state.
    let check = report
        .intervention_check
        .as_ref()
        .expect("the tiny run finds edges");
    assert_eq!(check.comparisons.len(), 5 * 5);
    let control = report.steering_control.as_ref().unwrap();
    assert_eq!(control.states.len(), 5);
    assert_eq!(control.seeds.len(), 3, "three random directions by default");
    for row in &control.states {
        assert_eq!((row.random_at_step.len(), row.random_next.len()), (3, 3));
        let values = [row.own_at_step, row.own_next]
            .into_iter()
            .chain(row.random_at_step.iter().copied())
            .chain(row.random_next.iter().copied());
        assert!(values.into_iter().all(f64::is_finite), "{row:?}");
        assert!(
            row.own_at_step != 0.0 && row.random_at_step.iter().all(|v| *v != 0.0),
            "steering at the step changes the state: {row:?}"
        );
        let mean = row.random_at_step.iter().sum::<f64>() / 3.0;
        assert!((row.random_at_step_mean - mean).abs() < 1e-12);
        assert!(
            row.random_at_step_sd > 0.0,
            "different directions, different effects"
        );
    }
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("intervention_check.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["control"]["states"].as_array().unwrap().len(), 5);
    // Issue #11: a strength sweep with fluency, the strongest fluent strength used and named,
    // every (steered, measured) pair against the random directions, edges scored apart.
    assert_eq!(
        report.strength_sweep.len(),
        4,
        "default strengths 0.25, 0.5, 1, 2"
    );
    let used = report.check_strength.unwrap();
    let fluent: Vec<f64> = report
        .strength_sweep
        .iter()
        .filter(|f| f.fluent)
        .map(|f| f.strength)
        .collect();
    match fluent.last() {
        Some(&strongest) => assert_eq!(used, strongest),
        None => assert_eq!((used, report.check_strength_is_fluent), (0.25, Some(false))),
    }
    assert_eq!(control.strength, used);
    assert_eq!(control.pairs.len(), 5 * 5);
    assert_eq!(
        check.edges.n + check.non_edges.n,
        check.comparisons.len(),
        "edges and non-edges split the comparisons"
    );
    assert!(check
        .comparisons
        .iter()
        .all(|c| c.interval.is_some() && (c.predicted == 0.0) == c.sign_agrees.is_none()));
    assert_eq!(
        report.edges_confirmed.unwrap(),
        report
            .edge_confirmations
            .iter()
            .filter(|e| e.confirmed)
            .count()
    );
    assert!(saved["sweep"].as_array().unwrap().len() == 4);
    assert!(out.join("steering_control.png").is_file());
    // A state below the threshold is never used silently.
    cfg.accuracy_threshold = 1.01;
    let e = lantern_experiments::p3::run_all(&lm, &cfg, &repo_root(), &out, &bar)
        .unwrap_err()
        .to_string();
    assert!(e.contains("threshold"), "{e}");
}

#[test]
fn engine_scorer_is_exact_on_every_coalition_of_a_template() {
    use lantern_shapley::{Coalition, LanguageModelScorer, ScoreRequest, Template};
    let lm = load_fixture("llama");
    let t =
        Template::parse("Pick.\n{{a: Jobs. }}{{b: Thanks! }}{{c: Saved. }}{{d: A 200. }}Answer:")
            .unwrap();
    let mut requests = Vec::new();
    for bits in 0..16u64 {
        let prompt = t
            .render(Coalition::from_bits(bits), lantern_shapley::Absent::Remove)
            .unwrap();
        requests.push(ScoreRequest::new(prompt.clone(), " A"));
        requests.push(ScoreRequest::new(prompt, " B C"));
    }
    let direct = |r: &ScoreRequest| -> f64 {
        let p = lm.tokenizer.encode(&r.prompt).unwrap();
        let c = lm.tokenizer.encode(&r.continuation).unwrap();
        direct_logprob(&lm, &p, &c)
    };
    let want: Vec<f64> = requests.iter().map(direct).collect();
    for batch_size in [1, 3, 8, 64] {
        let mut s = lantern_experiments::scorer::EngineScorer::new(&lm);
        s.batch_size = batch_size;
        s.prepare_shared_prefix(t.shared_prefix()).unwrap();
        let got = s.continuation_logprobs(&requests).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-4,
                "batch {batch_size}, request {i}: {g} vs {w}"
            );
        }
    }
}

/// figures/README.md cites committed results: every figure it names exists (SVG and PNG) and
/// every number in its tables equals the JSON value its `source` cell points to.
#[test]
fn figures_readme_agrees_with_committed_results() {
    let root = repo_root().join("figures");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let num = |s: &str| -> Vec<f64> {
        s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .filter_map(|t| t.parse().ok())
            .collect()
    };
    let (mut rows, mut figures) = (0, 0);
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("Figures (`") {
            let (dir, list) = rest.split_once("`):").unwrap();
            for name in list.split('`').skip(1).step_by(2) {
                for ext in ["svg", "png"] {
                    let p = root.join(dir).join(format!("{name}.{ext}"));
                    assert!(
                        p.is_file(),
                        "{} named in figures/README.md is missing",
                        p.display()
                    );
                }
                figures += 1;
            }
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(source) = cells.iter().find(|c| c.contains(".json#/")) else {
            continue;
        };
        let refs: Vec<&str> = source.split('`').skip(1).step_by(2).collect();
        let (file, ptr) = refs[0].split_once('#').unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
        let shown = num(cells[4]);
        let value = json.pointer(ptr).and_then(|v| v.as_f64()).unwrap();
        assert!((shown[0] - value).abs() < 6e-4, "{line}: {value}");
        if let Some(ci) = refs.get(1).and_then(|r| r.strip_prefix("ci:#")) {
            let ci = json.pointer(ci).unwrap().as_array().unwrap();
            for (s, v) in shown[1..3].iter().zip(ci) {
                assert!((s - v.as_f64().unwrap()).abs() < 6e-4, "{line}: interval");
            }
        }
        rows += 1;
    }
    assert!(rows >= 3 && figures >= 7, "{rows} rows, {figures} figures");
}
