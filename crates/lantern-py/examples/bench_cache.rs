//! The Rust side of the binding's benchmark (scripts/bench/python_cache.sh): a forward pass of
//! 16 prompts of 16 tokens caching every hook point, median of `REPS` runs, printed in ms.
//! The same token ids as the Python side (`ids(b, t)`), the same dev profile as the extension.

use std::time::Instant;

use lantern_engine::{hooks::all_points, Batch, Hooks, LoadOptions, RunOptions};

const REPS: usize = 7;

fn main() -> lantern_engine::Result<()> {
    lantern_engine::keep_freed_memory();
    let path = lantern_engine::default_model_path()?;
    let lm = lantern_engine::load_path(
        &path,
        &LoadOptions {
            progress: false,
            ..Default::default()
        },
    )?;
    let rows: Vec<Vec<u32>> = (0..16u32)
        .map(|b| {
            (0..16u32)
                .map(|t| (b * 7919 + t * 104_729 + 11) % 49_152)
                .collect()
        })
        .collect();
    let batch = Batch::from_ids(rows)?;
    let points = all_points(lm.model.config());
    let mut times = Vec::new();
    for _ in 0..REPS {
        let start = Instant::now();
        let mut hooks = Hooks::new().capture_all(points.iter().copied());
        let out = lm.model.run(&batch, &mut hooks, RunOptions::default())?;
        std::hint::black_box((&out, hooks.cache.len()));
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "rust_run_with_cache_ms {:.1} ({} points)",
        times[REPS / 2],
        points.len()
    );
    Ok(())
}
