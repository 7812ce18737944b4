//! Attribution on the tiny fixture models: DLA identities, patching identities, fast = naive
//! sweeps, value-scaling identities, and parity with the TransformerLens-style reference
//! computations of scripts/fixtures/make_fixtures.py (within 1e-4).

mod common;

use candle_core::{DType, D};
use common::*;
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::*;
use lantern_engine::*;

/// The fixture's two reference prompts (same length) as clean and corrupted.
fn pair(arch: &str) -> (Batch, Batch) {
    let ids = ids_of(&load_reference(arch, "reference.safetensors")["input_ids"]);
    (
        Batch::from_ids(vec![ids[0].clone()]).unwrap(),
        Batch::from_ids(vec![ids[1].clone()]).unwrap(),
    )
}

#[test]
fn dla_pieces_sum_to_the_logit_difference() {
    for arch in ["gpt2", "gpt_neox", "llama", "qwen2", "phi3"] {
        let lm = load_fixture(arch);
        let batch = Batch::from_prompts(
            &lm.tokenizer,
            &["The quick brown fox", "Hello there friend"],
        )
        .unwrap();
        let dirs = [
            LogitDirection {
                target: 5,
                versus: Some(17),
            },
            LogitDirection {
                target: 3,
                versus: None,
            },
        ];
        for d in direct_logit_attribution(&lm.model, &batch, &dirs, None).unwrap() {
            let err = (d.total + d.bias_terms - d.logit_diff).abs();
            assert!(
                err <= 1e-4,
                "{arch}: pieces + biases = {} but the logit difference is {}",
                d.total + d.bias_terms,
                d.logit_diff
            );
        }
    }
}

#[test]
fn dla_of_a_head_equals_removing_it_with_the_scale_frozen() {
    let lm = load_fixture("gpt2");
    let cfg = lm.model.config().clone();
    let batch = Batch::from_prompts(&lm.tokenizer, &["The quick brown fox jumps"]).unwrap();
    let dir = LogitDirection {
        target: 11,
        versus: Some(40),
    };
    let dla = &direct_logit_attribution(&lm.model, &batch, &[dir], None).unwrap()[0];
    let (layer, head) = (1, 2);
    let res = HookPoint::attn(layer, HookKind::AttnResult);
    let scale_p = HookPoint::global(HookKind::LnFinalScale);
    let mut hooks = Hooks::new().capture(res).capture(scale_p);
    let out = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let last = batch.seq_len() - 1;
    let resid = out.resid_final.get(0).unwrap().get(last).unwrap();
    let r_h = hooks
        .cache
        .require(res)
        .unwrap()
        .get(0)
        .unwrap()
        .get(last)
        .unwrap()
        .get(head)
        .unwrap();
    let s = hooks
        .cache
        .require(scale_p)
        .unwrap()
        .get(0)
        .unwrap()
        .get(last)
        .unwrap();
    let ln = &lm.model.weights().ln_final;
    let frozen = |x: &Tensor| -> f64 {
        let c = x
            .broadcast_sub(&x.mean_keepdim(D::Minus1).unwrap())
            .unwrap()
            .broadcast_div(&s)
            .unwrap();
        let y = c
            .mul(ln.w.as_ref().unwrap())
            .unwrap()
            .add(ln.b.as_ref().unwrap())
            .unwrap();
        let u = logit_direction(&lm.model, dir).unwrap();
        f64::from(
            (y * u)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
        )
    };
    let change = frozen(&resid) - frozen(&(&resid - &r_h).unwrap());
    assert!(
        (change - dla.heads[layer][head]).abs() <= 1e-4,
        "removal changes the logit difference by {change}, DLA says {}",
        dla.heads[layer][head]
    );
    assert_eq!(dla.heads.len(), cfg.n_layers);
}

#[test]
fn dla_matches_the_reference_script() {
    for arch in ["gpt2", "llama"] {
        let lm = load_fixture(arch);
        let reference = load_reference(arch, "attribution.safetensors");
        let inputs = load_reference(arch, "reference.safetensors");
        let ids = ids_of(&inputs["input_ids"]);
        let ab: Vec<i64> = reference["tokens_ab"]
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let dir = LogitDirection {
            target: ab[0] as u32,
            versus: Some(ab[1] as u32),
        };
        let batch = Batch::from_ids(vec![ids[0].clone()]).unwrap();
        let dla = &direct_logit_attribution(&lm.model, &batch, &[dir], None).unwrap()[0];
        let want = reference["dla_heads"].to_vec2::<f32>().unwrap();
        for (l, row) in want.iter().enumerate() {
            for (h, &v) in row.iter().enumerate() {
                assert!(
                    (dla.heads[l][h] - f64::from(v)).abs() <= 1e-4,
                    "{arch} L{l}H{h}: {} vs {v}",
                    dla.heads[l][h]
                );
            }
        }
        let total = f64::from(
            reference["dla_total"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0],
        );
        assert!(
            (dla.total - total).abs() <= 1e-4,
            "{arch}: total {} vs {total}",
            dla.total
        );
    }
}

