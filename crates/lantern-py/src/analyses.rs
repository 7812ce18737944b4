//! Analyses with numpy results and labels: head DLA, logit lens, patching sweeps
//! (lantern-attribution), Shapley values with the model or a Python value function as the
//! game (lantern-shapley, lantern-experiments' engine scorer), causal discovery
//! (lantern-causal). Long ones show a progress bar unless `quiet` and stop on Ctrl-C.

use lantern_attribution::dla::{direct_logit_attribution, LogitDirection};
use lantern_attribution::lens::logit_lens;
use lantern_attribution::patching::{
    patch_sweep_blocks, BlockOptions, MetricKind, PatchGrid, PatchTarget, SweepOptions,
};
use lantern_shapley::{
    Absent, Coalition, Game, Method, PromptGame, ShapleyError, Template, ValueKind,
};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{engine_err, interrupted, value_err, PendingError};
use crate::model::{batch_of, Model};

fn progress_bar(quiet: bool, what: &'static str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("a valid template"),
    );
    pb.set_message(what);
    pb
}

/// `[rows][cols]` as a 2-D float64 array.
fn matrix<'py>(py: Python<'py>, rows: &[Vec<f64>]) -> PyResult<Bound<'py, PyAny>> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Ok(PyArray1::from_vec(py, flat)
        .reshape([rows.len(), cols])?
        .into_any())
}

/// A token given as text (must be one token) or as an id.
fn token(m: &Model, t: &Bound<'_, PyAny>) -> PyResult<u32> {
    if let Ok(s) = t.extract::<String>() {
        return m.lm().tokenizer.single_token(&s).map_err(engine_err);
    }
    let id: u32 = t.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("a token is a str (one token) or an int id")
    })?;
    lantern_engine::error::check_index("token id", id as usize, m.lm().model.config().vocab_size)
        .map_err(engine_err)?;
    Ok(id)
}

/// A Python value function `f(members: tuple[int, ...]) -> float` as a Shapley game.
struct PyGame {
    names: Vec<String>,
    func: Py<PyAny>,
    pending: PendingError,
}

impl Game for PyGame {
    fn n_players(&self) -> usize {
        self.names.len()
    }
    fn player_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> lantern_shapley::Result<Vec<f64>> {
        Python::attach(|py| -> PyResult<Vec<f64>> {
            py.check_signals()?;
            coalitions
                .iter()
                .map(|c| {
                    let members: Vec<usize> = c.players().collect();
                    let v = self
                        .func
                        .call1(py, (pyo3::types::PyTuple::new(py, members)?,))?;
                    let v: f64 = v.extract(py).map_err(|_| {
                        pyo3::exceptions::PyTypeError::new_err(format!(
                            "the value function must return a float, got {}",
                            v.bind(py)
                                .get_type()
                                .name()
                                .map(|n| n.to_string())
                                .unwrap_or_default()
                        ))
                    })?;
                    Ok(v)
                })
                .collect()
        })
        .map_err(|e| {
            self.pending.set(e);
            ShapleyError::Scorer("the Python value function failed".into())
        })
    }
}

/// Any game, checking for Ctrl-C before each batch of coalitions.
struct Interruptible<G> {
    inner: G,
    pending: PendingError,
}

impl<G: Game> Game for Interruptible<G> {
    fn n_players(&self) -> usize {
        self.inner.n_players()
    }
    fn player_names(&self) -> Vec<String> {
        self.inner.player_names()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> lantern_shapley::Result<Vec<f64>> {
        if interrupted(&self.pending) {
            return Err(ShapleyError::Scorer("interrupted".into()));
        }
        self.inner.evaluate(coalitions)
    }
}

fn shapley_options(budget: usize, seed: u64, batch_size: usize) -> lantern_shapley::RunOptions {
    let defaults = lantern_shapley::RunOptions::default();
    lantern_shapley::RunOptions {
        budget: if budget == 0 { defaults.budget } else { budget },
        seed,
        batch_size: if batch_size == 0 {
            defaults.batch_size
        } else {
            batch_size
        },
        ..defaults
    }
}

/// A Shapley result as a dict of numpy arrays and labels.
fn shapley_dict<'py>(
    py: Python<'py>,
    r: &lantern_shapley::ShapleyResult,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("players", r.players.clone())?;
    d.set_item("values", PyArray1::from_vec(py, r.values.clone()))?;
    d.set_item("std_errors", PyArray1::from_vec(py, r.std_errors.clone()))?;
    d.set_item("v_empty", r.v_empty)?;
    d.set_item("v_full", r.v_full)?;
    d.set_item("evaluations", r.evaluations)?;
    d.set_item("method", r.method.clone())?;
    Ok(d)
}

