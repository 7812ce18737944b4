//! Engine errors as Python exceptions: a missing file is `FileNotFoundError`, an unknown hook
//! `KeyError` (the engine's message names the nearest valid names), a layer, head, position or
//! token id out of range `IndexError`, anything else `ValueError`; the message is the engine's.

use std::sync::{Arc, Mutex};

use lantern_engine::Error;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyKeyError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

/// The Python exception for an engine error.
pub fn engine_err(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::File { path, .. } if !path.exists() => PyFileNotFoundError::new_err(message),
        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::UnknownHook { .. } => PyKeyError::new_err(message),
        Error::OutOfRange { .. } => PyIndexError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Errors of the analysis crates (no engine type): `ValueError` with their message.
pub fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Where a Python exception raised inside Rust work (a hook callable, a value function, Ctrl-C)
/// waits until the Rust call returns, so that it is re-raised as itself rather than as the
/// engine error that stopped the run.
#[derive(Clone, Default)]
pub struct PendingError(Arc<Mutex<Option<PyErr>>>);

impl PendingError {
    pub fn set(&self, e: PyErr) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The first exception is the cause; later ones are consequences.
        if slot.is_none() {
            *slot = Some(e);
        }
    }
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
    /// The pending Python exception if there is one, else `fallback` converted.
    pub fn or(&self, fallback: PyErr) -> PyErr {
        self.take().unwrap_or(fallback)
    }
}

/// Checks for Ctrl-C (and other signals) from inside Rust work: takes the GIL briefly and runs
/// Python's signal handlers; a `KeyboardInterrupt` is parked in `pending`.
pub fn interrupted(pending: &PendingError) -> bool {
    match Python::attach(|py| py.check_signals()) {
        Ok(()) => false,
        Err(e) => {
            pending.set(e);
            true
        }
    }
}

/// Adds "raised by the Python hook at NAME" to an exception's notes (Python 3.11+) or, on older
/// interpreters, re-raises a `RuntimeError` with that message caused by the original.
pub fn with_hook_note(py: Python<'_>, e: PyErr, what: &str) -> PyErr {
    let value = e.value(py);
    if value.hasattr("add_note").unwrap_or(false) {
        let _ = value.call_method1("add_note", (what,));
        e
    } else {
        let outer = PyRuntimeError::new_err(format!("{what}: {value}"));
        outer.set_cause(py, Some(e));
        outer
    }
}
