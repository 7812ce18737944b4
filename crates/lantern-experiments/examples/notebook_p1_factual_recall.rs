// Generated from notebooks/p1_factual_recall.ipynb by tests/notebooks.rs: edit the notebook, not this file.
// Regenerate with
//     LANTERN_UPDATE_NOTEBOOK_EXAMPLES=1 cargo test -p lantern-experiments --test notebooks
// The notebook's code cells run in order inside `main`, without their evcxr commands (`:dep`,
// `:opt`). `notebook_cell(i)` starts cell i (its index in the notebook).

#[rustfmt::skip]
fn main() {
notebook_cell(3);
use lantern_attribution::lens::token_stats;
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::{alpha_sweep, direct_logit_attribution, logit_lens, patch_sweep, LogitDirection, Metric, PatchGrid, PatchTarget, RecallPrompt};
use lantern_engine::{default_model_path, load_path, Batch, GenerateConfig, Hooks, LoadOptions, Logits, RunOptions};
use lantern_plot::{heatmap, line_chart, Annotate, HeatmapOptions, LineOptions, PlotOptions, Series};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Shows a PNG inline under evcxr; elsewhere prints `figure: <path>`.
fn show(png: &Path) {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_none() {
        println!("figure: {}", png.display());
        return;
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = std::fs::read(png).expect("reading the figure");
    let mut encoded = String::with_capacity(bytes.len() / 3 * 4 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] } else { b'=' };
            encoded.push(char::from(c));
        }
    }
    println!("EVCXR_BEGIN_CONTENT image/png\n{encoded}\nEVCXR_END_CONTENT");
}

/// The PNG among the files a figure function wrote.
fn png_of(files: &[PathBuf]) -> &Path {
    files.iter().find(|f| f.extension().is_some_and(|e| e == "png")).expect("the figure has a PNG")
}

let fig_dir = std::env::temp_dir().join("lantern-notebooks").join("p1_factual_recall");
std::fs::create_dir_all(&fig_dir).expect("creating the figure folder");

notebook_cell(5);
let start = Instant::now();
let model_path = default_model_path().expect("the model is missing: run scripts/fetch-model.sh");
let lm = load_path(&model_path, &LoadOptions { progress: false, ..LoadOptions::default() }).expect("loading the model");
let cfg = lm.model.config().clone();
println!(
    "{:?}: {} layers, {} query heads ({} key/value heads) of size {}, d_model {}, vocabulary {}",
    cfg.architecture, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model, cfg.vocab_size
);
println!("loaded in {:.1} s", start.elapsed().as_secs_f64());

notebook_cell(7);
let prompt = "The capital of Poland is London. The capital of Poland is";
let batch = Batch::from_prompts(&lm.tokenizer, &[prompt]).expect("tokenising");
let tokens: Vec<String> = batch.row(0).iter().map(|&id| lm.tokenizer.token_text(id)).collect();
println!("{} tokens: {:?}", tokens.len(), tokens);
let out = lm.model.run(&batch, &mut Hooks::new(), RunOptions::default().logits(Logits::Last)).expect("forward pass");
let last = out.last_logits().expect("logits").squeeze(0).expect("one row");
let (top, _) = token_stats(&lm.tokenizer, &last, 8, &[]).expect("top tokens");
for t in &top {
    println!("{:>2}. {:<12} p = {:.3}   logit = {:.2}", t.rank + 1, format!("{:?}", t.token), t.prob, t.logit);
}

