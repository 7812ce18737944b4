// Generated from notebooks/p3_causal_graphs.ipynb by tests/notebooks.rs: edit the notebook, not this file.
// Regenerate with
//     LANTERN_UPDATE_NOTEBOOK_EXAMPLES=1 cargo test -p lantern-experiments --test notebooks
// The notebook's code cells run in order inside `main`, without their evcxr commands (`:dep`,
// `:opt`). `notebook_cell(i)` starts cell i (its index in the notebook).

#[rustfmt::skip]
fn main() {
notebook_cell(3);
use lantern_causal::{analyse_series, DiscoveryConfig, GraphReport, Session, SpreadConfig, TimeSeries};
use lantern_engine::{default_model_path, load_path, LoadOptions};
use lantern_experiments::p3::{learn, read_questions, run_sessions, P3Config, Sessions};
use lantern_plot::{bar_chart, graph_figure, time_series, BarOptions, GraphEdge, GraphOptions, PlotOptions, TimeSeriesOptions};
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

/// The graph's edges as `lantern-plot` edges (node indices into `report.nodes`).
fn plot_edges(report: &GraphReport) -> Vec<GraphEdge> {
    let index = |name: &str| report.nodes.iter().position(|n| n == name).expect("an edge joins known nodes");
    report.edges.iter().map(|e| GraphEdge::new(index(&e.from), index(&e.to), e.weight, e.lag)).collect()
}

/// Prints a graph report: edges, strongly connected components, cycles with their gains, spectral radius.
fn print_graph(report: &GraphReport) {
    println!("{} edges ({} samples, {} sessions, {} CI tests):", report.edges.len(), report.n_samples, report.n_sessions, report.n_tests);
    for e in &report.edges {
        println!("  {:>12} -> {:<12} lag {}  weight {:+.2}  p = {:.1e}  bootstrap frequency {:.0}%", e.from, e.to, e.lag, e.weight, e.p_value, 100.0 * e.frequency);
    }
    println!("strongly connected components: {:?}", report.sccs);
    for c in &report.cycles {
        let mut path = c.nodes.clone();
        path.push(c.nodes[0].clone());
        println!("cycle {}  (length {}, total lag {}, gain {:+.3})", path.join(" -> "), c.length, c.total_lag, c.gain);
    }
    if report.cycles.is_empty() {
        println!("no cycles");
    }
    println!("spectral radius {:.3} (reduced form {:.3})", report.spectral_radius, report.reduced_form_spectral_radius);
    for w in &report.warnings {
        println!("warning: {w}");
    }
}

let fig_dir = std::env::temp_dir().join("lantern-notebooks").join("p3_causal_graphs");
std::fs::create_dir_all(&fig_dir).expect("creating the figure folder");

notebook_cell(5);
let start = Instant::now();
let model_path = default_model_path().expect("the model is missing: run scripts/fetch-model.sh");
let lm = load_path(&model_path, &LoadOptions { progress: false, ..LoadOptions::default() }).expect("loading the model");
println!("{:?}, {} layers, d_model {}; loaded in {:.1} s", lm.model.config().architecture, lm.model.config().n_layers, lm.model.config().d_model, start.elapsed().as_secs_f64());

let base = Path::new("../experiments");
let cfg: P3Config = toml::from_str(
    r#"
    data = "data/states.csv"
    questions = "data/session_questions.txt"
    layer = 15
    method = "logistic"
    baseline = "neutral"
    accuracy_threshold = 0.7
    sessions = 4
    steps = 8
    context_turns = 1
    max_new_tokens = 6
    temperature = 0.8
    top_p = 0.95
    seed = 0
    steer_strength = 1.0
    "#,
)
.expect("a valid [p3] table");
let questions = read_questions(&base.join(&cfg.questions)).expect("reading the questions");
println!("{} interviewer questions, e.g. {:?}", questions.len(), questions[0]);

notebook_cell(7);
// Every third sentence of each label (the rows are grouped by label), to keep the notebook quick.
let subset_csv = {
    let csv = std::fs::read_to_string(base.join(&cfg.data)).expect("reading the labelled sentences");
    let subset: Vec<&str> = csv.lines().enumerate().filter(|(i, _)| *i == 0 || i % 3 == 1).map(|(_, l)| l).collect();
    println!("{} labelled sentences, {} used here", csv.lines().count() - 1, subset.len() - 1);
    let path = fig_dir.join("states_subset.csv");
    std::fs::write(&path, subset.join("\n") + "\n").expect("writing the subset");
    path
};
let start = Instant::now();
let states = learn(&lm, &cfg, &subset_csv, &questions).expect("learning the states");
println!("{} states learned in {:.1} s", states.held_out.len(), start.elapsed().as_secs_f64());
println!("held-out accuracy (balanced, state vs rest; threshold {}):", states.threshold);
for a in &states.held_out {
    println!("  {:<13} {:.3}   AUC {:.3}   n_test {}{}", a.state, a.accuracy, a.auc, a.n_test, if a.flagged { "   FLAGGED" } else { "" });
}
let flagged: Vec<String> = states.held_out.iter().filter(|a| a.flagged).map(|a| a.state.clone()).collect();
println!("usable states: {:?}; flagged: {:?}", states.usable_states(), flagged);
let labels: Vec<String> = states.held_out.iter().map(|a| if a.flagged { format!("{} (flagged)", a.state) } else { a.state.clone() }).collect();
let values: Vec<f64> = states.held_out.iter().map(|a| a.accuracy).collect();
let mut opts = BarOptions::new(
    PlotOptions::new("Held-out probe accuracy (logistic, layer 15; threshold 0.7)").x_label("state").y_label("balanced accuracy").y_range(0.0, 1.0).size(760, 420),
);
opts.color_by_sign = false;
let files = bar_chart(&labels, &values, None, &opts, fig_dir.join("probe_accuracy")).expect("bar chart");
show(png_of(&files));

notebook_cell(9);
let start = Instant::now();
let sessions: Sessions = run_sessions(&lm, &cfg, &states, &questions, cfg.sessions, cfg.steps, None, &mut |_, _| {}).expect("running the sessions");
println!("{} sessions recorded, {} steps each, {} states, in {:.1} s", sessions.activations.len(), cfg.steps, sessions.states.len(), start.elapsed().as_secs_f64());
println!("session 0:");
for (t, ((q, a), v)) in sessions.transcripts[0].iter().zip(&sessions.activations[0]).enumerate() {
    let scores: Vec<String> = sessions.states.iter().zip(v).map(|(s, x)| format!("{s} {x:+.1}")).collect();
    println!("  step {t}: Q: {q}\n          A:{a}\n          {}", scores.join(", "));
}
let mut opts = TimeSeriesOptions::new(PlotOptions::new("State activations over one session (session 0)").x_label("step").y_label("state activation (probe score)").size(760, 420));
opts.markers = true;
let files = time_series(&sessions.states, &sessions.activations[0], &opts, fig_dir.join("session_0")).expect("time series");
show(png_of(&files));

notebook_cell(11);
let steer_state = ["low_mood", "worry", "irritability", "elation", "calm"]
    .into_iter()
    .find(|s| states.usable_states().contains(s))
    .expect("at least one usable state")
    .to_string();
let steer_steps = [3usize, 4];
let steered_steps = 6;
let start = Instant::now();
let steered: Sessions = run_sessions(&lm, &cfg, &states, &questions, cfg.sessions, steered_steps, Some((steer_state.as_str(), &steer_steps)), &mut |_, _| {}).expect("running the steered sessions");
println!("steered `{steer_state}` at steps {steer_steps:?} (strength {}) in {:.1} s", cfg.steer_strength, start.elapsed().as_secs_f64());
let k = steered.states.iter().position(|s| *s == steer_state).expect("the steered state is measured");
println!("mean change of `{steer_state}` (steered - unsteered, over {} sessions):", cfg.sessions);
for t in 0..steered_steps {
    let diff: f64 = steered.activations.iter().zip(&sessions.activations).map(|(a, b)| a[t][k] - b[t][k]).sum::<f64>() / cfg.sessions as f64;
    println!("  step {t}: {diff:+.2}{}", if steer_steps.contains(&t) { "   <- steered" } else { "" });
}
for t in steer_steps {
    println!("session 0, step {t}:\n  unsteered A:{}\n  steered   A:{}", sessions.transcripts[0][t].1, steered.transcripts[0][t].1);
}
let mut opts = TimeSeriesOptions::new(PlotOptions::new(format!("Session 0 with `{steer_state}` steered (strength {})", cfg.steer_strength)).x_label("step").y_label("state activation (probe score)").size(760, 420));
opts.markers = true;
opts.window = Some((2.5, 4.5));
opts.window_label = format!("steering {steer_state}");
let files = time_series(&steered.states, &steered.activations[0], &opts, fig_dir.join("session_0_steered")).expect("time series");
show(png_of(&files));

notebook_cell(14);
/// Seeded standard normal draws: a 64-bit LCG (Knuth's MMIX constants) and Box-Muller.
struct Noise(u64);
impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
let mut noise = Noise(42);
let names: Vec<String> = ["A", "B", "C", "D"].iter().map(|s| s.to_string()).collect();
let synthetic_sessions: Vec<Session> = (0..10)
    .map(|s| {
        let mut x = [0.0f64; 4];
        let mut rows = Vec::new();
        for t in 0..70 {
            x = [0.6 * x[2] + noise.normal(), 0.7 * x[0] + noise.normal(), 0.7 * x[1] + noise.normal(), 0.5 * x[1] + noise.normal()];
            if t >= 10 {
                rows.push(x.to_vec()); // the first 10 steps are burn-in
            }
        }
        Session::new(format!("synthetic {s}"), rows)
    })
    .collect();
let synthetic = TimeSeries::new(names, synthetic_sessions).expect("a valid series");
let discovery = DiscoveryConfig { tau_max: 1, alpha: 0.01, n_bootstrap: 20, seed: 0, ..Default::default() };
let start = Instant::now();
let planted = analyse_series(&synthetic, &discovery).expect("causal discovery");
println!("synthetic series: {} sessions, {} steps in all; discovery and 20 bootstrap resamples in {:.1} s", synthetic.sessions.len(), synthetic.n_steps(), start.elapsed().as_secs_f64());
print_graph(&planted);

notebook_cell(16);
let opts = GraphOptions::new(PlotOptions::new(format!("Synthetic series: discovered graph (spectral radius {:.2})", planted.spectral_radius)).size(640, 560));
let files = graph_figure(&planted.nodes, &plot_edges(&planted), &opts, fig_dir.join("synthetic_graph")).expect("graph figure");
show(png_of(&files));
print!("{}", planted.to_dot());

let spread = planted.simulate_spread(&SpreadConfig { source: "A".into(), magnitude: 2.0, hold_steps: 1, steps: 13, threshold: 0.3 }).expect("spread simulation");
println!("spread from A (+2 SD at step 0): risen {:?}, sustained {:?}, self-sustaining: {}", spread.risen, spread.sustained, spread.self_sustaining);
for r in &spread.responses {
    println!("  {}: peak {:+.2} at step {}, final {:+.3}", r.name, r.peak, r.peak_step, r.final_value);
}
let values: Vec<Vec<f64>> = (0..spread.trajectories[0].len()).map(|t| spread.trajectories.iter().map(|tr| tr[t]).collect()).collect();
let mut opts = TimeSeriesOptions::new(PlotOptions::new("Spread simulation: A set to +2 SD at step 0").x_label("step").y_label("state (SD units)").size(760, 420));
opts.window = Some((-0.5, 0.5));
opts.window_label = "input".into();
opts.markers = true;
let files = time_series(&planted.nodes, &values, &opts, fig_dir.join("synthetic_spread")).expect("time series");
show(png_of(&files));

notebook_cell(18);
let series = sessions.series();
let real_discovery = DiscoveryConfig { n_bootstrap: 20, alpha: 0.05, ..discovery.clone() };
let start = Instant::now();
match analyse_series(&series, &real_discovery) {
    Ok(report) => {
        println!("real sessions: {} states, {} sessions, {} steps in all ({} usable as targets); discovery in {:.1} s", series.n_vars(), series.sessions.len(), series.n_steps(), series.usable_samples(real_discovery.window()), start.elapsed().as_secs_f64());
        print_graph(&report);
        if !report.edges.is_empty() {
            let opts = GraphOptions::new(PlotOptions::new(format!("Recorded sessions: discovered graph (layer 15, spectral radius {:.2})", report.spectral_radius)).size(760, 680));
            let files = graph_figure(&report.nodes, &plot_edges(&report), &opts, fig_dir.join("real_graph")).expect("graph figure");
            show(png_of(&files));
        }
    }
    Err(e) => println!("causal discovery on the recorded sessions failed: {e}"),
}
}

/// With LANTERN_NOTEBOOK_CELL_MARKERS set, prints a line that marks the start of cell `index` in the output
/// (tests/notebooks.rs stores each cell's output back into the notebook).
fn notebook_cell(index: usize) {
    if std::env::var_os("LANTERN_NOTEBOOK_CELL_MARKERS").is_some() {
        println!("\u{1e}notebook cell {index}");
    }
}
