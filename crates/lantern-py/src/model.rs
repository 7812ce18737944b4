//! `lantern.load(...)` and the model object: tokens, hook names, runs with a cache or with
//! hooks, generation. Every method maps onto one engine call ([`lantern_engine::Model::run`],
//! [`lantern_engine::Model::generate_ids`]) made with the GIL released.

use std::sync::Arc;

use lantern_engine::{
    Batch, GenerateConfig, Hooks, LoadOptions, LoadedModel, RunOptions, Sampling,
};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::cache::Cache;
use crate::convert::to_numpy;
use crate::errors::{engine_err, PendingError};
use crate::interventions::attach;

/// A model's shape (TransformerLens names).
#[pyclass(frozen, get_all, module = "lantern")]
pub struct Config {
    n_layers: usize,
    d_model: usize,
    n_heads: usize,
    n_kv_heads: usize,
    d_head: usize,
    d_mlp: usize,
    d_vocab: usize,
    n_ctx: usize,
    architecture: String,
}

#[pymethods]
impl Config {
    fn __repr__(&self) -> String {
        format!(
            "Config(architecture={:?}, n_layers={}, d_model={}, n_heads={}, n_kv_heads={}, d_head={}, d_mlp={}, d_vocab={}, n_ctx={})",
            self.architecture, self.n_layers, self.d_model, self.n_heads, self.n_kv_heads, self.d_head, self.d_mlp, self.d_vocab, self.n_ctx
        )
    }
}

/// A loaded model and its tokenizer (`lantern.load`).
#[pyclass(frozen, module = "lantern")]
pub struct Model {
    pub lm: Arc<LoadedModel>,
}

/// `float32`/`f32`, `float16`/`f16`, `bfloat16`/`bf16`.
fn dtype_name(name: &str) -> PyResult<&'static str> {
    Ok(match name {
        "float32" | "f32" => "f32",
        "float16" | "f16" => "f16",
        "bfloat16" | "bf16" => "bf16",
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown dtype `{other}` (float32, float16, bfloat16)"
            )))
        }
    })
}

/// Loads a model: a folder, a `.gguf` file, a hub id (`org/name[@revision]`) or a known name
/// (`smollm2-135m`, ...); `None` is the cached SmolLM2 (`$LANTERN_MODEL_DIR` or the user cache).
#[pyfunction]
#[pyo3(signature = (model=None, dtype="float32", device="cpu", quiet=false))]
pub fn load(
    py: Python<'_>,
    model: Option<&Bound<'_, PyAny>>,
    dtype: &str,
    device: &str,
    quiet: bool,
) -> PyResult<Model> {
    let spec = match model.filter(|m| !m.is_none()) {
        None => None,
        Some(m) => Some(
            m.str()
                .ok()
                .filter(|_| {
                    m.is_instance_of::<PyString>() || m.hasattr("__fspath__").unwrap_or(false)
                })
                .ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "model: expected a path or a name, got {}",
                        m.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })?
                .to_string(),
        ),
    };
    let opts = LoadOptions {
        dtype: LoadOptions::parse_dtype(dtype_name(dtype)?).map_err(engine_err)?,
        device: LoadOptions::parse_device(device).map_err(engine_err)?,
        progress: !quiet,
    };
    let lm = py
        .detach(|| {
            let spec = match spec {
                Some(s) => s,
                None => lantern_engine::default_model_path()?.display().to_string(),
            };
            lantern_engine::load(&spec, &opts)
        })
        .map_err(engine_err)?;
    Ok(Model { lm: Arc::new(lm) })
}

/// Prompts as a batch: a str, a list of str, or token ids (a 1-D or 2-D integer array).
pub fn batch_of(lm: &LoadedModel, prompts: &Bound<'_, PyAny>) -> PyResult<Batch> {
    if let Ok(s) = prompts.extract::<String>() {
        return Batch::from_prompts(&lm.tokenizer, &[s]).map_err(engine_err);
    }
    if let Ok(list) = prompts.extract::<Vec<String>>() {
        return Batch::from_prompts(&lm.tokenizer, &list).map_err(engine_err);
    }
    if let Ok(arr) = prompts.extract::<numpy::PyReadonlyArrayDyn<i64>>() {
        let rows: Vec<Vec<u32>> = match arr.ndim() {
            1 => vec![arr.as_array().iter().map(|&i| i as u32).collect()],
            2 => arr
                .as_array()
                .outer_iter()
                .map(|r| r.iter().map(|&i| i as u32).collect())
                .collect(),
            n => {
                return Err(PyValueError::new_err(format!(
                    "token ids: expected a 1-D or 2-D array, got {n} dimensions"
                )))
            }
        };
        let vocab = lm.model.config().vocab_size;
        if let Some(&bad) = arr
            .as_array()
            .iter()
            .find(|&&i| i < 0 || i as usize >= vocab)
        {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "token id {bad} is out of range: the vocabulary has {vocab} tokens"
            )));
        }
        return Batch::from_ids(rows).map_err(engine_err);
    }
    Err(PyTypeError::new_err(format!(
        "prompts: expected a str, a list of str or an int64 array of token ids, got {}",
        prompts.get_type().name()?
    )))
}

