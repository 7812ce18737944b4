//! PromptGame with a toy language model.

mod common;

use common::{assert_close, ToyLm};
use lantern_shapley::{
    exact, run, Absent, Coalition, ExactOptions, Game, Method, PromptGame, ShapleyError, Template,
    ValueKind,
};

fn template() -> Template {
    Template::parse(
        "Context: {{india: I live in India.  | filler: I live somewhere. }}\
         {{america: I visited America.  | filler: I travelled. }}\
         {{noise: The sky is blue. }}My city is",
    )
    .unwrap()
}

fn options() -> ValueKind {
    ValueKind::OptionProb {
        options: vec![" New York".into(), " New Delhi".into()],
        chosen: 1,
    }
}

#[test]
fn option_prob_uses_whole_continuations() {
    // Both options start with the token "New": a first-token method would
    // give 0.5 everywhere. Whole-continuation log-probs separate them.
    let mut game =
        PromptGame::new(template(), Absent::Remove, options(), ToyLm::default()).unwrap();
    let cs: Vec<Coalition> = (0..8).map(Coalition::from_bits).collect();
    let v = game.evaluate(&cs).unwrap();
    let p = |lp_york: f64, lp_delhi: f64| {
        let (a, b) = ((-0.2 + lp_delhi).exp(), (-0.2 + lp_york).exp());
        a / (a + b)
    };
    for (c, v) in cs.iter().zip(&v) {
        let york = if c.contains(1) { -0.1 } else { -2.0 };
        let delhi = if c.contains(0) { -0.1 } else { -2.0 };
        assert!((v - p(york, delhi)).abs() < 1e-12, "{c}: {v}");
    }
    assert!((v[0] - 0.5).abs() < 1e-12 && v[1] > 0.8 && v[2] < 0.2);

    // Exact Shapley: 2-player closed form for (india, america); noise is a dummy.
    let r = exact(&mut game, &ExactOptions::default(), None).unwrap();
    let v2 = |i: bool, a: bool| p(if a { -0.1 } else { -2.0 }, if i { -0.1 } else { -2.0 });
    let phi_india =
        0.5 * ((v2(true, false) - v2(false, false)) + (v2(true, true) - v2(false, true)));
    assert_close(&r.values, &[phi_india, -phi_india, 0.0], 1e-12);
    assert_eq!(r.players, vec!["india", "america", "noise"]);
}

