//! `LoadGen` for Python: `glide bench` starts a run, polls snapshots for its progress bar, joins the result.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;

use crate::loadgen;

/// One load run on its own thread. `start(config)` once; `poll()` any time; `join()` for the result.
#[pyclass(name = "LoadGen", module = "glide._native")]
pub struct LoadGen {
    handle: OnceLock<loadgen::Handle>,
}

fn to_py(py: Python<'_>, snap: &loadgen::Snapshot) -> PyResult<Py<PyAny>> {
    Ok(pythonize::pythonize(py, snap)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
        .unbind())
}

#[pymethods]
impl LoadGen {
    #[new]
    fn new() -> Self {
        LoadGen {
            handle: OnceLock::new(),
        }
    }

    /// Validates `config` (a dict; see `glide.bench.loadgen`) and starts the run; ValueError if invalid.
    fn start(&self, config: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.handle.get().is_some() {
            return Err(PyRuntimeError::new_err("this LoadGen was already started"));
        }
        let cfg: loadgen::Config =
            pythonize::depythonize(config).map_err(|e| PyValueError::new_err(format!("load config: {e}")))?;
        let handle = loadgen::start(cfg).map_err(PyValueError::new_err)?;
        self.handle
            .set(handle)
            .map_err(|_| PyRuntimeError::new_err("this LoadGen was already started"))
    }

    /// The latest per-second snapshot as a dict, or None before the first second.
    fn poll(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.handle.get().and_then(loadgen::Handle::latest) {
            Some(snap) => Ok(Some(to_py(py, &snap)?)),
            None => Ok(None),
        }
    }

    /// Asks the run to close its connections and finish early; returns at once.
    fn stop(&self) {
        if let Some(h) = self.handle.get() {
            h.stop();
        }
    }

    /// True once the run has finished.
    #[getter]
    fn finished(&self) -> bool {
        self.handle.get().is_some_and(loadgen::Handle::finished)
    }

    /// Waits (without the GIL) for the result dict; TimeoutError after `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn join(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let handle = self
            .handle
            .get()
            .ok_or_else(|| PyRuntimeError::new_err("start() was not called"))?;
        let deadline = match timeout {
            Some(t) if t.is_finite() && t >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(t)),
            Some(_) => return Err(PyValueError::new_err("timeout: a non-negative number of seconds")),
            None => None,
        };
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            if let Some(result) = py.detach(|| handle.wait(slice)) {
                return match result {
                    Ok(snap) => to_py(py, &snap),
                    Err(e) => Err(PyRuntimeError::new_err(e)),
                };
            }
            // Ctrl-C reaches Python between slices (the caller then calls stop()).
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err("the load run is still going"));
            }
        }
    }
}
