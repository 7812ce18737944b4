//! Engine behaviour on the tiny fixture models: padding, KV cache, interventions, resuming,
//! cache export.

mod common;

use common::*;
use lantern_engine::*;

const TOL: f32 = 1e-5;

fn prompts() -> [&'static str; 3] {
    [
        "The quick brown fox jumps over the lazy dog",
        "Hello there",
        "A small test of padding and masks",
    ]
}

#[test]
fn padded_rows_equal_their_unpadded_runs() {
    for arch in ["gpt2", "gpt_neox", "llama", "qwen2", "phi3"] {
        let lm = load_fixture(arch);
        let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
        assert!(
            batch.pad_left.iter().any(|&p| p > 0),
            "the prompts must need padding"
        );
        let out = lm
            .model
            .run(&batch, &mut Hooks::new(), RunOptions::default())
            .unwrap()
            .logits
            .unwrap();
        for (i, p) in prompts().iter().enumerate() {
            let single = Batch::from_prompts(&lm.tokenizer, &[*p]).unwrap();
            let alone = lm
                .model
                .run(&single, &mut Hooks::new(), RunOptions::default())
                .unwrap()
                .logits
                .unwrap();
            let n = single.seq_len();
            let padded_row = out
                .get(i)
                .unwrap()
                .narrow(0, batch.pad_left[i], n)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let d = max_abs_diff(&padded_row, &alone);
            assert!(
                d <= TOL,
                "{arch}: row {i} differs from its unpadded run by {d}"
            );
        }
    }
}

#[test]
fn kv_cache_generation_equals_full_recomputation() {
    for arch in ["gpt2", "gpt_neox", "llama", "phi3"] {
        let lm = load_fixture(arch);
        let cfg = GenerateConfig {
            max_new_tokens: 8,
            stop_at_eos: false,
            ..Default::default()
        };
        let gen = lm
            .model
            .generate(&lm.tokenizer, "Hello there", &cfg, &mut Hooks::new())
            .unwrap();
        assert_eq!(gen.new_ids.len(), 8);
        // Recompute greedily without a cache: one full forward per token.
        let mut ids = gen.prompt_ids.clone();
        for &expected in &gen.new_ids {
            let batch = Batch::from_ids(vec![ids.clone()]).unwrap();
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
            let next = generate::argmax(&logits.to_vec2::<f32>().unwrap()[0]);
            assert_eq!(next, expected, "{arch}: cached and full decoding disagree");
            ids.push(next);
        }
        // And the cached logits themselves match the full pass.
        let mut cache = lm.model.new_kv_cache(&[0]);
        let prompt = Tensor::new(&gen.prompt_ids[..], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        lm.model
            .run(
                Input::Tokens(&prompt),
                &mut Hooks::new(),
                RunOptions::default().cache(&mut cache).logits(Logits::Last),
            )
            .unwrap();
        let step = Tensor::new(&gen.new_ids[..3], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let cached = lm
            .model
            .run(
                Input::Tokens(&step),
                &mut Hooks::new(),
                RunOptions::default().cache(&mut cache),
            )
            .unwrap()
            .logits
            .unwrap();
        let mut all = gen.prompt_ids.clone();
        all.extend(&gen.new_ids[..3]);
        let full = lm
            .model
            .run(
                &Batch::from_ids(vec![all]).unwrap(),
                &mut Hooks::new(),
                RunOptions::default(),
            )
            .unwrap()
            .logits
            .unwrap();
        let n = gen.prompt_ids.len();
        let d = max_abs_diff(&cached, &full.narrow(1, n, 3).unwrap());
        assert!(d <= 1e-4, "{arch}: cached logits differ by {d}");
    }
}

#[test]
fn identity_interventions_change_nothing() {
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let cfg = lm.model.config().clone();
    let mut clean_hooks = Hooks::new().capture_pattern(&cfg, "*").unwrap();
    let clean = lm
        .model
        .run(&batch, &mut clean_hooks, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    // alpha = 1 at every point that can be scaled.
    let mut hooks = Hooks::new();
    for p in hooks::all_points(&cfg) {
        if p.kind != HookKind::AttnScores {
            hooks = hooks.intervene(p, Intervention::scale(1.0));
        }
    }
    let scaled = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&clean, &scaled) <= TOL);
    // Patching a run with its own cache, everywhere.
    let mut hooks = Hooks::new();
    for (p, t) in clean_hooks.cache.iter() {
        hooks = hooks.intervene(*p, Intervention::patch(t.clone()));
    }
    let patched = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&clean, &patched) <= TOL);
}

