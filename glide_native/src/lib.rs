//! `glide._native`: the sans-I/O core (`core`) and its thin Python bindings (`py`).

pub mod core;
pub mod driver;
pub mod loadgen;
mod py;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
