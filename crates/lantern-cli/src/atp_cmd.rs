//! `lantern patch --method atp [--verify K]`: attribution patching (lantern-attribution's `atp`),
//! and the exact check of its top cells.

use anyhow::{bail, Result};
use lantern_attribution::{atp_sweep, patch_cells, rank_cells, AtpOptions, MetricKind, PatchGrid};
use lantern_engine::Batch;
use lantern_experiments::output::ResultsDir;
use serde::Serialize;

use crate::p1_cmds::PatchArgs;
use crate::util::print_json;

/// One verified cell: AtP's estimate beside the exact patched score.
#[derive(Serialize)]
struct Verified {
    row: String,
    col: String,
    atp: f64,
    exact: f64,
}

#[derive(Serialize)]
struct AtpReport {
    method: &'static str,
    tokens: Vec<String>,
    #[serde(flatten)]
    atp: lantern_attribution::AtpResult,
    /// The top-K cells by AtP's |effect|, patched exactly.
    verified: Vec<Verified>,
}

/// Refuses flag combinations that mean nothing; called before the model loads.
pub fn check_flags(a: &PatchArgs) -> Result<()> {
    match a.method.as_str() {
        "exact" => {
            if a.verify.is_some() || a.grad_drop || a.no_qk_fix {
                bail!("--verify, --grad-drop and --no-qk-fix belong to --method atp");
            }
        }
        "atp" => {
            if a.verify == Some(0) {
                bail!("--verify 0 checks nothing: give how many of AtP's top cells to patch exactly (K >= 1)");
            }
            if a.shard.shard.is_some() || a.max_cache_bytes.is_some() {
                bail!("--method atp runs one forward and one backward pass: it takes no --shard or --max-cache-bytes");
            }
        }
        other => bail!("unknown --method `{other}` (exact, atp)"),
    }
    Ok(())
}

pub fn patch_atp(a: &PatchArgs) -> Result<()> {
    let lm = a.model.load()?;
    let clean = Batch::from_prompts(&lm.tokenizer, &[a.clean.as_str()])?;
    let corrupted = Batch::from_prompts(&lm.tokenizer, &[a.corrupted.as_str()])?;
    let (target, versus) = (
        lm.tokenizer.single_token(&a.target)?,
        lm.tokenizer.single_token(&a.versus)?,
    );
    let metric = a.metric.parse::<MetricKind>()?.with_tokens(target, versus);
    let point = a.hook.parse()?;
    let grid = PatchGrid::parse(&a.grid, a.layer)?;
    let opts = AtpOptions {
        qk_fix: !a.no_qk_fix,
        grad_drop: a.grad_drop,
    };
    let start = std::time::Instant::now();
    let atp = atp_sweep(&lm.model, &clean, &corrupted, point, grid, metric, opts)?;
    let atp_seconds = start.elapsed().as_secs_f64();
    let est = &atp.estimate;
    let ranked = rank_cells(est);
    let k = a.verify.unwrap_or(0).min(ranked.len());
    let chosen: Vec<(usize, usize)> = ranked[..k].iter().map(|&(r, c, _)| (r, c)).collect();
    let start = std::time::Instant::now();
    let exact = if k > 0 {
        patch_cells(&lm.model, &clean, &corrupted, point, grid, metric, &chosen)?.2
    } else {
        Vec::new()
    };
    let verify_seconds = start.elapsed().as_secs_f64();
    let verified: Vec<Verified> = chosen
        .iter()
        .zip(&exact)
        .map(|(&(r, c), &x)| Verified {
            row: est.row_labels[r].clone(),
            col: est.col_labels[c].clone(),
            atp: est.values[r][c],
            exact: x,
        })
        .collect();
    let report = AtpReport {
        method: "atp",
        tokens: clean
            .row(0)
            .iter()
            .map(|&i| lm.tokenizer.token_text(i))
            .collect(),
        atp,
        verified,
    };
    if let Some(out) = &a.out {
        ResultsDir::staged(out, |dir| {
            dir.json("atp.json", &report)?;
            Ok(())
        })?;
    }
    // Wall times go to stderr so the JSON on stdout depends on the inputs alone.
    eprintln!("atp_seconds {atp_seconds:.4}");
    if k > 0 {
        eprintln!("verify_seconds {verify_seconds:.4}");
    }
    if a.json {
        return print_json(&report);
    }
    let est = &report.atp.estimate;
    println!(
        "clean {:.4}, corrupted {:.4}; AtP{} over {} x {} cells in {:.2} s ({} backward pass{})",
        est.clean,
        est.corrupted,
        if report.atp.qk_fix_applied { "*" } else { "" },
        est.row_labels.len(),
        est.col_labels.len(),
        atp_seconds,
        report.atp.backward_passes,
        if report.atp.backward_passes == 1 {
            ""
        } else {
            "es"
        }
    );
    println!("largest estimated effects (the estimated patched score of each cell):");
    for &(r, c, v) in ranked.iter().take(10) {
        println!(
            "  {:>5} {:>6}  {v:+.4}",
            est.row_labels[r], est.col_labels[c]
        );
    }
    if k > 0 {
        println!("verified exactly ({k} cells, {verify_seconds:.2} s):");
        println!("  {:>5} {:>6}  {:>9} {:>9}", "row", "col", "atp", "exact");
        for v in &report.verified {
            println!(
                "  {:>5} {:>6}  {:>+9.4} {:>+9.4}",
                v.row, v.col, v.atp, v.exact
            );
        }
    }
    Ok(())
}