#[test]
fn zero_ablating_a_head_changes_its_z_only() {
    let lm = load_fixture("llama");
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let z = HookPoint::attn(1, HookKind::AttnZ);
    let mut base = Hooks::new().capture(z);
    lm.model
        .run(&batch, &mut base, RunOptions::default())
        .unwrap();
    let mut ablated = Hooks::new()
        .intervene(z, Intervention::zero().heads([2]))
        .capture(z);
    lm.model
        .run(&batch, &mut ablated, RunOptions::default())
        .unwrap();
    let (a, b) = (
        base.cache.require(z).unwrap(),
        ablated.cache.require(z).unwrap(),
    );
    let h = lm.model.config().n_heads;
    for head in 0..h {
        let d = max_abs_diff(
            &a.narrow(2, head, 1).unwrap(),
            &b.narrow(2, head, 1).unwrap(),
        );
        if head == 2 {
            let zero = max_abs(&b.narrow(2, 2, 1).unwrap());
            assert_eq!(zero, 0.0);
            assert!(d > 1e-3, "ablating head 2 must change its z");
        } else {
            assert_eq!(d, 0.0, "head {head} changed");
        }
    }
}

#[test]
fn selections_restrict_rows_and_positions() {
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let p = HookPoint::resid_post(0);
    let mut hooks = Hooks::new()
        .intervene(p, Intervention::zero().rows([1]).positions([4]))
        .capture(p);
    lm.model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let r = hooks
        .cache
        .require(p)
        .unwrap()
        .abs()
        .unwrap()
        .sum_keepdim(2)
        .unwrap()
        .squeeze(2)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (b, row) in r.iter().enumerate() {
        for (t, v) in row.iter().enumerate() {
            assert_eq!(*v == 0.0, b == 1 && t == 4, "row {b} position {t}");
        }
    }
}

#[test]
fn value_scaling_conventions() {
    // GPT-2 has value biases, so the two conventions differ; alpha = 0 with b_V scaled equals
    // zero-ablating the head's values, alpha = 1 is the identity.
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let run = |hooks: &mut Hooks| {
        lm.model
            .run(&batch, hooks, RunOptions::default())
            .unwrap()
            .logits
            .unwrap()
    };
    let clean = run(&mut Hooks::new());
    let (p, iv) = lantern_steering::scale_head_values(&lm.model, 1, 3, 1.0, false).unwrap();
    assert!(max_abs_diff(&clean, &run(&mut Hooks::new().intervene(p, iv))) <= TOL);
    let (p, iv) = lantern_steering::scale_head_values(&lm.model, 1, 3, 0.0, true).unwrap();
    let zero_scaled = run(&mut Hooks::new().intervene(p, iv));
    let ablated = run(&mut Hooks::new().intervene(p, Intervention::zero().heads([3])));
    assert!(max_abs_diff(&zero_scaled, &ablated) <= TOL);
    let (p, iv) = lantern_steering::scale_head_values(&lm.model, 1, 3, 0.0, false).unwrap();
    let bias_kept = run(&mut Hooks::new().intervene(p, iv));
    assert!(
        max_abs_diff(&bias_kept, &ablated) > 1e-4,
        "keeping b_V must differ from zeroing v"
    );
}

