//! Forward pass of SmolLM2-135M (f32, CPU), batch 1 and batch 16 of 16 tokens, with no hooks and
//! with every hook point cached. `scripts/bench/run_forward_bench.sh` runs this and the PyTorch
//! reference (`scripts/bench/torch_forward.py`) on the same machine in one run.
//!
//! Logits are computed at every position, as transformers does by default, so both sides do the
//! same work.

use criterion::{criterion_group, criterion_main, Criterion};
use lantern_engine::{hooks, load_path, Batch, Hooks, LoadOptions, RunOptions};
use rand::{Rng, SeedableRng};

fn forward(c: &mut Criterion) {
    // As the `lantern` binary does: freed cache tensors are reused instead of re-faulted.
    lantern_engine::keep_freed_memory();
    let path = lantern_engine::default_model_path().expect("run scripts/fetch-model.sh first");
    let lm = load_path(
        &path,
        &LoadOptions {
            progress: false,
            ..Default::default()
        },
    )
    .expect("model loads");
    let cfg = lm.model.config().clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut group = c.benchmark_group("smollm2_forward_16_tokens");
    group.sample_size(10);
    for batch_size in [1usize, 16] {
        let rows: Vec<Vec<u32>> = (0..batch_size)
            .map(|_| {
                (0..16)
                    .map(|_| rng.random_range(0..cfg.vocab_size as u32))
                    .collect()
            })
            .collect();
        let batch = Batch::from_ids(rows).expect("batch");
        group.bench_function(format!("batch{batch_size}/no_hooks"), |b| {
            b.iter(|| {
                lm.model
                    .run(&batch, &mut Hooks::new(), RunOptions::default())
                    .expect("forward")
            })
        });
        group.bench_function(format!("batch{batch_size}/cache_all"), |b| {
            b.iter(|| {
                let mut h = Hooks::new().capture_all(hooks::all_points(&cfg));
                lm.model
                    .run(&batch, &mut h, RunOptions::default())
                    .expect("forward");
                h.cache.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