impl Model {
    pub fn lm(&self) -> &LoadedModel {
        &self.lm
    }
}

/// Runs the engine with `hooks`, releasing the GIL; a Python exception raised inside (a hook
/// callable) is re-raised as itself.
fn run_batch(
    py: Python<'_>,
    lm: &LoadedModel,
    batch: &Batch,
    hooks: &mut Hooks,
    pending: &PendingError,
) -> PyResult<lantern_engine::Output> {
    py.detach(|| lm.model.run(batch, hooks, RunOptions::default()))
        .map_err(|e| pending.or(engine_err(e)))
}

#[pymethods]
impl Model {
    /// The model's shape.
    #[getter]
    fn cfg(&self) -> Config {
        let c = self.lm.model.config();
        Config {
            n_layers: c.n_layers,
            d_model: c.d_model,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            d_head: c.d_head,
            d_mlp: c.d_mlp,
            d_vocab: c.vocab_size,
            n_ctx: c.max_positions,
            architecture: format!("{:?}", c.architecture),
        }
    }
    /// Where the model came from (path or hub id).
    #[getter]
    fn source(&self) -> String {
        self.lm.source.clone()
    }
    fn __repr__(&self) -> String {
        format!("<lantern.Model {}>", self.lm.source)
    }

    /// Token ids `[batch, seq]` (int64), left-padded as the engine pads several prompts.
    fn to_tokens<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<i64>>> {
        let batch = batch_of(&self.lm, prompts)?;
        let flat: Vec<i64> = batch.ids.iter().flatten().map(|&i| i64::from(i)).collect();
        PyArray1::from_vec(py, flat).reshape(vec![batch.len(), batch.seq_len()])
    }
    /// Each token of one prompt as text.
    fn to_str_tokens(&self, prompt: &str) -> PyResult<Vec<String>> {
        let ids = self.lm.tokenizer.encode(prompt).map_err(engine_err)?;
        Ok(ids
            .iter()
            .map(|&i| self.lm.tokenizer.token_text(i))
            .collect())
    }
    /// Text of token ids (an int, a list of ints or a 1-D array).
    fn to_string(&self, tokens: &Bound<'_, PyAny>) -> PyResult<String> {
        let ids: Vec<i64> = if let Ok(i) = tokens.extract::<i64>() {
            vec![i]
        } else if let Ok(a) = tokens.extract::<numpy::PyReadonlyArray1<i64>>() {
            a.as_array().to_vec()
        } else {
            tokens.extract().map_err(|_| {
                PyTypeError::new_err("tokens: expected an int, a list of ints or a 1-D int64 array")
            })?
        };
        let vocab = self.lm.model.config().vocab_size;
        let ids = ids
            .into_iter()
            .map(|i| {
                u32::try_from(i)
                    .ok()
                    .filter(|&u| (u as usize) < vocab)
                    .ok_or_else(|| {
                        pyo3::exceptions::PyIndexError::new_err(format!(
                            "token id {i} is out of range: the vocabulary has {vocab} tokens"
                        ))
                    })
            })
            .collect::<PyResult<Vec<u32>>>()?;
        self.lm.tokenizer.decode(&ids).map_err(engine_err)
    }
    /// The id of a text that is exactly one token (e.g. `" Paris"`).
    fn to_single_token(&self, text: &str) -> PyResult<u32> {
        self.lm.tokenizer.single_token(text).map_err(engine_err)
    }

    /// Every hook point's name in forward order, or those a glob pattern matches.
    #[pyo3(signature = (pattern=None))]
    fn hook_names(&self, pattern: Option<&str>) -> PyResult<Vec<String>> {
        let cfg = self.lm.model.config();
        let points = match pattern {
            None => lantern_engine::hooks::all_points(cfg),
            Some(p) => lantern_engine::hooks::resolve_list(p, cfg).map_err(engine_err)?,
        };
        Ok(points.iter().map(|p| p.name()).collect())
    }