#[test]
fn value_scaling_is_built_from_general_interventions() {
    // Keeping b_V is `alpha v + (1 - alpha) b_V` on the head: a Scale then an Add of the head's
    // share of the bias, both general interventions. The CLI's text form gives the same
    // intervention as the steering builder, bit for bit.
    let lm = load_fixture("gpt2");
    let cfg = lm.model.config().clone();
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let run = |hooks: &mut Hooks| {
        lm.model
            .run(&batch, hooks, RunOptions::default())
            .unwrap()
            .logits
            .unwrap()
    };
    let (layer, head, alpha) = (1, 3, 2.5);
    let (p, iv) =
        lantern_steering::scale_head_values(&lm.model, layer, head, alpha, false).unwrap();
    assert_eq!(p, HookPoint::attn(layer, HookKind::AttnV));
    let built = run(&mut Hooks::new().intervene(p, iv));
    let b_v = lm.model.weights().blocks[layer].attn.v.b.clone().unwrap();
    let share = (b_v.reshape((cfg.n_kv_heads, cfg.d_head)).unwrap() * (1.0 - alpha)).unwrap();
    let general = run(&mut Hooks::new()
        .intervene(p, Intervention::scale(alpha).heads([head]))
        .intervene(p, Intervention::add(share).heads([head])));
    assert!(max_abs_diff(&built, &general) <= TOL);
    assert!(
        max_abs_diff(&built, &run(&mut Hooks::new())) > 1e-4,
        "alpha 2.5 changes the logits"
    );

    let spec = format!("scale blocks.{layer}.attn.hook_v head={head} alpha={alpha}");
    let (sp, siv) = lantern_steering::parse_intervention(&spec, &lm.model).unwrap();
    assert_eq!(sp, p);
    assert_eq!(
        max_abs_diff(&built, &run(&mut Hooks::new().intervene(sp, siv))),
        0.0
    );
    let (sp, siv) =
        lantern_steering::parse_intervention(&format!("{spec} bias=scale"), &lm.model).unwrap();
    let plain = run(&mut Hooks::new().intervene(p, Intervention::scale(alpha).heads([head])));
    assert_eq!(
        max_abs_diff(&plain, &run(&mut Hooks::new().intervene(sp, siv))),
        0.0
    );
}

#[test]
fn gqa_value_scaling_matches_scaling_the_repeated_values() {
    // Under GQA the per-query-head scaling is done at hook_z; check it against scaling hook_v
    // of the shared KV head when every query head of the group is scaled.
    let lm = load_fixture("llama");
    let cfg = lm.model.config().clone();
    assert!(cfg.n_kv_heads < cfg.n_heads);
    let group = cfg.n_heads / cfg.n_kv_heads;
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let mut hooks = Hooks::new();
    for head in 0..group {
        let (p, iv) = lantern_steering::scale_head_values(&lm.model, 0, head, 2.5, false).unwrap();
        assert_eq!(p.kind, HookKind::AttnZ);
        hooks = hooks.intervene(p, iv);
    }
    let via_z = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    let v = HookPoint::attn(0, HookKind::AttnV);
    let via_v = lm
        .model
        .run(
            &batch,
            &mut Hooks::new().intervene(v, Intervention::scale(2.5).heads([0])),
            RunOptions::default(),
        )
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&via_z, &via_v) <= 1e-4);
}

#[test]
fn resuming_from_a_layer_equals_the_full_run() {
    for arch in ["gpt2", "gpt_neox", "llama", "phi3"] {
        let lm = load_fixture(arch);
        let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
        let p = HookPoint::resid_pre(1);
        let mut hooks = Hooks::new().capture(p);
        let full = lm
            .model
            .run(&batch, &mut hooks, RunOptions::default())
            .unwrap()
            .logits
            .unwrap();
        let resumed = lm
            .model
            .run(
                Input::Resid(hooks.cache.require(p).unwrap()),
                &mut Hooks::new(),
                RunOptions::from_layer(1).padding(&batch.pad_left),
            )
            .unwrap()
            .logits
            .unwrap();
        assert!(max_abs_diff(&full, &resumed) <= TOL, "{arch}");
    }
}