notebook_cell(9);
let london = lm.tokenizer.single_token(" London").expect("one token");
let warsaw = lm.tokenizer.single_token(" Warsaw").expect("one token");
let direction = LogitDirection { target: london, versus: Some(warsaw) };
let dla = direct_logit_attribution(&lm.model, &batch, &[direction], None).expect("DLA").remove(0);
let heads_sum: f64 = dla.heads.iter().flatten().sum();
let mlps_sum: f64 = dla.mlps.iter().sum();
println!("logit(London) - logit(Warsaw) = {:.2}", dla.logit_diff);
println!("  = heads {:.2} + MLPs {:.2} + embedding {:.2} + biases {:.2}", heads_sum, mlps_sum, dla.embed, dla.attn_bias.iter().sum::<f64>() + dla.bias_terms);
let ranked = dla.ranked_heads();
println!("heads pushing London:");
for (layer, head, v) in ranked.iter().take(5) {
    println!("  L{layer}H{head}: {v:+.2}");
}
println!("heads pushing Warsaw:");
for (layer, head, v) in ranked.iter().rev().take(3) {
    println!("  L{layer}H{head}: {v:+.2}");
}

notebook_cell(11);
let rows: Vec<String> = (0..cfg.n_layers).map(|l| format!("L{l}")).collect();
let cols: Vec<String> = (0..cfg.n_heads).map(|h| format!("H{h}")).collect();
let opts = HeatmapOptions {
    plot: PlotOptions::new("DLA per head: London - Warsaw").x_label("head").y_label("layer").size(520, 820),
    colorbar_label: "logit difference".into(),
    annotate: Annotate::Never,
    ..Default::default()
};
let files = heatmap(&dla.heads, &rows, &cols, &opts, fig_dir.join("dla_heads")).expect("heatmap");
show(png_of(&files));

notebook_cell(13);
let lens = logit_lens(&lm.model, &lm.tokenizer, &batch, None, 3, &[london, warsaw]).expect("logit lens");
for row in lens.iter().filter(|r| r.layer % 3 == 0 || r.layer == cfg.n_layers) {
    let top: Vec<String> = row.top.iter().map(|t| format!("{:?}", t.token)).collect();
    println!("{:<22} top {:<28} rank of London {:>5}, of Warsaw {:>5}", row.point, top.join(" "), row.tracked[0].rank, row.tracked[1].rank);
}
let xs: Vec<f64> = lens.iter().map(|r| r.layer as f64).collect();
let series: Vec<Series> = ["London", "Warsaw"]
    .iter()
    .enumerate()
    .map(|(k, name)| Series::new(*name, xs.clone(), lens.iter().map(|r| (r.tracked[k].rank + 1) as f64).collect()))
    .collect();
let opts = LineOptions {
    plot: PlotOptions::new("Logit lens: rank of each answer").x_label("layer (residual stream before it; 30 = final)").y_label("rank (1 = top token)").size(760, 420),
    log_y: true,
    ..Default::default()
};
let files = line_chart(&series, &opts, fig_dir.join("logit_lens")).expect("line chart");
show(png_of(&files));

notebook_cell(15);
let clean = batch.clone();
let corrupted = Batch::from_prompts(&lm.tokenizer, &["The capital of Poland is Paris. The capital of Poland is"]).expect("tokenising");
assert_eq!(clean.seq_len(), corrupted.seq_len(), "patching by position needs prompts of equal length");
let paris = lm.tokenizer.single_token(" Paris").expect("one token");
let start = Instant::now();
let patching = patch_sweep(
    &lm.model,
    &clean,
    &corrupted,
    PatchTarget::ResidPre,
    PatchGrid::LayerPosition,
    Metric::Normalized { target: london, versus: paris },
    SweepOptions::default(),
)
.expect("patching sweep");
println!(
    "{} patched runs in {:.1} s; logit diff London - Paris: clean {:.2}, corrupted {:.2}",
    patching.patches,
    start.elapsed().as_secs_f64(),
    patching.clean,
    patching.corrupted
);
let city = (0..clean.seq_len()).find(|&i| clean.ids[0][i] != corrupted.ids[0][i]).expect("the prompts differ");
let final_pos = clean.seq_len() - 1;
for l in (0..cfg.n_layers).step_by(4) {
    println!("  L{l:<2}  at {:?}: {:.2}   at the last token: {:.2}", tokens[city], patching.values[l][city], patching.values[l][final_pos]);
}
let opts = HeatmapOptions {
    plot: PlotOptions::new("Patching resid_pre: London (clean) into Paris (corrupted)").x_label("position").y_label("layer").size(760, 820),
    colorbar_label: "normalised logit difference".into(),
    annotate: Annotate::Never,
    ..Default::default()
};
let positions: Vec<String> = tokens.iter().enumerate().map(|(i, t)| format!("{i} {t:?}")).collect();
let files = heatmap(&patching.values, &patching.row_labels, &positions, &opts, fig_dir.join("patching_resid_pre")).expect("heatmap");
show(png_of(&files));

