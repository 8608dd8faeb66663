//! The store's filter of message keys for Python: a batch's keys in one call each way.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::core::key_filter::KeyFilter;

/// (sender, cli_mid) keys: `maybe` answers which of a batch may have been added, from memory.
#[pyclass(name = "KeyFilter", module = "glide._native")]
pub struct PyKeyFilter {
    inner: KeyFilter,
}

/// A `(sender, cli_mid)` tuple's parts, the text borrowed from the tuple.
fn with_key<R>(item: &Bound<'_, PyAny>, f: impl FnOnce(i64, &str) -> R) -> PyResult<R> {
    let bad = || PyTypeError::new_err("a key is a (sender: int, cli_mid: str) tuple");
    let pair = item.cast::<PyTuple>().map_err(|_| bad())?;
    if pair.len() != 2 {
        return Err(bad());
    }
    let sender: i64 = pair.get_item(0)?.extract().map_err(|_| bad())?;
    let cli_mid = pair.get_item(1)?;
    let cli_mid = cli_mid.cast::<PyString>().map_err(|_| bad())?;
    // Lossy: text Python holds with lone surrogates maps to U+FFFD, so such keys may share a place (a false
    // positive, never a false negative: one text always maps alike).
    Ok(f(sender, &cli_mid.to_string_lossy()))
}

#[pymethods]
impl PyKeyFilter {
    #[new]
    fn new() -> Self {
        Self {
            inner: KeyFilter::new(),
        }
    }

    /// Add every key of ``keys`` (an iterable of (sender, cli_mid) tuples).
    fn add(&mut self, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        for item in keys.try_iter()? {
            with_key(&item?, |sender, cli_mid| self.inner.insert(sender, cli_mid))?;
        }
        Ok(())
    }

    /// The keys of ``keys`` that may have been added (the same objects, in order); the others never were.
    fn maybe<'py>(&self, keys: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyList>> {
        let found = PyList::empty(keys.py());
        for item in keys.iter() {
            if with_key(&item, |sender, cli_mid| self.inner.may_contain(sender, cli_mid))? {
                found.append(item)?;
            }
        }
        Ok(found)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Bytes of its bit arrays.
    #[getter]
    fn memory(&self) -> usize {
        self.inner.memory()
    }
}