#[test]
fn packed_segments_equal_the_full_run() {
    // gemma3's and phi3's fixtures have sliding windows of 4 and 5, so the later segments
    // cross them.
    for arch in ["gpt2", "gpt_neox", "llama", "gemma3", "phi3"] {
        let lm = load_fixture(arch);
        let batch = Batch::from_prompts(&lm.tokenizer, &[prompts()[0]]).unwrap();
        let t = batch.seq_len();
        let layer = 1;
        let p = HookPoint::resid_pre(layer);
        let mut hooks = Hooks::new().capture(p);
        let full = lm
            .model
            .run(&batch, &mut hooks, RunOptions::default())
            .unwrap();
        let (logits, resid_final) = (full.logits.unwrap(), full.resid_final);
        let resid_pre = hooks.cache.require(p).unwrap();
        let mut past = lm.model.new_kv_cache(&[0]);
        let ids = batch.ids_tensor(lm.model.device()).unwrap();
        lm.model
            .run(
                Input::Tokens(&ids),
                &mut Hooks::new(),
                RunOptions::default().cache(&mut past).logits(Logits::None),
            )
            .unwrap();
        let starts = [0, 2, t - 5, t - 1];
        let segments: Vec<Segment> = starts
            .iter()
            .map(|&s| Segment {
                start: s,
                len: t - s,
            })
            .collect();
        let at: Vec<u32> = starts
            .iter()
            .flat_map(|&s| (s as u32)..(t as u32))
            .collect();
        let at = Tensor::new(at.as_slice(), lm.model.device()).unwrap();
        let packed = lm
            .model
            .run(
                Input::Resid(&resid_pre.index_select(&at, 1).unwrap()),
                &mut Hooks::new(),
                RunOptions::from_layer(layer)
                    .packed(&segments, &past)
                    .logits(Logits::Last),
            )
            .unwrap();
        let want_resid = resid_final.index_select(&at, 1).unwrap();
        assert!(
            max_abs_diff(&packed.resid_final, &want_resid) <= 1e-4,
            "{arch}"
        );
        let last = logits.narrow(1, t - 1, 1).unwrap().squeeze(1).unwrap();
        let got = packed.last_logits().unwrap();
        for s in 0..starts.len() {
            let row = got.narrow(0, s, 1).unwrap();
            assert!(max_abs_diff(&row, &last) <= 1e-4, "{arch} segment {s}");
        }
        // Bad segments are errors, not panics.
        let bad = [Segment {
            start: t + 3,
            len: 1,
        }];
        assert!(lm
            .model
            .run(
                Input::Resid(&resid_pre.narrow(1, 0, 1).unwrap()),
                &mut Hooks::new(),
                RunOptions::from_layer(layer)
                    .packed(&bad, &past)
                    .logits(Logits::Last)
            )
            .is_err());
    }
}

#[test]
fn resuming_a_cached_run_at_a_layer_equals_the_full_run() {
    let lm = load_fixture("llama");
    let batch = Batch::from_prompts(&lm.tokenizer, &[prompts()[2]]).unwrap();
    let t = batch.seq_len();
    let p = HookPoint::resid_pre(1);
    let mut hooks = Hooks::new().capture(p);
    let full = lm
        .model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap()
        .last_logits()
        .unwrap();
    let mut past = lm.model.new_kv_cache(&[0]);
    let ids = batch.ids_tensor(lm.model.device()).unwrap();
    lm.model
        .run(
            Input::Tokens(&ids),
            &mut Hooks::new(),
            RunOptions::default().cache(&mut past).logits(Logits::None),
        )
        .unwrap();
    // Two rows: the last 3 positions, and the last 1, from caches of the positions before.
    for keep in [t - 3, t - 1] {
        let mut cache = past.truncated(keep).unwrap().expand(2).unwrap();
        let resid = hooks
            .cache
            .require(p)
            .unwrap()
            .narrow(1, keep, t - keep)
            .unwrap();
        let resid = Tensor::cat(&[&resid, &resid], 0).unwrap();
        let got = lm
            .model
            .run(
                Input::Resid(&resid),
                &mut Hooks::new(),
                RunOptions::from_layer(1)
                    .cache(&mut cache)
                    .logits(Logits::Last),
            )
            .unwrap()
            .last_logits()
            .unwrap();
        for r in 0..2 {
            assert!(max_abs_diff(&got.narrow(0, r, 1).unwrap(), &full) <= 1e-4);
        }
    }
}