fn run_shapley<G: Game + Send>(
    py: Python<'_>,
    game: G,
    method: &str,
    opts: &lantern_shapley::RunOptions,
    quiet: bool,
    pending: &PendingError,
) -> PyResult<lantern_shapley::ShapleyResult> {
    let method: Method = method.parse().map_err(value_err)?;
    let pb = progress_bar(quiet, "shapley");
    let mut game = Interruptible {
        inner: game,
        pending: pending.clone(),
    };
    let result = py.detach(|| {
        let mut tick = |done: usize, total: usize| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        };
        lantern_shapley::run_with_options(method, &mut game, opts, Some(&mut tick))
    });
    pb.finish_and_clear();
    result.map_err(|e| pending.or(value_err(e)))
}

/// Shapley values of `players` (names, or a count) under a Python value function
/// `value_fn(members: tuple[int, ...]) -> float`.
#[pyfunction]
#[pyo3(signature = (players, value_fn, method="exact", budget=0, seed=0, batch_size=0, quiet=false))]
#[allow(clippy::too_many_arguments)]
pub fn shapley_game<'py>(
    py: Python<'py>,
    players: &Bound<'py, PyAny>,
    value_fn: Py<PyAny>,
    method: &str,
    budget: usize,
    seed: u64,
    batch_size: usize,
    quiet: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let names: Vec<String> = match players.extract::<usize>() {
        Ok(n) => (0..n).map(|i| format!("p{i}")).collect(),
        Err(_) => players.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("players: expected a list of names or a count")
        })?,
    };
    if !value_fn.bind(py).is_callable() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "value_fn: expected a callable members -> float",
        ));
    }
    let pending = PendingError::default();
    let game = PyGame {
        names,
        func: value_fn,
        pending: pending.clone(),
    };
    let r = run_shapley(
        py,
        game,
        method,
        &shapley_options(budget, seed, batch_size),
        quiet,
        &pending,
    )?;
    shapley_dict(py, &r)
}

/// Causal discovery on `sessions` (a list of `[steps, n_vars]` float arrays): the graph
/// report as JSON (the Python layer wraps it; see `lantern.CausalGraph`).
#[pyfunction]
#[pyo3(signature = (sessions, names, tau_max=1, alpha=0.01, n_bootstrap=100, min_frequency=0.5, seed=0, quiet=false))]
#[allow(clippy::too_many_arguments)]
pub fn causal_graph(
    py: Python<'_>,
    sessions: Vec<numpy::PyReadonlyArray2<'_, f64>>,
    names: Vec<String>,
    tau_max: usize,
    alpha: f64,
    n_bootstrap: usize,
    min_frequency: f64,
    seed: u64,
    quiet: bool,
) -> PyResult<String> {
    let sessions: Vec<lantern_causal::Session> = sessions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let values = a.as_array().outer_iter().map(|row| row.to_vec()).collect();
            lantern_causal::Session::new(format!("s{i}"), values)
        })
        .collect();
    let series = lantern_causal::TimeSeries::new(names, sessions).map_err(value_err)?;
    let config = lantern_causal::DiscoveryConfig {
        tau_max,
        alpha,
        n_bootstrap,
        min_frequency,
        seed,
        ..Default::default()
    };
    let pending = PendingError::default();
    let pb = progress_bar(quiet, "bootstrap");
    let report = py.detach(|| {
        let mut tick = |done: usize, total: usize| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        };
        lantern_causal::analyse_series_with_progress(&series, &config, Some(&mut tick))
    });
    pb.finish_and_clear();
    let report = report.map_err(|e| pending.or(value_err(e)))?;
    serde_json::to_string(&report).map_err(value_err)
}

