// Generated from notebooks/p2_shapley.ipynb by tests/notebooks.rs: edit the notebook, not this file.
// Regenerate with
//     LANTERN_UPDATE_NOTEBOOK_EXAMPLES=1 cargo test -p lantern-experiments --test notebooks
// The notebook's code cells run in order inside `main`, without their evcxr commands (`:dep`,
// `:opt`). `notebook_cell(i)` starts cell i (its index in the notebook).

#[rustfmt::skip]
fn main() {
notebook_cell(3);
use lantern_engine::{default_model_path, load_path, LoadOptions};
use lantern_experiments::scorer::EngineScorer;
use lantern_plot::{grouped_bar_chart, waterfall, BarGroup, BarOptions, PlotOptions, WaterfallOptions};
use lantern_shapley::{exact, kernel, permutation, Absent, Coalition, ExactOptions, KernelOptions, MemoGame, PermutationOptions, PromptGame, Template, ValueKind};
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

let fig_dir = std::env::temp_dir().join("lantern-notebooks").join("p2_shapley");
std::fs::create_dir_all(&fig_dir).expect("creating the figure folder");

let start = Instant::now();
let model_path = default_model_path().expect("the model is missing: run scripts/fetch-model.sh");
let lm = load_path(&model_path, &LoadOptions { progress: false, ..LoadOptions::default() }).expect("loading the model");
println!("loaded {} in {:.1} s", model_path.file_name().and_then(|n| n.to_str()).unwrap_or("the model"), start.elapsed().as_secs_f64());

notebook_cell(5);
let template = Template::parse(
    "A student must choose between two flights home, Flight A and Flight B.
{{price: Flight A costs $189; Flight B costs $312.
}}{{duration: Flight A takes 7 hours; Flight B takes 4 hours.
}}{{stops: Flight A has one stop; Flight B is nonstop.
}}{{weather: The weather today is mild.
}}{{polite: Thank you so much!
}}Which flight do you choose, A or B?
Answer: Flight",
)
.expect("a valid template");
let players = template.player_names();
let n = players.len();
println!("{n} players: {players:?}; exact enumeration needs 2^{n} = {} coalitions", 1usize << n);
println!("--- all components ---\n{}", template.render(Coalition::full(n), Absent::Remove).expect("render"));
let price_only = Coalition::empty().with(0);
println!("--- price only ---\n{}", template.render(price_only, Absent::Remove).expect("render"));

notebook_cell(7);
let start = Instant::now();
let (exact_result, perm_result, kernel_result, forwards) = {
    let value = ValueKind::OptionProb { options: vec![" A".into(), " B".into()], chosen: 0 };
    let game = PromptGame::new(template.clone(), Absent::Remove, value, EngineScorer::new(&lm)).expect("a valid game");
    let mut memo = MemoGame::new(game, 16).expect("a memoised game");
    let exact_result = exact(&mut memo, &ExactOptions::default(), None).expect("exact Shapley values");
    let perm_result = permutation(&mut memo, &PermutationOptions { budget: 18, seed: 1, ..Default::default() }, None).expect("permutation sampling");
    let kernel_result = kernel(&mut memo, &KernelOptions { budget: 16, seed: 1, ..Default::default() }, None).expect("KernelSHAP");
    assert_eq!(memo.evaluations(), 1 << n, "the sampled estimators found every coalition in the memo");
    (exact_result, perm_result, kernel_result, memo.inner().scorer().forwards)
};
println!("{} coalitions scored in {forwards} forward passes, {:.1} s", 1 << n, start.elapsed().as_secs_f64());

notebook_cell(9);
println!("v(none) = p(A | no component) = {:.3};  v(all) = {:.3}", exact_result.v_empty, exact_result.v_full);
for (p, v) in players.iter().zip(&exact_result.values) {
    println!("  {p:<9} {v:+.4}");
}
println!("sum {:+.4} = v(all) - v(none) (gap {:.1e})", exact_result.values.iter().sum::<f64>(), exact_result.efficiency_gap());
let noise: f64 = ["weather", "polite"].iter().map(|name| exact_result.values[players.iter().position(|p| p == name).expect("a player")].abs()).sum();
let total: f64 = exact_result.values.iter().map(|v| v.abs()).sum();
println!("share of |attribution| on the no-information components: {:.1}%", 100.0 * noise / total);

notebook_cell(11);
println!("{:<9} {:>8} {:>17} {:>17}", "player", "exact", "permutation", "kernel");
for (i, player) in players.iter().enumerate() {
    println!(
        "{:<9} {:>+8.4} {:>+8.4} ± {:.4} {:>+8.4} ± {:.4}",
        player, exact_result.values[i], perm_result.values[i], perm_result.std_errors[i], kernel_result.values[i], kernel_result.std_errors[i]
    );
}
for r in [&exact_result, &perm_result, &kernel_result] {
    let mae = r.values.iter().zip(&exact_result.values).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
    println!("{:<12} {:>3} coalition evaluations, mean |error| vs exact {:.4}", r.method, r.evaluations, mae);
}

notebook_cell(13);
let groups = [
    BarGroup::new("exact", exact_result.values.clone()),
    BarGroup::new(format!("permutation ({} evaluations)", perm_result.evaluations), perm_result.values.clone()).with_errors(perm_result.std_errors.clone()),
    BarGroup::new(format!("kernel ({} evaluations)", kernel_result.evaluations), kernel_result.values.clone()).with_errors(kernel_result.std_errors.clone()),
];
let opts = BarOptions::new(PlotOptions::new("Shapley values of prompt components on p(A)").x_label("component").y_label("Shapley value").size(860, 460));
let files = grouped_bar_chart(&players, &groups, &opts, fig_dir.join("shapley_bars")).expect("bar chart");
show(png_of(&files));

notebook_cell(15);
let steps: Vec<(String, f64)> = players.iter().cloned().zip(exact_result.values.iter().copied()).collect();
let opts = WaterfallOptions::new(PlotOptions::new("From no component to all: p(A)").y_label("p(A)").size(860, 460));
let files = waterfall("none", exact_result.v_empty, &steps, "all", &opts, fig_dir.join("shapley_waterfall")).expect("waterfall");
show(png_of(&files));
}

/// With LANTERN_NOTEBOOK_CELL_MARKERS set, prints a line that marks the start of cell `index` in the output
/// (tests/notebooks.rs stores each cell's output back into the notebook).
fn notebook_cell(index: usize) {
    if std::env::var_os("LANTERN_NOTEBOOK_CELL_MARKERS").is_some() {
        println!("\u{1e}notebook cell {index}");
    }
}