notebook_cell(17);
let (ctx_layer, ctx_head, _) = ranked[0];
let (mem_layer, mem_head, _) = ranked[ranked.len() - 1];
let gen = GenerateConfig { max_new_tokens: 6, stop_strings: vec!["\n".into(), ".".into()], ..Default::default() };
for (layer, head) in [(ctx_layer, ctx_head), (mem_layer, mem_head)] {
    for alpha in [1.0, 0.0, -2.0, 4.0] {
        let (point, intervention) = lantern_steering::scale_head_values(&lm.model, layer, head, alpha, false).expect("valid head");
        let mut hooks = Hooks::new().intervene(point, intervention);
        let g = lm.model.generate(&lm.tokenizer, prompt, &gen, &mut hooks).expect("generation");
        println!("L{layer}H{head} x {alpha:>2}: ...{}", g.text);
    }
}

notebook_cell(19);
let cases = [
    ("Poland", "Warsaw", "London"),
    ("France", "Paris", "Madrid"),
    ("Japan", "Tokyo", "Berlin"),
    ("Italy", "Rome", "Vienna"),
    ("Germany", "Berlin", "Tokyo"),
    ("Spain", "Madrid", "Paris"),
    ("Russia", "Moscow", "Rome"),
    ("Egypt", "Cairo", "Moscow"),
];
let prompts: Vec<RecallPrompt> = cases
    .iter()
    .map(|(country, capital, other)| RecallPrompt {
        prompt: format!("The capital of {country} is {other}. The capital of {country} is"),
        in_context: other.to_string(),
        memorized: capital.to_string(),
    })
    .collect();
let alphas = [-4.0, -1.0, 0.0, 1.0, 4.0];
let start = Instant::now();
let mut series = Vec::new();
for (layer, head) in [(ctx_layer, ctx_head), (mem_layer, mem_head)] {
    let sweep = alpha_sweep(&lm.model, &lm.tokenizer, &prompts, &[(layer, head)], &alphas, false, &gen, 8, |_, _| {}).expect("alpha sweep");
    for p in &sweep {
        println!("L{layer}H{head} x {:>2}: in-context {:.2}  memorised {:.2}  other {:.2}", p.alpha, p.in_context, p.memorized, p.other);
    }
    series.push(Series::new(format!("L{layer}H{head}: in-context"), alphas.to_vec(), sweep.iter().map(|p| p.in_context).collect()));
    series.push(Series::new(format!("L{layer}H{head}: memorised"), alphas.to_vec(), sweep.iter().map(|p| p.memorized).collect()));
}
println!("2 heads x {} alphas x {} prompts in {:.1} s", alphas.len(), prompts.len(), start.elapsed().as_secs_f64());
let opts = LineOptions {
    plot: PlotOptions::new("Scaling one head's value vectors").x_label("alpha").y_label("share of prompts").size(760, 420).y_range(0.0, 1.0),
    ..Default::default()
};
let files = line_chart(&series, &opts, fig_dir.join("alpha_sweep")).expect("line chart");
show(png_of(&files));
}

/// With LANTERN_NOTEBOOK_CELL_MARKERS set, prints a line that marks the start of cell `index` in the output
/// (tests/notebooks.rs stores each cell's output back into the notebook).
fn notebook_cell(index: usize) {
    if std::env::var_os("LANTERN_NOTEBOOK_CELL_MARKERS").is_some() {
        println!("\u{1e}notebook cell {index}");
    }
}