#[test]
fn one_scorer_call_per_batch_with_all_options() {
    let mut game =
        PromptGame::new(template(), Absent::Remove, options(), ToyLm::default()).unwrap();
    let r = exact(
        &mut game,
        &ExactOptions {
            batch_size: 3,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(r.evaluations, 8);
    let lm = game.scorer();
    let sizes: Vec<usize> = lm.calls.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![6, 6, 4]); // 3 + 3 + 2 coalitions × 2 options
    assert_eq!(game.scorer_calls(), 3);
    // Shared prefix handed to the scorer and present in every prompt.
    assert_eq!(game.shared_prefix(), "Context: ");
    assert_eq!(lm.prefix.as_deref(), Some("Context: "));
    assert!(lm
        .calls
        .iter()
        .flatten()
        .all(|r| r.prompt.starts_with("Context: ")));
    // Exact removal of the marked spans only.
    let first = &lm.calls[0];
    assert_eq!(first[0].prompt, "Context: My city is");
    assert_eq!(first[0].continuation, " New York");
    assert_eq!(first[1].continuation, " New Delhi");
    assert_eq!(first[2].prompt, "Context: I live in India. My city is");
}

#[test]
fn filler_mode_and_value_kinds() {
    let t = Template::parse(
        "{{a: This is not good.  | filler: This is okay. }}{{b: Very good.  |filler:}}Answer:",
    )
    .unwrap();
    let target = " yes".to_string();
    let lp = |p: &str| ToyLm::logprob(p, " yes");
    let full = "This is not good. Very good. Answer:";
    let cases = [
        (
            ValueKind::LogProb {
                target: target.clone(),
            },
            lp(full),
        ),
        (
            ValueKind::Prob {
                target: target.clone(),
            },
            lp(full).exp(),
        ),
        (
            ValueKind::OptionDiff {
                a: target.clone(),
                b: " no".into(),
            },
            lp(full) - ToyLm::logprob(full, " no"),
        ),
    ];
    for (kind, expect) in cases {
        let mut g = PromptGame::new(t.clone(), Absent::Filler, kind, ToyLm::default()).unwrap();
        let v = g
            .evaluate(&[Coalition::full(2), Coalition::empty()])
            .unwrap();
        assert!((v[0] - expect).abs() < 1e-12);
        assert_eq!(
            g.scorer().calls[0].last().unwrap().prompt,
            "This is okay. Answer:"
        );
        let r = run(Method::Exact, &mut g, 0, 0, None).unwrap();
        assert!(r.efficiency_gap().abs() < 1e-9);
    }
    // a: "not" costs 0.5, "good" gains 0.3 => φ_a = -0.2 on LogProb; b gains 0.3.
    let mut g = PromptGame::new(
        t,
        Absent::Filler,
        ValueKind::LogProb {
            target: " yes".into(),
        },
        ToyLm::default(),
    )
    .unwrap();
    let r = exact(&mut g, &ExactOptions::default(), None).unwrap();
    assert_close(&r.values, &[-0.2, 0.3], 1e-12);
}

#[test]
fn bad_inputs_are_errors() {
    let lp = || ValueKind::LogProb {
        target: " yes".into(),
    };
    // Missing filler.
    let t = Template::parse("{{a: x | filler: y}} {{b: z}}").unwrap();
    let e = PromptGame::new(t, Absent::Filler, lp(), ToyLm::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, ShapleyError::MissingFiller { player } if player == "b"),
        "{e}"
    );
    // Options.
    let t = template();
    let bad = [
        ValueKind::OptionProb {
            options: vec![" a".into()],
            chosen: 0,
        },
        ValueKind::OptionProb {
            options: vec![" a".into(), " b".into()],
            chosen: 2,
        },
        ValueKind::OptionProb {
            options: vec![" a".into(), " a".into()],
            chosen: 0,
        },
    ];
    for kind in bad {
        let e = PromptGame::new(t.clone(), Absent::Remove, kind, ToyLm::default())
            .err()
            .unwrap();
        assert!(matches!(e, ShapleyError::InvalidArgument(_)), "{e}");
    }
    let e = PromptGame::new(
        t.clone(),
        Absent::Remove,
        ValueKind::LogProb {
            target: String::new(),
        },
        ToyLm::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, ShapleyError::EmptyContinuation { .. }), "{e}");
    // A continuation that tokenises to nothing.
    let mut g = PromptGame::new(
        t,
        Absent::Remove,
        ValueKind::Prob {
            target: "  ".into(),
        },
        ToyLm::default(),
    )
    .unwrap();
    let e = exact(&mut g, &ExactOptions::default(), None).unwrap_err();
    assert!(matches!(e, ShapleyError::EmptyContinuation { .. }), "{e}");
    assert!(e.to_string().contains("tokenises to no tokens"));
    // No players.
    assert!(matches!(
        Template::parse("plain text"),
        Err(ShapleyError::NoPlayers)
    ));
}

#[test]
fn too_many_components_for_exact() {
    let src: String = (0..17)
        .map(|i| format!("{{{{c{i}: word{i} }}}}"))
        .collect::<String>()
        + "Answer:";
    let t = Template::parse(&src).unwrap();
    let mut g = PromptGame::new(
        t,
        Absent::Remove,
        ValueKind::LogProb {
            target: " yes".into(),
        },
        ToyLm::default(),
    )
    .unwrap();
    let e = run(Method::Exact, &mut g, 0, 0, None).unwrap_err();
    assert!(matches!(
        e,
        ShapleyError::ExactTooLarge { n: 17, limit: 16 }
    ));
    let msg = e.to_string();
    assert!(msg.contains("`permutation` or `kernel`"), "{msg}");
    let r = run(Method::Kernel, &mut g, 200, 0, None).unwrap();
    assert_eq!(r.values.len(), 17);
    assert!(r.values.iter().all(|v| v.abs() < 1e-6), "{:?}", r.values);
}
