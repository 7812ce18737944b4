//! shapley (paper P2).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lantern_engine::Hooks;
use lantern_experiments::output::ResultsDir;
use lantern_experiments::p2;
use lantern_experiments::scorer::EngineScorer;
use lantern_shapley::{
    run_with_options, Absent, Coalition, LanguageModelScorer, Method, OpenAiScorer, PromptGame,
    RunOptions, Template, ValueKind,
};

use crate::util::{check_finite, print_json, progress, ModelArgs};

#[derive(Args)]
pub struct ShapleyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt template with players marked `{{name: text}}`.
    #[arg(long)]
    pub template: PathBuf,
    /// Continuation scored (logprob, prob), e.g. " A".
    #[arg(long)]
    pub target: Option<String>,
    /// logprob (default), prob, option_prob, option_diff.
    #[arg(long, default_value = "logprob")]
    pub value: String,
    /// An option for option_prob/option_diff (repeat: --option " A" --option " B").
    #[arg(long = "option")]
    pub options: Vec<String>,
    /// option_prob: index of the chosen option.
    #[arg(long, default_value_t = 0)]
    pub chosen: usize,
    /// exact, permutation or kernel.
    #[arg(long, default_value = "exact")]
    pub method: String,
    /// Distinct coalition evaluations for permutation/kernel.
    #[arg(long, default_value_t = 500, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub budget: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// remove (default) or filler.
    #[arg(long, default_value = "remove")]
    pub absent: String,
    /// Requests per forward batch.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    /// Score with an OpenAI-compatible completions server (e.g. llama.cpp, vLLM) instead of a local model.
    #[arg(long)]
    pub server: Option<String>,
    /// Model name sent to the server.
    #[arg(long)]
    pub server_model: Option<String>,
    /// Skip the check that the server's echoed prompt log-probabilities are the model's (one
    /// probe request before scoring; llama-cpp-python 0.3.36's server fails it, and Shapley values
    /// scored on its echoed log-probabilities would be wrong).
    #[arg(long)]
    pub no_echo_check: bool,
    /// Coalitions handed to the model per call (a sharded run's block of work).
    #[arg(long, default_value_t = p2::COALITIONS_PER_CALL, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub coalitions_per_call: usize,
    #[arg(long)]
    pub json: bool,
    /// A results folder, or PART.jsonl: this shard's coalitions, one JSON line each (`lantern merge`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub shard: crate::shard_cmd::ShardArgs,
}

pub fn shapley(a: ShapleyArgs) -> Result<()> {
    let part = a.shard.part(a.out.as_deref())?;
    let template = Template::from_file(&a.template)?;
    let method: Method = a.method.parse()?;
    let absent: Absent = a.absent.parse()?;
    anyhow::ensure!(
        a.value != "option_prob" || a.options.len() < 2 || a.chosen < a.options.len(),
        "--chosen must be below the number of --option values ({}), got {}",
        a.options.len(),
        a.chosen
    );
    let value = ValueKind::from_name(&a.value, a.target.clone(), a.options.clone(), a.chosen)?;
    let opts = RunOptions {
        budget: a.budget,
        seed: a.seed,
        batch_size: a.coalitions_per_call,
        ..Default::default()
    };
    let total = match method {
        Method::Exact => 1usize << template.n_players().min(20),
        _ => a.budget,
    };
    let pb = progress(a.model.quiet, total, "evaluations");
    let mut tick = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let start = std::time::Instant::now();
    let result = match &a.server {
        Some(url) => {
            let mut scorer = OpenAiScorer::new(url.clone()).with_echo_check(!a.no_echo_check);
            if let Some(m) = &a.server_model {
                scorer = scorer.with_model(m.clone());
            }
            if let Some(shard) = part {
                let mut game = PromptGame::new(template, absent, value, scorer)?;
                let source = format!("{url} {}", a.server_model.as_deref().unwrap_or(""));
                return crate::shard_cmd::shapley_part(
                    &a, &mut game, &source, method, &opts, shard, &mut tick,
                );
            }
            run(template, absent, value, scorer, method, &opts, &mut tick)?
        }
        None => {
            let lm = a.model.load()?;
            let everyone = Coalition::from_players(template.n_players(), 0..template.n_players())?;
            check_finite(&lm, &template.render(everyone, absent)?, &Hooks::new())?;
            let mut scorer = EngineScorer::new(&lm);
            scorer.batch_size = a.batch_size;
            if let Some(shard) = part {
                let mut game = PromptGame::new(template, absent, value, scorer)?;
                return crate::shard_cmd::shapley_part(
                    &a, &mut game, &lm.source, method, &opts, shard, &mut tick,
                );
            }
            run(template, absent, value, scorer, method, &opts, &mut tick)?
        }
    };
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    if let Some(out) = &a.out {
        p2::artefacts::write_shapley(&ResultsDir::create(out)?, &result)?;
    }
    if a.json {
        return print_json(&result);
    }
    println!(
        "{} Shapley values, {} evaluations in {seconds:.1} s; v(none) = {:.4}, v(all) = {:.4}",
        result.method, result.evaluations, result.v_empty, result.v_full
    );
    for i in 0..result.players.len() {
        println!(
            "  {:<16} {:+.4} ± {:.4}",
            result.players[i], result.values[i], result.std_errors[i]
        );
    }
    Ok(())
}

fn run<S: LanguageModelScorer>(
    template: Template,
    absent: Absent,
    value: ValueKind,
    scorer: S,
    method: Method,
    opts: &RunOptions,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<lantern_shapley::ShapleyResult> {
    let mut game = PromptGame::new(template, absent, value, scorer)?;
    Ok(run_with_options(method, &mut game, opts, Some(tick))?)
}
