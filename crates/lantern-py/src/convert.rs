//! Tensors to numpy arrays and back. An array handed out owns its data (one copy out of
//! candle's storage, none more: the `Vec` becomes the array's buffer). Half-precision
//! activations are widened to float32, as numpy has no bfloat16.

use candle_core::{DType, Device, Tensor};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::value_err;

/// A float32 numpy array with the tensor's shape.
pub fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let dims = t.dims().to_vec();
    let data = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(value_err)?;
    PyArray1::from_vec(py, data).reshape(dims)
}

/// A float array (float32, or float64/float16 converted) as a CPU f32 tensor. `what` names the
/// argument in the error a list, a string or an integer array gets.
pub fn from_numpy(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let np = obj.py().import("numpy")?;
    if !obj.is_instance(&np.getattr("ndarray")?)? {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a numpy array of floats, got {}",
            obj.get_type().name()?
        )));
    }
    let kind: String = obj.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind != "f" {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a float array (float32 or float64), got dtype {}",
            obj.getattr("dtype")?.str()?
        )));
    }
    let arr: PyReadonlyArrayDyn<f32> = match obj.extract() {
        Ok(a) => a,
        Err(_) => obj.call_method1("astype", ("float32",))?.extract()?,
    };
    let shape = arr.shape().to_vec();
    let data: Vec<f32> = match arr.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => arr.as_array().iter().copied().collect(),
    };
    Tensor::from_vec(data, shape, &Device::Cpu).map_err(|e| PyValueError::new_err(e.to_string()))
}