#[test]
fn patching_map_matches_the_reference_script() {
    for arch in ["gpt2", "llama"] {
        let lm = load_fixture(arch);
        let reference = load_reference(arch, "attribution.safetensors");
        let inputs = load_reference(arch, "reference.safetensors");
        let ids = ids_of(&inputs["input_ids"]);
        let ab: Vec<i64> = reference["tokens_ab"]
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let metric = Metric::LogitDiff {
            target: ab[0] as u32,
            versus: ab[1] as u32,
        };
        let clean = Batch::from_ids(vec![ids[0].clone()]).unwrap();
        let corrupted = Batch::from_ids(vec![ids[1].clone()]).unwrap();
        let result = patch_sweep(
            &lm.model,
            &clean,
            &corrupted,
            PatchTarget::ResidPre,
            PatchGrid::LayerPosition,
            metric,
            SweepOptions::default(),
        )
        .unwrap();
        let want = reference["patch_resid_pre"].to_vec2::<f32>().unwrap();
        for (l, row) in want.iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                assert!(
                    (result.values[l][p] - f64::from(v)).abs() <= 1e-4,
                    "{arch} L{l} pos {p}: {} vs {v}",
                    result.values[l][p]
                );
            }
        }
    }
}

#[test]
fn patching_identities() {
    let lm = load_fixture("gpt2");
    let (clean, corrupted) = pair("gpt2");
    let metric = Metric::LogitDiff {
        target: 7,
        versus: 9,
    };
    // clean == corrupted: no patch has any effect.
    let same = patch_sweep(
        &lm.model,
        &corrupted,
        &corrupted,
        PatchTarget::ResidPre,
        PatchGrid::LayerPosition,
        metric,
        SweepOptions::default(),
    )
    .unwrap();
    for row in &same.values {
        for v in row {
            assert!((v - same.corrupted).abs() <= 1e-5);
        }
    }
    // Patching a whole layer's resid_pre (every position) restores the clean run exactly.
    let whole = patch_sweep(
        &lm.model,
        &clean,
        &corrupted,
        PatchTarget::ResidPre,
        PatchGrid::Layer,
        metric,
        SweepOptions::default(),
    )
    .unwrap();
    assert!(
        (whole.clean - whole.corrupted).abs() > 1e-3,
        "the pair must differ for this test to mean anything"
    );
    for row in &whole.values {
        assert!(
            (row[0] - whole.clean).abs() <= 1e-4,
            "{} vs clean {}",
            row[0],
            whole.clean
        );
    }
}

#[test]
fn fast_sweeps_equal_naive_sweeps() {
    for arch in ["gpt2", "llama", "gpt_neox", "phi3"] {
        let lm = load_fixture(arch);
        let (clean, corrupted) = pair(arch);
        let metric = Metric::LogitDiff {
            target: 7,
            versus: 9,
        };
        let cases = [
            (PatchTarget::ResidPre, PatchGrid::LayerPosition),
            (PatchTarget::AttnOut, PatchGrid::LayerPosition),
            (PatchTarget::MlpOut, PatchGrid::Layer),
            (PatchTarget::HeadZ, PatchGrid::LayerHead),
            (PatchTarget::HeadV, PatchGrid::HeadPosition { layer: 1 }),
            (PatchTarget::HeadPattern, PatchGrid::LayerHead),
            (PatchTarget::ResidPost, PatchGrid::LayerPosition),
        ];
        for (target, grid) in cases {
            let opts = SweepOptions {
                batch_size: 5,
                progress: None,
            };
            let fast =
                patch_sweep(&lm.model, &clean, &corrupted, target, grid, metric, opts).unwrap();
            let naive =
                patch_sweep_naive(&lm.model, &clean, &corrupted, target, grid, metric).unwrap();
            let mut moved = false;
            for (a, b) in fast
                .values
                .iter()
                .flatten()
                .zip(naive.values.iter().flatten())
            {
                assert!(
                    (a - b).abs() <= 1e-4,
                    "{arch} {target:?} {grid:?}: {a} vs {b}"
                );
                moved |= (a - fast.corrupted).abs() > 1e-4;
            }
            assert!(moved, "{arch} {target:?}: no patch had any effect");
        }
    }
}

#[test]
fn alpha_one_is_identity_and_alpha_zero_is_ablation() {
    let lm = load_fixture("gpt2");
    let prompts: Vec<RecallPrompt> = ["The quick brown", "Hello there", "A small test"]
        .iter()
        .map(|p| RecallPrompt {
            prompt: p.to_string(),
            in_context: "the".into(),
            memorized: "a".into(),
        })
        .collect();
    let gen = GenerateConfig {
        max_new_tokens: 6,
        stop_at_eos: false,
        ..Default::default()
    };
    let base =
        scaling::continuations(&lm.model, &lm.tokenizer, &prompts, &gen, &Hooks::new(), 2).unwrap();
    let sweep = alpha_sweep(
        &lm.model,
        &lm.tokenizer,
        &prompts,
        &[(1, 0)],
        &[1.0, 0.0],
        true,
        &gen,
        2,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(sweep[0].continuations, base);
    let v = HookPoint::attn(1, HookKind::AttnV);
    let ablated = scaling::continuations(
        &lm.model,
        &lm.tokenizer,
        &prompts,
        &gen,
        &Hooks::new().intervene(v, Intervention::zero().heads([0])),
        2,
    )
    .unwrap();
    assert_eq!(sweep[1].continuations, ablated);
}

#[test]
fn classification_is_by_first_occurrence() {
    let p = RecallPrompt {
        prompt: String::new(),
        in_context: "London".into(),
        memorized: "Warsaw".into(),
    };
    assert_eq!(classify(" London. Q:", &p), Answer::InContext);
    assert_eq!(classify(" Warsaw, not London", &p), Answer::Memorized);
    assert_eq!(classify(" Paris", &p), Answer::Other);
}
