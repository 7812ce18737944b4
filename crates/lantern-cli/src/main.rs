//! `lantern`: the command-line front end. Each subcommand parses its arguments and calls into the
//! library crates; no analysis lives here.

mod atp_cmd;
mod bench_cmd;
mod engine_cmds;
mod experiment_cmd;
mod merge_cmd;
mod p1_cmds;
mod p2_cmds;
mod p3_cmds;
mod serve_cmd;
mod shard_cmd;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lantern",
    version,
    about = "Mechanistic interpretability and steering of open-weight language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, sizes and hook points of a model.
    Inspect(engine_cmds::InspectArgs),
    /// Next-token distribution at the last position of a prompt.
    Run(engine_cmds::RunArgs),
    /// Logit lens: what each layer's residual stream predicts at the last position.
    Lens(engine_cmds::LensArgs),
    /// Generate a continuation, optionally with interventions active at every step.
    Generate(engine_cmds::GenerateArgs),
    /// Capture activations by hook name or pattern and save them (.safetensors, or a folder of .npy).
    Cache(engine_cmds::CacheArgs),
    /// Per-head direct logit attribution (paper P1).
    Heads(p1_cmds::HeadsArgs),
    /// Activation patching sweep (paper P1).
    Patch(p1_cmds::PatchArgs),
    /// Scale one head's value vectors over a grid of alphas and report answer rates (paper P1).
    Scale(p1_cmds::ScaleArgs),
    /// Shapley values of prompt components on a model's output (paper P2).
    Shapley(p2_cmds::ShapleyArgs),
    /// Learn representational states (probes over one layer's residual stream) (paper P3).
    States(p3_cmds::StatesArgs),
    /// Run and record multi-step sessions, measuring the states after every answer (paper P3).
    Sessions(p3_cmds::SessionsArgs),
    /// Time-lagged causal discovery and analysis of a recorded series (CSV) (paper P3).
    Graph(p3_cmds::GraphArgs),
    /// Run every step of an experiment file (TOML).
    Experiment(experiment_cmd::ExperimentArgs),
    /// Join the part files of a sharded sweep (`--out PART.jsonl`) into the unsharded result.
    Merge(merge_cmd::MergeArgs),
    /// Serve the model, steered or not, behind an OpenAI-compatible HTTP API.
    Serve(serve_cmd::ServeArgs),
    /// Time the forward pass (no hooks / every hook cached) and, with --generate, decoding.
    Bench(bench_cmd::BenchArgs),
}

fn main() {
    lantern_engine::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => engine_cmds::inspect(a),
        Command::Run(a) => engine_cmds::run(a),
        Command::Lens(a) => engine_cmds::lens(a),
        Command::Generate(a) => engine_cmds::generate(a),
        Command::Cache(a) => engine_cmds::cache(a),
        Command::Heads(a) => p1_cmds::heads(a),
        Command::Patch(a) => p1_cmds::patch(a),
        Command::Scale(a) => p1_cmds::scale(a),
        Command::Shapley(a) => p2_cmds::shapley(a),
        Command::States(a) => p3_cmds::states(a),
        Command::Sessions(a) => p3_cmds::sessions(a),
        Command::Graph(a) => p3_cmds::graph(a),
        Command::Experiment(a) => experiment_cmd::experiment(a),
        Command::Merge(a) => merge_cmd::merge(a),
        Command::Serve(a) => serve_cmd::serve(a),
        Command::Bench(a) => bench_cmd::bench(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
