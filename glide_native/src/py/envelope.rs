//! The decoded client envelope as a Python object.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::json_to_py;
use crate::core::envelope::Envelope;
use crate::core::{codec_json, codec_proto};

/// One decoded client envelope `{ver, seq, action, from, to, data, ticket, extra}`.
#[pyclass(frozen, name = "Envelope", module = "glide._native")]
pub struct PyEnvelope {
    pub inner: Envelope,
}

#[pymethods]
impl PyEnvelope {
    #[getter]
    fn ver(&self) -> i64 {
        self.inner.ver
    }
    #[getter]
    fn seq(&self) -> i64 {
        self.inner.seq
    }
    #[getter]
    fn action(&self) -> &str {
        &self.inner.action
    }
    #[getter]
    fn sender(&self) -> &str {
        &self.inner.from
    }
    #[getter]
    fn to(&self) -> &str {
        &self.inner.to
    }
    #[getter]
    fn ticket(&self) -> &str {
        &self.inner.ticket
    }
    #[getter]
    fn extra(&self) -> Option<BTreeMap<String, String>> {
        self.inner.extra.clone()
    }
    #[getter]
    fn data_raw<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner
            .data
            .as_ref()
            .map(|raw| PyBytes::new(py, raw.get().as_bytes()))
    }
    /// `data` parsed into Python objects.
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.data {
            Some(raw) => json_to_py(py, raw.get()),
            None => Ok(py.None().into_bound(py)),
        }
    }
    fn __repr__(&self) -> String {
        format!("<Envelope action={:?} seq={}>", self.inner.action, self.inner.seq)
    }
}

/// A complete frame whose envelope could not be decoded.
#[pyclass(frozen, module = "glide._native")]
pub struct BadMessage {
    #[pyo3(get)]
    pub error: String,
}

#[pymethods]
impl BadMessage {
    fn __repr__(&self) -> String {
        format!("<BadMessage {:?}>", self.error)
    }
}

/// Decode one JSON envelope; raises ValueError with the reason.
#[pyfunction]
pub fn decode_json(data: &[u8]) -> PyResult<PyEnvelope> {
    codec_json::decode(data)
        .map(|inner| PyEnvelope { inner })
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Decode one protobuf envelope; raises ValueError with the reason.
#[pyfunction]
pub fn decode_proto(data: &[u8]) -> PyResult<PyEnvelope> {
    codec_proto::decode(data)
        .map(|inner| PyEnvelope { inner })
        .map_err(|e| PyValueError::new_err(e.to_string()))
}
