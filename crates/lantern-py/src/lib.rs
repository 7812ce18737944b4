//! `import lantern`: Lantern's engine and analyses from Python, with numpy arrays (PyO3, abi3).
//!
//! The binding converts and dispatches only: models, hooks, interventions, generation and the
//! analyses are the Rust crates' (lantern-engine, lantern-attribution, lantern-shapley,
//! lantern-causal). Rust work runs with the GIL released; Python callables (hooks, value
//! functions) take it back for their call; errors become Python exceptions (`errors`).

mod analyses;
mod cache;
mod convert;
mod errors;
mod interventions;
mod model;

use pyo3::prelude::*;

#[pymodule]
fn _lantern(m: &Bound<'_, PyModule>) -> PyResult<()> {
    lantern_engine::keep_freed_memory();
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(interventions::zero, m)?)?;
    m.add_function(wrap_pyfunction!(interventions::scale, m)?)?;
    m.add_function(wrap_pyfunction!(interventions::add, m)?)?;
    m.add_function(wrap_pyfunction!(interventions::replace, m)?)?;
    m.add_function(wrap_pyfunction!(interventions::patch, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::shapley_game, m)?)?;
    m.add_function(wrap_pyfunction!(analyses::causal_graph, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<model::Config>()?;
    m.add_class::<cache::Cache>()?;
    m.add_class::<interventions::BuiltinHook>()?;
    m.add_class::<interventions::HookInfo>()?;
    Ok(())
}