#[test]
fn stacked_cache_rows_equal_their_separate_runs() {
    let lm = load_fixture("llama");
    let rows: Vec<Vec<u32>> = prompts()
        .iter()
        .map(|p| lm.tokenizer.encode(p).unwrap())
        .collect();
    let device = lm.model.device();
    // Each prompt but its last token cached alone, then the last tokens as one batch.
    let caches: Vec<KvCache> = rows
        .iter()
        .map(|r| {
            let mut c = lm.model.new_kv_cache(&[0]);
            let ids = Tensor::new(&r[..r.len() - 1], device)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            lm.model
                .run(
                    Input::Tokens(&ids),
                    &mut Hooks::new(),
                    RunOptions::default().cache(&mut c).logits(Logits::None),
                )
                .unwrap();
            c
        })
        .collect();
    let mut stacked = KvCache::stack(&caches).unwrap();
    let last: Vec<u32> = rows.iter().map(|r| r[r.len() - 1]).collect();
    let ids = Tensor::from_vec(last, (rows.len(), 1), device).unwrap();
    let got = lm
        .model
        .run(
            Input::Tokens(&ids),
            &mut Hooks::new(),
            RunOptions::default()
                .cache(&mut stacked)
                .logits(Logits::Last),
        )
        .unwrap()
        .last_logits()
        .unwrap();
    for (i, r) in rows.iter().enumerate() {
        let want = lm
            .model
            .run(
                &Batch::from_ids(vec![r.clone()]).unwrap(),
                &mut Hooks::new(),
                RunOptions::default().logits(Logits::Last),
            )
            .unwrap()
            .last_logits()
            .unwrap();
        assert!(
            max_abs_diff(&got.narrow(0, i, 1).unwrap(), &want) <= 1e-4,
            "row {i}"
        );
        // A row taken back out of the batch is that prompt's own cache.
        let row = stacked.row(i, r.len()).unwrap();
        assert_eq!(row.len(), r.len());
    }
    assert!(stacked.row(rows.len(), 1).is_err());
    assert!(KvCache::stack(&[]).is_err());
}