    /// Runs the prompts, capturing the points `names_filter` selects: `None` (every point), a
    /// name or glob pattern (comma-separated for several), a list of them, or a callable
    /// `name -> bool`. `fwd_hooks` apply during the run. Returns `(logits [batch, seq, vocab]
    /// float32, Cache)`.
    #[pyo3(signature = (prompts, names_filter=None, fwd_hooks=None))]
    fn run_with_cache<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        names_filter: Option<&Bound<'py, PyAny>>,
        fwd_hooks: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, Cache)> {
        let lm = &*self.lm;
        let cfg = lm.model.config();
        let batch = batch_of(lm, prompts)?;
        let points = names(cfg, names_filter)?;
        let pending = PendingError::default();
        let mut hooks = attach(
            py,
            Hooks::new().capture_all(points),
            cfg,
            fwd_hooks,
            &pending,
        )?;
        let out = run_batch(py, lm, &batch, &mut hooks, &pending)?;
        let logits = out
            .logits
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the run computed no logits"))?;
        let cache = Cache::new(
            hooks.take_cache(),
            cfg.clone(),
            batch.pad_left.clone(),
            batch.seq_len(),
        );
        Ok((to_numpy(py, logits)?, cache))
    }

    /// Runs the prompts with `fwd_hooks`, a list of `(name or pattern, hook)` pairs where a
    /// hook is a built-in (`lantern.zero`, `scale`, `add`, `replace`, `patch`) or a callable
    /// `(activation: np.ndarray, info: HookInfo) -> np.ndarray | None`. Returns the logits
    /// `[batch, seq, vocab]` (float32).
    #[pyo3(signature = (prompts, fwd_hooks=None))]
    fn run_with_hooks<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        fwd_hooks: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let lm = &*self.lm;
        let batch = batch_of(lm, prompts)?;
        let pending = PendingError::default();
        let mut hooks = attach(py, Hooks::new(), lm.model.config(), fwd_hooks, &pending)?;
        let out = run_batch(py, lm, &batch, &mut hooks, &pending)?;
        let logits = out
            .logits
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the run computed no logits"))?;
        to_numpy(py, logits)
    }

    /// Generates a continuation of a prompt (a str: returns a str) or of several (a list:
    /// returns a list), with `fwd_hooks` active at every step. Greedy when `temperature` is 0,
    /// else seeded sampling (reproducible).
    #[pyo3(signature = (prompt, max_new_tokens=32, fwd_hooks=None, temperature=0.0, top_k=None, top_p=None, seed=0, stop=None, stop_at_eos=true))]
    #[allow(clippy::too_many_arguments)]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        prompt: &Bound<'py, PyAny>,
        max_new_tokens: usize,
        fwd_hooks: Option<&Bound<'py, PyAny>>,
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
        seed: u64,
        stop: Option<Vec<String>>,
        stop_at_eos: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lm = &*self.lm;
        let single = prompt.is_instance_of::<PyString>();
        let batch = batch_of(lm, prompt)?;
        let pending = PendingError::default();
        let mut hooks = attach(py, Hooks::new(), lm.model.config(), fwd_hooks, &pending)?;
        let sampling = if temperature == 0.0 {
            Sampling::Greedy
        } else {
            Sampling::Sample {
                temperature,
                top_k,
                top_p,
                seed,
            }
        };
        let cfg = GenerateConfig {
            max_new_tokens,
            sampling,
            stop_strings: stop.unwrap_or_default(),
            stop_at_eos,
            capture_steps: false,
        };
        let out = py
            .detach(|| {
                lm.model
                    .generate_ids(&lm.tokenizer, &batch, &cfg, &mut hooks)
            })
            .map_err(|e| pending.or(engine_err(e)))?;
        let texts: Vec<String> = out.rows.into_iter().map(|g| g.text).collect();
        if single {
            Ok(PyString::new(py, &texts[0]).into_any())
        } else {
            Ok(PyList::new(py, texts)?.into_any())
        }
    }
}

/// The points a `names_filter` selects.
fn names(
    cfg: &lantern_engine::ModelConfig,
    filter: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<lantern_engine::HookPoint>> {
    let all = lantern_engine::hooks::all_points(cfg);
    let Some(filter) = filter.filter(|f| !f.is_none()) else {
        return Ok(all);
    };
    if let Ok(s) = filter.extract::<String>() {
        return lantern_engine::hooks::resolve_list(&s, cfg).map_err(engine_err);
    }
    if let Ok(list) = filter.extract::<Vec<String>>() {
        return lantern_engine::hooks::resolve_list(&list.join(","), cfg).map_err(engine_err);
    }
    if filter.is_callable() {
        let mut out = Vec::new();
        for p in all {
            if filter.call1((p.name(),))?.is_truthy()? {
                out.push(p);
            }
        }
        return Ok(out);
    }
    Err(PyTypeError::new_err(format!(
        "names_filter: expected a name or pattern, a list of them, or a callable, got {}",
        filter.get_type().name()?
    )))
}
