//! Where the time of a SmolLM2 forward goes (release build): whole passes and single matmuls.
//! `cargo run --release -p lantern-engine --example profile_forward`
use std::time::Instant;

use lantern_engine::{
    load_path, Batch, DType, Device, Hooks, LoadOptions, Logits, RunOptions, Tensor,
};

fn time<T>(label: &str, reps: usize, mut f: impl FnMut() -> T) {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    println!(
        "{label:<40} {:>9.2} ms",
        start.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
}

fn main() {
    let lm = load_path(
        &lantern_engine::default_model_path().unwrap(),
        &LoadOptions {
            progress: false,
            ..Default::default()
        },
    )
    .unwrap();
    let rows: Vec<Vec<u32>> = (0..16)
        .map(|b| (0..16).map(|t| 100 + b * 16 + t).collect())
        .collect();
    let batch = Batch::from_ids(rows).unwrap();
    time("forward b16 logits all", 3, || {
        lm.model
            .run(&batch, &mut Hooks::new(), RunOptions::default())
            .unwrap()
    });
    time("forward b16 logits last", 3, || {
        lm.model
            .run(
                &batch,
                &mut Hooks::new(),
                RunOptions::default().logits(Logits::Last),
            )
            .unwrap()
    });
    time("forward b16 logits none", 3, || {
        lm.model
            .run(
                &batch,
                &mut Hooks::new(),
                RunOptions::default().logits(Logits::None),
            )
            .unwrap()
    });
    let x = Tensor::randn(0f32, 1.0, (256, 576), &Device::Cpu).unwrap();
    for (k, n) in [
        (576, 576),
        (576, 192),
        (576, 1536),
        (1536, 576),
        (576, 49152),
    ] {
        let w = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu).unwrap();
        let xk = if k == 576 {
            x.clone()
        } else {
            Tensor::randn(0f32, 1.0, (256, k), &Device::Cpu).unwrap()
        };
        let flops = 2.0 * 256.0 * k as f64 * n as f64;
        let start = Instant::now();
        for _ in 0..5 {
            std::hint::black_box(xk.matmul(&w).unwrap());
        }
        let s = start.elapsed().as_secs_f64() / 5.0;
        println!(
            "matmul [256,{k}]x[{k},{n}]                {:>9.2} ms  {:>6.1} GFLOP/s",
            s * 1000.0,
            flops / s / 1e9
        );
    }
    let big = Tensor::randn(0f32, 1.0, (16, 16, 576), &Device::Cpu).unwrap();
    time("rmsnorm-ish f32 ops [16,16,576]", 20, || {
        let n = &lm.model.weights().ln_final;
        n.forward(&big).unwrap()
    });
    let _ = DType::F32;
}