#[test]
fn hook_result_sums_to_attn_out() {
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let (res, out) = (
        HookPoint::attn(1, HookKind::AttnResult),
        HookPoint::block(1, HookKind::AttnOut),
    );
    let mut plain = Hooks::new().capture(out);
    let logits = lm
        .model
        .run(&batch, &mut plain, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    let mut with_result = Hooks::new().capture(res).capture(out);
    let logits2 = lm
        .model
        .run(&batch, &mut with_result, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&logits, &logits2) <= TOL);
    // With an intervention attached, the output is the sum of the (possibly changed) results.
    let mut identity = Hooks::new().intervene(res, Intervention::scale(1.0));
    let logits3 = lm
        .model
        .run(&batch, &mut identity, RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    assert!(max_abs_diff(&logits, &logits3) <= TOL);
    let r = with_result.cache.require(res).unwrap();
    let b_o = lm.model.weights().blocks[1].attn.o.b.clone().unwrap();
    let summed = r.sum(2).unwrap().broadcast_add(&b_o).unwrap();
    assert!(max_abs_diff(&summed, plain.cache.require(out).unwrap()) <= TOL);
    assert_eq!(
        r.dims(),
        &[
            3,
            batch.seq_len(),
            lm.model.config().n_heads,
            lm.model.config().d_model
        ]
    );
}

#[test]
fn hook_shapes_follow_the_table() {
    let lm = load_fixture("llama");
    let cfg = lm.model.config().clone();
    let batch = Batch::from_prompts(&lm.tokenizer, &prompts()).unwrap();
    let mut hooks = Hooks::new().capture_pattern(&cfg, "*").unwrap();
    lm.model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let (b, t, m, h, g, d) = (
        3,
        batch.seq_len(),
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.d_head,
    );
    let shape = |name: &str| hooks.cache.get_name(name).unwrap().dims().to_vec();
    assert_eq!(shape("hook_embed"), [b, t, m]);
    assert_eq!(shape("blocks.0.ln1.hook_scale"), [b, t, 1]);
    assert_eq!(shape("blocks.0.attn.hook_q"), [b, t, h, d]);
    assert_eq!(shape("blocks.0.attn.hook_k"), [b, t, g, d]);
    assert_eq!(shape("blocks.0.attn.hook_v"), [b, t, g, d]);
    assert_eq!(shape("blocks.0.attn.hook_pattern"), [b, h, t, t]);
    assert_eq!(shape("blocks.0.attn.hook_z"), [b, t, h, d]);
    assert_eq!(shape("blocks.0.attn.hook_result"), [b, t, h, m]);
    assert_eq!(shape("blocks.1.mlp.hook_post"), [b, t, cfg.d_mlp]);
    assert_eq!(shape("logits"), [b, t, cfg.vocab_size]);
    assert_eq!(hooks.cache.len(), hooks::all_points(&cfg).len());
}

#[test]
fn cache_exports_to_safetensors_and_npy() {
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(&lm.tokenizer, &["Hello there"]).unwrap();
    let mut hooks = Hooks::new()
        .capture_pattern(lm.model.config(), "blocks.*.hook_resid_post")
        .unwrap();
    lm.model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let dir = ScratchDir::new("cache-export");
    let st = dir.join("cache.safetensors");
    hooks.cache.save_safetensors(&st).unwrap();
    let back = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(
        max_abs_diff(
            &back["blocks.1.hook_resid_post"],
            hooks.cache.get_name("blocks.1.hook_resid_post").unwrap()
        ),
        0.0
    );
    let npy = dir.join("npy");
    hooks.cache.save_npy_dir(&npy).unwrap();
    let bytes = std::fs::read(npy.join("blocks.0.hook_resid_post.npy")).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains(&format!(
            "'shape': (1, {}, {})",
            batch.seq_len(),
            lm.model.config().d_model
        )),
        "{header}"
    );
    assert_eq!(
        bytes.len(),
        10 + header_len + 4 * batch.seq_len() * lm.model.config().d_model
    );
    assert!(
        hooks.cache.save_npy_dir(&npy).is_err(),
        "an existing folder is refused"
    );
}

#[test]
fn sampling_is_seeded() {
    let lm = load_fixture("llama");
    let cfg = |seed| GenerateConfig {
        max_new_tokens: 12,
        sampling: Sampling::Sample {
            temperature: 1.5,
            top_k: Some(50),
            top_p: Some(0.95),
            seed,
        },
        stop_at_eos: false,
        ..Default::default()
    };
    let a = lm
        .model
        .generate(&lm.tokenizer, "Hello", &cfg(7), &mut Hooks::new())
        .unwrap();
    let b = lm
        .model
        .generate(&lm.tokenizer, "Hello", &cfg(7), &mut Hooks::new())
        .unwrap();
    let c = lm
        .model
        .generate(&lm.tokenizer, "Hello", &cfg(8), &mut Hooks::new())
        .unwrap();
    assert_eq!(a.new_ids, b.new_ids);
    assert_ne!(
        a.new_ids, c.new_ids,
        "different seeds should differ on a random model"
    );
}

