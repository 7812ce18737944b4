//! The built-in interventions (`lantern.zero`, `scale`, `add`, `replace`, `patch`) and Python
//! callables, turned into the engine's [`Intervention`]s. Nothing is computed here: the engine
//! applies them (and checks shapes, heads and positions) during the run.

use candle_core::{DType, Tensor};
use lantern_engine::{HookContext, HookPoint, Hooks, Intervention, ModelConfig};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::cache::Cache;
use crate::convert::{from_numpy, to_numpy};
use crate::errors::{engine_err, with_hook_note, PendingError};

#[derive(Clone)]
enum Op {
    Zero,
    Scale(f64),
    Add(Tensor),
    Replace(Tensor),
    /// The same point of a cached run (looked up by the hook's name when attached).
    PatchCache(std::sync::Arc<Py<Cache>>),
    PatchArray(Tensor),
}

/// A built-in intervention: what to do at a hook point and where (rows, positions, heads;
/// `None`: all). Build one with `lantern.zero`, `scale`, `add`, `replace` or `patch`.
#[pyclass(frozen, module = "lantern")]
#[derive(Clone)]
pub struct BuiltinHook {
    op: Op,
    rows: Option<Vec<usize>>,
    positions: Option<Vec<usize>>,
    heads: Option<Vec<usize>>,
}

#[pymethods]
impl BuiltinHook {
    fn __repr__(&self) -> String {
        let op = match &self.op {
            Op::Zero => "zero()".to_string(),
            Op::Scale(a) => format!("scale({a})"),
            Op::Add(t) => format!("add(array{:?})", t.dims()),
            Op::Replace(t) => format!("replace(array{:?})", t.dims()),
            Op::PatchCache(_) => "patch(cache)".to_string(),
            Op::PatchArray(t) => format!("patch(array{:?})", t.dims()),
        };
        let mut sel = String::new();
        for (name, v) in [
            ("rows", &self.rows),
            ("positions", &self.positions),
            ("heads", &self.heads),
        ] {
            if let Some(v) = v {
                sel.push_str(&format!(" {name}={v:?}"));
            }
        }
        format!("<lantern.{op}{sel}>")
    }
}

/// `None`, an int or a sequence of ints, as indices. Negative values are refused (IndexError):
/// the engine selects absolute positions.
fn indices(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Vec<usize>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let values: Vec<i64> = if let Ok(i) = obj.extract::<i64>() {
        vec![i]
    } else if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected an int or a list of ints, got a str"
        )));
    } else {
        obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what}: expected an int or a list of ints, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
    };
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| PyIndexError::new_err(format!("{what}: {v} is negative")))
        })
        .collect::<PyResult<Vec<_>>>()
        .map(Some)
}

fn builtin(
    op: Op,
    rows: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    heads: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    Ok(BuiltinHook {
        op,
        rows: indices(rows, "rows")?,
        positions: indices(positions, "positions")?,
        heads: indices(heads, "heads")?,
    })
}

/// Sets the selected part of the activation to zero.
#[pyfunction]
#[pyo3(signature = (*, heads=None, positions=None, rows=None))]
pub fn zero(
    heads: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    rows: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    builtin(Op::Zero, rows, positions, heads)
}

/// Multiplies the selected part of the activation by `alpha`.
#[pyfunction]
#[pyo3(signature = (alpha, *, heads=None, positions=None, rows=None))]
pub fn scale(
    alpha: &Bound<'_, PyAny>,
    heads: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    rows: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    if alpha.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "scale: alpha must be a number, got a str",
        ));
    }
    let alpha: f64 = alpha.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "scale: alpha must be a number, got {}",
            alpha
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    if !alpha.is_finite() {
        return Err(PyValueError::new_err(format!(
            "scale: alpha must be finite, got {alpha}"
        )));
    }
    builtin(Op::Scale(alpha), rows, positions, heads)
}

/// Adds `vector` (broadcast to the activation's shape, e.g. a `[d_model]` steering vector).
#[pyfunction]
#[pyo3(signature = (vector, *, heads=None, positions=None, rows=None))]
pub fn add(
    vector: &Bound<'_, PyAny>,
    heads: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    rows: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    builtin(Op::Add(from_numpy(vector, "add")?), rows, positions, heads)
}

/// Replaces the selected part by `array` (broadcast to the activation's shape).
#[pyfunction]
#[pyo3(signature = (array, *, heads=None, positions=None, rows=None))]
pub fn replace(
    array: &Bound<'_, PyAny>,
    heads: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    rows: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    builtin(
        Op::Replace(from_numpy(array, "replace")?),
        rows,
        positions,
        heads,
    )
}