#[pymethods]
impl Model {
    /// Direct logit attribution of every head at `position` (default: last) of one prompt,
    /// towards `logit(target)` or `logit(target) - logit(versus)`. Returns a dict: `heads`
    /// `[n_layers, n_heads]`, `mlps` `[n_layers]`, `attn_bias` `[n_layers]`, scalars `embed`,
    /// `pos_embed`, `bias_terms`, `total`, `logit_diff`, and `labels` (`L{l}H{h}`, row-major).
    #[pyo3(signature = (prompt, target, versus=None, position=None))]
    fn dla<'py>(
        &self,
        py: Python<'py>,
        prompt: &str,
        target: &Bound<'py, PyAny>,
        versus: Option<&Bound<'py, PyAny>>,
        position: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let lm = self.lm();
        let batch =
            lantern_engine::Batch::from_prompts(&lm.tokenizer, &[prompt]).map_err(engine_err)?;
        let dir = LogitDirection {
            target: token(self, target)?,
            versus: versus.map(|v| token(self, v)).transpose()?,
        };
        let d = py
            .detach(|| direct_logit_attribution(&lm.model, &batch, &[dir], position))
            .map_err(engine_err)?
            .remove(0);
        let out = PyDict::new(py);
        out.set_item("heads", matrix(py, &d.heads)?)?;
        out.set_item("mlps", PyArray1::from_vec(py, d.mlps.clone()))?;
        out.set_item("attn_bias", PyArray1::from_vec(py, d.attn_bias.clone()))?;
        for (k, v) in [
            ("embed", d.embed),
            ("pos_embed", d.pos_embed),
            ("bias_terms", d.bias_terms),
            ("total", d.total),
            ("logit_diff", d.logit_diff),
        ] {
            out.set_item(k, v)?;
        }
        out.set_item("position", d.position)?;
        let labels: Vec<String> = (0..d.heads.len())
            .flat_map(|l| (0..d.heads[l].len()).map(move |h| format!("L{l}H{h}")))
            .collect();
        out.set_item("labels", labels)?;
        Ok(out)
    }

    /// Logit lens at `position` (default: last) of one prompt: each layer's `resid_pre` (and
    /// the final residual) through the final norm and unembedding. Returns a dict: `layers`
    /// (point names), `top` (per layer, `top_k` `(token, prob)` pairs), and for the `track`ed
    /// tokens `tracked` (their texts), `prob` and `rank` arrays `[n_layers + 1, n_tracked]`.
    #[pyo3(signature = (prompt, track=None, position=None, top_k=5))]
    fn logit_lens<'py>(
        &self,
        py: Python<'py>,
        prompt: &str,
        track: Option<Vec<Bound<'py, PyAny>>>,
        position: Option<usize>,
        top_k: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let lm = self.lm();
        let batch =
            lantern_engine::Batch::from_prompts(&lm.tokenizer, &[prompt]).map_err(engine_err)?;
        let tracked: Vec<u32> = track
            .unwrap_or_default()
            .iter()
            .map(|t| token(self, t))
            .collect::<PyResult<_>>()?;
        let rows = py
            .detach(|| logit_lens(&lm.model, &lm.tokenizer, &batch, position, top_k, &tracked))
            .map_err(engine_err)?;
        let out = PyDict::new(py);
        out.set_item(
            "layers",
            rows.iter().map(|r| r.point.clone()).collect::<Vec<_>>(),
        )?;
        let top: Vec<Vec<(String, f32)>> = rows
            .iter()
            .map(|r| r.top.iter().map(|t| (t.token.clone(), t.prob)).collect())
            .collect();
        out.set_item("top", top)?;
        out.set_item(
            "tracked",
            tracked
                .iter()
                .map(|&i| lm.tokenizer.token_text(i))
                .collect::<Vec<_>>(),
        )?;
        let prob: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.tracked.iter().map(|t| f64::from(t.prob)).collect())
            .collect();
        let rank: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.tracked.iter().map(|t| t.rank as f64).collect())
            .collect();
        out.set_item("prob", matrix(py, &prob)?)?;
        out.set_item(
            "rank",
            matrix(py, &rank)?.call_method1("astype", ("int64",))?,
        )?;
        Ok(out)
    }

    /// Activation patching: the clean run's activation at `hook` (resid_pre, resid_mid,
    /// resid_post, attn_out, mlp_out, z, q, k, v, pattern) patched into the corrupted run, one
    /// cell of `grid` (layer, layer_pos, layer_head, head_pos with `layer`) at a time, scored by
    /// `metric` (normalized, logit_diff, prob). Returns a dict: `values` `[rows, cols]`,
    /// `row_labels`, `col_labels`, `clean`, `corrupted`, `patches`. Ctrl-C stops it.
    #[pyo3(signature = (clean, corrupted, target, versus, hook="resid_pre", grid="layer_pos", metric="normalized", layer=None, batch_size=32, quiet=false))]
    #[allow(clippy::too_many_arguments)]
    fn patch<'py>(
        &self,
        py: Python<'py>,
        clean: &Bound<'py, PyAny>,
        corrupted: &Bound<'py, PyAny>,
        target: &Bound<'py, PyAny>,
        versus: &Bound<'py, PyAny>,
        hook: &str,
        grid: &str,
        metric: &str,
        layer: Option<usize>,
        batch_size: usize,
        quiet: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let lm = self.lm();
        let (clean, corrupted) = (batch_of(lm, clean)?, batch_of(lm, corrupted)?);
        let metric = metric
            .parse::<MetricKind>()
            .map_err(engine_err)?
            .with_tokens(token(self, target)?, token(self, versus)?);
        let target_point: PatchTarget = hook.parse().map_err(engine_err)?;
        let grid = PatchGrid::parse(grid, layer).map_err(engine_err)?;
        let pending = PendingError::default();
        let pb = progress_bar(quiet, "patching");
        let result = py.detach(|| {
            let mut cells = Vec::new();
            let mut tick = |done: usize, total: usize| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
            };
            let mut result = patch_sweep_blocks(
                &lm.model,
                &clean,
                &corrupted,
                target_point,
                grid,
                metric,
                SweepOptions {
                    batch_size,
                    progress: Some(&mut tick),
                },
                BlockOptions {
                    select: &|_| true,
                    max_cache_bytes: None,
                    on_block: &mut |_, block| {
                        cells.extend_from_slice(block);
                        if interrupted(&pending) {
                            return Err(lantern_engine::Error::invalid("interrupted"));
                        }
                        Ok(())
                    },
                },
            )?;
            for c in cells {
                result.values[c.row][c.col] = c.value;
            }
            Ok::<_, lantern_engine::Error>(result)
        });
        pb.finish_and_clear();
        let r = result.map_err(|e| pending.or(engine_err(e)))?;
        let out = PyDict::new(py);
        out.set_item("values", matrix(py, &r.values)?)?;
        out.set_item("row_labels", r.row_labels)?;
        out.set_item("col_labels", r.col_labels)?;
        out.set_item("clean", r.clean)?;
        out.set_item("corrupted", r.corrupted)?;
        out.set_item("patches", r.patches)?;
        Ok(out)
    }

    /// Shapley values of the components of a prompt template (`{{name: text}}` marks a
    /// component) with this model as the scorer. `value`: logprob/prob of `target`,
    /// option_prob of `options[chosen]` among `options`, or option_diff of two `options`.
    /// `method`: exact, permutation or kernel (`budget` evaluations, `seed`).
    #[pyo3(signature = (template, value="option_prob", target=None, options=None, chosen=0, method="exact", absent="remove", budget=0, seed=0, batch_size=16, quiet=false))]
    #[allow(clippy::too_many_arguments)]
    fn shapley<'py>(
        &self,
        py: Python<'py>,
        template: &str,
        value: &str,
        target: Option<String>,
        options: Option<Vec<String>>,
        chosen: usize,
        method: &str,
        absent: &str,
        budget: usize,
        seed: u64,
        batch_size: usize,
        quiet: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let lm = self.lm();
        let template = Template::parse(template).map_err(value_err)?;
        let absent: Absent = absent.parse().map_err(value_err)?;
        let value = ValueKind::from_name(value, target, options.unwrap_or_default(), chosen)
            .map_err(value_err)?;
        let mut scorer = lantern_experiments::scorer::EngineScorer::new(lm);
        scorer.batch_size = batch_size.max(1);
        let game = PromptGame::new(template, absent, value, scorer).map_err(value_err)?;
        let pending = PendingError::default();
        let r = run_shapley(
            py,
            game,
            method,
            &shapley_options(budget, seed, 0),
            quiet,
            &pending,
        )?;
        shapley_dict(py, &r)
    }
}
