//! Reads a finished P3 run's sessions again with another state reader (issue #11: the
//! supervised SAE beside the logistic probes), without generating anything new.
//!
//!     cargo run -p lantern-experiments --example p3_reread -- \
//!         MODEL.gguf experiments/p3_states.toml sae results/p3_states/p3/transcripts.json OUT
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use lantern_experiments::experiment::ExperimentFile;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, file, method, transcripts, out] = args.as_slice() else {
        bail!("usage: p3_reread MODEL EXPERIMENT.toml METHOD TRANSCRIPTS.json OUT");
    };
    let file = ExperimentFile::read(&PathBuf::from(file))?;
    let mut cfg = file.p3_table()?;
    cfg.method = method.clone();
    let opts = lantern_engine::LoadOptions {
        progress: false,
        ..Default::default()
    };
    let lm = lantern_engine::load_path(&PathBuf::from(model), &opts)
        .with_context(|| format!("loading {model}"))?;
    let r = lantern_experiments::p3::reread::reread(
        &lm,
        &cfg,
        &file.base_dir(),
        &PathBuf::from(transcripts),
        &PathBuf::from(out),
    )?;
    for a in &r.probe_accuracy {
        println!("{}: held-out balanced accuracy {:.3}", a.state, a.accuracy);
    }
    let g = &r.graph;
    println!(
        "{} edges ({} cross-state, {} unoriented), density {:.3}, {} feedback loops, {} self-loops, spectral radius {:.3}",
        g.edges.len(),
        g.n_cross_state_edges,
        g.n_unoriented,
        g.density,
        g.n_feedback_loops,
        g.self_loops.len(),
        g.spectral_radius
    );
    Ok(())
}