#[test]
fn steering_is_active_at_every_generation_step() {
    let lm = load_fixture("llama");
    let cfg = GenerateConfig {
        max_new_tokens: 6,
        stop_at_eos: false,
        capture_steps: true,
        ..Default::default()
    };
    let p = HookPoint::resid_post(0);
    let v = Tensor::ones(lm.model.config().d_model, DType::F32, &Device::Cpu).unwrap();
    let mut hooks = Hooks::new()
        .intervene(p, Intervention::add((v * 5.0).unwrap()))
        .capture(p);
    let steered = lm
        .model
        .generate(
            &lm.tokenizer,
            "Hello",
            &cfg,
            &mut Hooks::new().intervene(p, Intervention::scale(1.0)),
        )
        .unwrap();
    let gen = lm
        .model
        .generate_batch(&lm.tokenizer, &["Hello"], &cfg, &mut hooks)
        .unwrap();
    assert_eq!(gen.step_caches.len(), 6);
    assert_ne!(
        steered.new_ids, gen.rows[0].new_ids,
        "a large steering vector must change the output"
    );
    // Each step's capture has the new position only (after the prompt).
    assert_eq!(gen.step_caches[1].require(p).unwrap().dim(1).unwrap(), 1);
}

#[test]
fn half_precision_runs_close_to_f32() {
    let dir = fixture_dir("llama");
    let f32_lm = load_path(&dir, &quiet()).unwrap();
    let batch = Batch::from_prompts(&f32_lm.tokenizer, &prompts()).unwrap();
    let want = f32_lm
        .model
        .run(&batch, &mut Hooks::new(), RunOptions::default())
        .unwrap()
        .logits
        .unwrap();
    for dtype in [DType::BF16, DType::F16] {
        let lm = load_path(&dir, &LoadOptions { dtype, ..quiet() }).unwrap();
        assert_eq!(lm.model.dtype(), dtype);
        let got = lm
            .model
            .run(&batch, &mut Hooks::new(), RunOptions::default())
            .unwrap()
            .logits
            .unwrap();
        assert_eq!(got.dtype(), dtype);
        let scale = max_abs(&want);
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= 0.05 * scale,
            "{dtype:?}: max |Δlogit| {d} against a logit scale of {scale}"
        );
    }
}

#[test]
fn mean_ablation_replaces_by_the_batch_mean() {
    let lm = load_fixture("gpt2");
    let batch = Batch::from_prompts(
        &lm.tokenizer,
        &["The quick brown fox jumps", "Hello there my friend"],
    )
    .unwrap();
    let p = HookPoint::block(0, HookKind::MlpOut);
    let mut reference = Hooks::new().capture(p);
    lm.model
        .run(&batch, &mut reference, RunOptions::default())
        .unwrap();
    let mean = reference.cache.mean_over_batch(p).unwrap();
    let mut hooks = Hooks::new()
        .intervene(p, Intervention::mean(mean.clone()))
        .capture(p);
    lm.model
        .run(&batch, &mut hooks, RunOptions::default())
        .unwrap();
    let got = hooks.cache.require(p).unwrap();
    for b in 0..2 {
        assert!(max_abs_diff(&got.get(b).unwrap(), &mean.get(0).unwrap()) <= 1e-6);
    }
}

#[test]
fn stop_strings_cut_the_continuation() {
    let lm = load_fixture("llama");
    let free = lm
        .model
        .generate(
            &lm.tokenizer,
            "Hello",
            &GenerateConfig {
                max_new_tokens: 12,
                stop_at_eos: false,
                ..Default::default()
            },
            &mut Hooks::new(),
        )
        .unwrap();
    assert!(free.text.chars().count() > 3);
    // Stop at the text of the third generated token: the continuation ends before it.
    let third = lm.tokenizer.decode(&free.new_ids[2..3]).unwrap();
    let cut = GenerateConfig {
        max_new_tokens: 12,
        stop_at_eos: false,
        stop_strings: vec![third.clone()],
        ..Default::default()
    };
    let stopped = lm
        .model
        .generate(&lm.tokenizer, "Hello", &cut, &mut Hooks::new())
        .unwrap();
    assert_eq!(stopped.stop, StopReason::StopString);
    assert!(
        !stopped.text.contains(&third) && free.text.starts_with(&stopped.text),
        "{:?} vs {:?}",
        stopped.text,
        free.text
    );
    assert!(stopped.new_ids.len() <= 3);
}
