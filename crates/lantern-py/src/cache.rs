//! The activations of one `run_with_cache`, indexable by full name (`cache["blocks.3.hook_z"]`)
//! or TransformerLens-style by kind and layer (`cache["resid_post", 3]`, `cache["z", 3]`).
//! Tensors stay in Rust until asked for; each access returns a fresh float32 numpy array.

use std::collections::BTreeMap;

use candle_core::Tensor;
use lantern_engine::{ActivationCache, HookPoint, ModelConfig};
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;

use crate::convert::to_numpy;

#[pyclass(frozen, module = "lantern")]
pub struct Cache {
    /// In forward order.
    tensors: BTreeMap<HookPoint, Tensor>,
    cfg: ModelConfig,
    pad_left: Vec<usize>,
    seq_len: usize,
}

impl Cache {
    pub fn new(
        cache: ActivationCache,
        cfg: ModelConfig,
        pad_left: Vec<usize>,
        seq_len: usize,
    ) -> Self {
        let tensors = cache.iter().map(|(p, t)| (*p, t.clone())).collect();
        Cache {
            tensors,
            cfg,
            pad_left,
            seq_len,
        }
    }
    pub fn tensor(&self, point: HookPoint) -> Option<&Tensor> {
        self.tensors.get(&point)
    }

    /// The point a key names: a full name, or `(kind, layer)` with kind a hook suffix without
    /// `hook_` (`resid_post`, `z`, `pattern`, `post`, ...).
    fn point(&self, key: &Bound<'_, PyAny>) -> PyResult<HookPoint> {
        if let Ok(name) = key.extract::<String>() {
            return name.parse::<HookPoint>().map_err(crate::errors::engine_err);
        }
        let (kind, layer): (String, usize) = key.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "a cache key is a hook name or a (kind, layer) pair such as (\"resid_post\", 3), got {}",
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let kind = kind.strip_prefix("hook_").unwrap_or(&kind);
        let candidates = [
            format!("blocks.{layer}.hook_{kind}"),
            format!("blocks.{layer}.attn.hook_{kind}"),
            format!("blocks.{layer}.mlp.hook_{kind}"),
            format!("blocks.{layer}.{kind}"),
        ];
        for c in &candidates {
            if let Ok(p) = c.parse::<HookPoint>() {
                lantern_engine::error::check_index("layer", layer, self.cfg.n_layers)
                    .map_err(crate::errors::engine_err)?;
                return Ok(p);
            }
        }
        Err(PyKeyError::new_err(format!(
            "no hook kind `{kind}` (e.g. resid_pre, resid_post, attn_out, mlp_out, q, k, v, z, pattern, attn_scores, pre, post)"
        )))
    }
}

#[pymethods]
impl Cache {
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let point = self.point(key)?;
        match self.tensors.get(&point) {
            Some(t) => to_numpy(py, t),
            None => Err(PyKeyError::new_err(format!(
                "`{point}` was not captured (the cache holds {} points{}); capture it with names_filter",
                self.tensors.len(),
                self.tensors
                    .keys()
                    .next()
                    .map(|p| format!(", e.g. {p}"))
                    .unwrap_or_default()
            ))),
        }
    }
    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        self.point(key)
            .map(|p| self.tensors.contains_key(&p))
            .unwrap_or(false)
    }
    fn __len__(&self) -> usize {
        self.tensors.len()
    }
    fn __iter__(slf: PyRef<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        let keys = slf.keys();
        Ok(pyo3::types::PyList::new(slf.py(), keys)?
            .as_any()
            .try_iter()?
            .into_any())
    }
    /// Hook names held, in forward order.
    fn keys(&self) -> Vec<String> {
        self.tensors.keys().map(HookPoint::name).collect()
    }
    /// Shape of a held activation, without copying it.
    fn shape(&self, key: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let point = self.point(key)?;
        self.tensors
            .get(&point)
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| PyKeyError::new_err(format!("`{point}` was not captured")))
    }
    /// Every activation as a numpy array, by name.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        for (p, t) in &self.tensors {
            d.set_item(p.name(), to_numpy(py, t)?)?;
        }
        Ok(d)
    }
    /// Padding positions at the start of each row (prompts are left-padded).
    #[getter]
    fn pad_left(&self) -> Vec<usize> {
        self.pad_left.clone()
    }
    /// `[batch, seq]` bool: True at real tokens, False at padding.
    #[getter]
    fn padding_mask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let t = self.seq_len;
        let flat: Vec<bool> = self
            .pad_left
            .iter()
            .flat_map(|&pad| (0..t).map(move |i| i >= pad))
            .collect();
        PyArray1::from_vec(py, flat).reshape([self.pad_left.len(), t])
    }
    /// Bytes held.
    #[getter]
    fn nbytes(&self) -> usize {
        self.tensors
            .values()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
    fn __repr__(&self) -> String {
        format!(
            "<lantern.Cache {} points, batch {}, {} positions>",
            self.tensors.len(),
            self.pad_left.len(),
            self.seq_len
        )
    }
}