/// Replaces the selected part by the same point of another run: a `Cache` from
/// `run_with_cache` (the hook's own name is looked up in it) or an array of the activation's
/// shape.
#[pyfunction]
#[pyo3(signature = (source, *, heads=None, positions=None, rows=None))]
pub fn patch(
    source: &Bound<'_, PyAny>,
    heads: Option<&Bound<'_, PyAny>>,
    positions: Option<&Bound<'_, PyAny>>,
    rows: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuiltinHook> {
    let op = match source.extract::<Py<Cache>>() {
        Ok(cache) => Op::PatchCache(std::sync::Arc::new(cache)),
        Err(_) => Op::PatchArray(from_numpy(source, "patch")?),
    };
    builtin(op, rows, positions, heads)
}

/// What a Python hook callable receives as its second argument.
#[pyclass(frozen, get_all, module = "lantern")]
pub struct HookInfo {
    /// The hook point's name, e.g. `blocks.3.hook_resid_post`.
    name: String,
    /// Its layer (`None` outside the blocks).
    layer: Option<usize>,
    /// Absolute position of the activation's first position (non-zero on generation steps).
    pos_offset: usize,
}

#[pymethods]
impl HookInfo {
    fn __repr__(&self) -> String {
        format!("<HookInfo {} pos_offset={}>", self.name, self.pos_offset)
    }
}

/// A Python callable `hook(activation: np.ndarray, info: HookInfo) -> np.ndarray | None` as a
/// custom engine intervention. `None` keeps the (possibly in-place modified) array. The GIL is
/// taken for the call only; an exception is parked in `pending` with the hook's name.
fn callable(func: Py<PyAny>, pending: PendingError) -> Intervention {
    Intervention::custom(move |x: &Tensor, ctx: &HookContext| {
        let name = ctx.point.name();
        let result = Python::attach(|py| -> PyResult<Tensor> {
            let arr = to_numpy(py, x)?;
            let info = HookInfo {
                name: name.clone(),
                layer: ctx.point.layer,
                pos_offset: ctx.pos_offset,
            };
            let returned = func.call1(py, (arr.clone(), info)).map_err(|e| {
                with_hook_note(py, e, &format!("raised by the Python hook at {name}"))
            })?;
            let returned = returned.bind(py);
            let y = if returned.is_none() {
                from_numpy(arr.as_any(), &format!("the hook at {name}"))?
            } else {
                from_numpy(returned, &format!("the hook at {name} returned"))?
            };
            if y.dims() != x.dims() {
                return Err(PyValueError::new_err(format!(
                    "the hook at {name} returned an array of shape {:?} for an activation of shape {:?}",
                    y.dims(),
                    x.dims()
                )));
            }
            y.to_dtype(x.dtype())
                .and_then(|y| y.to_device(x.device()))
                .map_err(crate::errors::value_err)
        });
        result.map_err(|e| {
            pending.set(e);
            candle_core::Error::Msg(format!("the Python hook at {name} failed"))
        })
    })
}

/// Adds `(name or pattern, hook)` pairs to `hooks`. A name may be a glob pattern
/// (`blocks.*.hook_resid_post`): the hook is attached to every point it matches.
pub fn attach(
    py: Python<'_>,
    mut hooks: Hooks,
    cfg: &ModelConfig,
    fwd_hooks: Option<&Bound<'_, PyAny>>,
    pending: &PendingError,
) -> PyResult<Hooks> {
    let Some(list) = fwd_hooks.filter(|o| !o.is_none()) else {
        return Ok(hooks);
    };
    for item in list.try_iter().map_err(|_| {
        PyTypeError::new_err("fwd_hooks: expected a list of (hook name, hook) pairs")
    })? {
        let item = item?;
        let (name, hook): (String, Bound<'_, PyAny>) = item.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "fwd_hooks: expected (hook name, hook) pairs, got {}",
                item.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let points = lantern_engine::hooks::resolve(&name, cfg).map_err(engine_err)?;
        for point in points {
            hooks = hooks.intervene(point, to_intervention(py, point, &hook, pending)?);
        }
    }
    Ok(hooks)
}

fn to_intervention(
    py: Python<'_>,
    point: HookPoint,
    hook: &Bound<'_, PyAny>,
    pending: &PendingError,
) -> PyResult<Intervention> {
    let Ok(b) = hook.extract::<PyRef<'_, BuiltinHook>>() else {
        if hook.is_callable() {
            return Ok(callable(hook.clone().unbind(), pending.clone()));
        }
        return Err(PyTypeError::new_err(format!(
            "the hook for {point}: expected a lantern intervention (lantern.zero, scale, add, replace, patch) or a callable, got {}",
            hook.get_type().name()?
        )));
    };
    let mut iv = match &b.op {
        Op::Zero => Intervention::zero(),
        Op::Scale(a) => Intervention::scale(*a),
        Op::Add(t) => Intervention::add(t.clone()),
        Op::Replace(t) => Intervention::replace(t.clone()),
        Op::PatchArray(t) => Intervention::patch(t.clone()),
        Op::PatchCache(cache) => {
            let source = cache.get().tensor(point).ok_or_else(|| {
                pyo3::exceptions::PyKeyError::new_err(format!(
                    "patch: the cache holds no `{point}`; capture it with run_with_cache(..., names_filter=\"{point}\")"
                ))
            })?;
            Intervention::patch(
                source
                    .to_dtype(DType::F32)
                    .map_err(crate::errors::value_err)?,
            )
        }
    };
    let _ = py;
    if let Some(r) = &b.rows {
        iv = iv.rows(r.clone());
    }
    if let Some(p) = &b.positions {
        iv = iv.positions(p.clone());
    }
    if let Some(h) = &b.heads {
        iv = iv.heads(h.clone());
    }
    Ok(iv)
}
