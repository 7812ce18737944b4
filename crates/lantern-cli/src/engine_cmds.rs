//! inspect, run, lens, generate, cache.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lantern_attribution::lens::{logit_lens, token_stats};
use lantern_engine::{
    finite, generate::Sampling, hooks, Batch, GenerateConfig, Hooks, Logits, RunOptions,
};
use lantern_steering::spec;
use serde_json::json;

use crate::util::{check_finite, print_json, ModelArgs};

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// List every hook point name.
    #[arg(long)]
    pub hooks: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let lm = a.model.load()?;
    let cfg = lm.model.config();
    let points = hooks::all_points(cfg);
    if a.json {
        return print_json(&json!({
            "model": lm.source,
            "config": cfg,
            "hook_points": points.len(),
            "hooks": if a.hooks { points.iter().map(|p| p.name()).collect::<Vec<_>>() } else { Vec::new() },
        }));
    }
    println!("model         {}", lm.source);
    println!("architecture  {:?}", cfg.architecture);
    println!("layers        {}", cfg.n_layers);
    println!("d_model       {}", cfg.d_model);
    println!(
        "heads         {} query, {} key/value, d_head {}",
        cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    );
    println!(
        "mlp           {} ({:?}{})",
        cfg.d_mlp,
        cfg.activation,
        if cfg.gated_mlp { ", gated" } else { "" }
    );
    println!("vocab         {}", cfg.vocab_size);
    println!("context       {} tokens", cfg.max_positions);
    println!("norm          {:?} eps {}", cfg.norm, cfg.norm_eps);
    match &cfg.rope {
        Some(r) => println!(
            "positions     rotary, theta {}, {} of {} dims{}",
            r.theta,
            r.rotary_dim,
            cfg.d_head,
            r.scaling
                .as_ref()
                .map(|s| format!(", {s:?}"))
                .unwrap_or_default()
        ),
        None => println!("positions     learned"),
    }
    println!(
        "embeddings    {}",
        if cfg.tied_embeddings {
            "tied"
        } else {
            "untied"
        }
    );
    println!(
        "dtype         {:?} on {:?}",
        lm.model.dtype(),
        lm.model.device()
    );
    println!(
        "hook points   {} (e.g. blocks.0.attn.hook_z; `--hooks` lists them)",
        points.len()
    );
    if a.hooks {
        for p in points {
            println!("  {p}");
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub prompt: String,
    /// How many tokens to list.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub top_k: usize,
    /// Interventions active during the run, e.g. 'zero blocks.3.attn.hook_z head=1'.
    #[arg(long = "intervene", value_name = "SPEC")]
    pub intervene: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

fn hooks_from_specs(specs: &[String], model: &lantern_engine::Model) -> Result<Hooks> {
    let mut hooks = Hooks::new();
    for s in specs {
        let (p, iv) = spec::parse_intervention(s, model)?;
        hooks = hooks.intervene(p, iv);
    }
    Ok(hooks)
}

pub fn run(a: RunArgs) -> Result<()> {
    let lm = a.model.load()?;
    let batch = Batch::from_prompts(&lm.tokenizer, &[a.prompt.as_str()])?;
    let mut hooks = hooks_from_specs(&a.intervene, &lm.model)?;
    let logits = lm
        .model
        .run(
            &batch,
            &mut hooks,
            RunOptions::default().logits(Logits::Last),
        )?
        .last_logits()?;
    finite::ensure_finite(&lm.model, &batch, &hooks, &logits)?;
    let logits = logits.squeeze(0)?;
    let (top, _) = token_stats(&lm.tokenizer, &logits, a.top_k, &[])?;
    let ids = batch.row(0).to_vec();
    if a.json {
        return print_json(&json!({
            "model": lm.source,
            "token_ids": ids,
            "tokens": ids.iter().map(|&i| lm.tokenizer.token_text(i)).collect::<Vec<_>>(),
            "top": top.iter().map(|t| json!({"id": t.id, "token": t.token, "logit": t.logit, "prob": t.prob})).collect::<Vec<_>>(),
        }));
    }
    println!(
        "{} tokens: {:?}",
        ids.len(),
        ids.iter()
            .map(|&i| lm.tokenizer.token_text(i))
            .collect::<Vec<_>>()
    );
    println!(
        "{:>4}  {:>7}  {:>8}  {:>7}  token",
        "rank", "id", "logit", "prob"
    );
    for (r, t) in top.iter().enumerate() {
        println!(
            "{:>4}  {:>7}  {:>8.3}  {:>7.4}  {:?}",
            r + 1,
            t.id,
            t.logit,
            t.prob,
            t.token
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct LensArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub prompt: String,
    /// Tokens whose rank and probability are tracked at every layer, e.g. " Paris".
    #[arg(long = "track")]
    pub track: Vec<String>,
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub top_k: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn lens(a: LensArgs) -> Result<()> {
    let lm = a.model.load()?;
    let batch = Batch::from_prompts(&lm.tokenizer, &[a.prompt.as_str()])?;
    let tracked: Vec<u32> = a
        .track
        .iter()
        .map(|t| lm.tokenizer.single_token(t))
        .collect::<lantern_engine::Result<_>>()?;
    check_finite(&lm, &a.prompt, &Hooks::new())?;
    let rows = logit_lens(&lm.model, &lm.tokenizer, &batch, None, a.top_k, &tracked)?;
    if a.json {
        return print_json(&rows);
    }
    println!("logit lens at the last position of {:?}", a.prompt);
    for r in &rows {
        let top: Vec<String> = r
            .top
            .iter()
            .map(|t| format!("{:?} {:.2}", t.token, t.prob))
            .collect();
        let tr: Vec<String> = r
            .tracked
            .iter()
            .map(|t| format!("{:?} rank {} p {:.3}", t.token, t.rank + 1, t.prob))
            .collect();
        let label = if r.layer < lm.model.config().n_layers {
            format!("L{:<3}", r.layer)
        } else {
            "out ".to_string()
        };
        println!("{label} {:<48} {}", top.join(", "), tr.join("; "));
    }
    Ok(())
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// Sample at this temperature (default: greedy).
    #[arg(long, value_parser = crate::util::positive)]
    pub temperature: Option<f64>,
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub top_k: Option<usize>,
    #[arg(long, value_parser = crate::util::probability)]
    pub top_p: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the continuation contains this text (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Interventions active at every step, e.g. 'scale blocks.11.attn.hook_v head=11 alpha=6'.
    #[arg(long = "intervene", value_name = "SPEC")]
    pub intervene: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    let lm = a.model.load()?;
    let mut hooks = hooks_from_specs(&a.intervene, &lm.model)?;
    let sampling = match a.temperature {
        Some(temperature) => Sampling::Sample {
            temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            seed: a.seed,
        },
        None => Sampling::Greedy,
    };
    let cfg = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling,
        stop_strings: a.stop.clone(),
        ..Default::default()
    };
    check_finite(&lm, &a.prompt, &hooks)?;
    let g = lm
        .model
        .generate(&lm.tokenizer, &a.prompt, &cfg, &mut hooks)?;
    if a.json {
        return print_json(&json!({
            "model": lm.source, "prompt": a.prompt, "prompt_ids": g.prompt_ids, "new_ids": g.new_ids,
            "text": g.text, "stop": g.stop, "interventions": a.intervene,
        }));
    }
    println!("{}{}", a.prompt, g.text);
    Ok(())
}

#[derive(Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub prompt: String,
    /// Comma-separated hook names or glob patterns, e.g. 'blocks.*.hook_resid_post'.
    #[arg(long)]
    pub hooks: String,
    /// A .safetensors file, or a new folder for one .npy per hook.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn cache(a: CacheArgs) -> Result<()> {
    let lm = a.model.load()?;
    let batch = Batch::from_prompts(&lm.tokenizer, &[a.prompt.as_str()])?;
    let mut hooks = Hooks::new().capture_pattern(lm.model.config(), &a.hooks)?;
    let out = lm.model.run(&batch, &mut hooks, RunOptions::default())?;
    if let Some(logits) = &out.logits {
        finite::ensure_finite(&lm.model, &batch, &Hooks::new(), logits)?;
    }
    if a.out.extension().is_some_and(|e| e == "safetensors") {
        hooks.cache.save_safetensors(&a.out)?;
    } else {
        hooks.cache.save_npy_dir(&a.out)?;
    }
    let mb = hooks.cache.nbytes() as f64 / 1e6;
    eprintln!(
        "saved {} activations ({mb:.1} MB) to {}",
        hooks.cache.len(),
        a.out.display()
    );
    Ok(())
}
