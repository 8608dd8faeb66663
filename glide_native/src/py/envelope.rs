//! The decoded client envelope as a Python object.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString};

use super::convert::{json_to_py, new_str, StrCache};
use crate::core::envelope::Envelope;
use crate::core::{codec_json, codec_proto, request_fields};

/// One decoded client envelope `{ver, seq, action, from, to, data, ticket, extra}`.
#[pyclass(frozen, name = "Envelope", module = "glide._native")]
pub struct PyEnvelope {
    pub inner: Envelope,
    // What every handler reads is converted once, up front, and read as a plain struct member (a frozen
    // class's `Py` field needs no getter call); action and `to` strings come from the string cache.
    #[pyo3(get)]
    action: Py<PyString>,
    #[pyo3(get)]
    seq: Py<PyInt>,
    #[pyo3(get)]
    to: Py<PyString>,
}

impl PyEnvelope {
    /// Wrap a decoded envelope, its common fields converted through `cache`.
    pub fn new(py: Python<'_>, inner: Envelope, cache: &mut StrCache) -> PyResult<Self> {
        Ok(PyEnvelope {
            action: cache.get(py, &inner.action)?.unbind(),
            seq: PyInt::new(py, inner.seq).unbind(),
            to: cache.get(py, &inner.to)?.unbind(),
            inner,
        })
    }
}

#[pymethods]
impl PyEnvelope {
    #[getter]
    fn ver(&self) -> i64 {
        self.inner.ver
    }
    #[getter]
    fn sender<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        new_str(py, &self.inner.from)
    }
    #[getter]
    fn ticket<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        new_str(py, &self.inner.ticket)
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
    /// `(receiver, cli_mid, content, type, send_at)` of a `message.chat` of the plain shape (`send_at` 0:
    /// not given), read from the JSON text without building `data`; None for any other shape, which
    /// `glide.chat.payload.parse_chat` then reads (or says what is wrong with it).
    #[allow(clippy::type_complexity)]
    fn chat_fields<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(i64, Bound<'py, PyString>, Bound<'py, PyString>, i64, i64)>> {
        let Some(chat) = self
            .inner
            .data
            .as_ref()
            .and_then(|raw| request_fields::chat(&self.inner.to, raw.get()))
        else {
            return Ok(None);
        };
        Ok(Some((
            chat.receiver,
            new_str(py, &chat.cli_mid)?,
            new_str(py, &chat.content)?,
            chat.kind,
            chat.send_at,
        )))
    }
    /// `(mid, cli_mid)` of a request naming a message by a positive `mid` (an `ack.request`), or None for
    /// any other shape (`glide.chat.payload.parse_mid_ref` reads those).
    fn mid_ref<'py>(&self, py: Python<'py>) -> PyResult<Option<(i64, Bound<'py, PyString>)>> {
        let Some((mid, cli_mid)) = self
            .inner
            .data
            .as_ref()
            .and_then(|raw| request_fields::mid_ref(raw.get()))
        else {
            return Ok(None);
        };
        Ok(Some((mid, new_str(py, &cli_mid)?)))
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
pub fn decode_json(py: Python<'_>, data: &[u8]) -> PyResult<PyEnvelope> {
    let inner = codec_json::decode(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    PyEnvelope::new(py, inner, &mut StrCache::lock())
}

/// Decode one protobuf envelope; raises ValueError with the reason.
#[pyfunction]
pub fn decode_proto(py: Python<'_>, data: &[u8]) -> PyResult<PyEnvelope> {
    let inner = codec_proto::decode(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    PyEnvelope::new(py, inner, &mut StrCache::lock())
}
