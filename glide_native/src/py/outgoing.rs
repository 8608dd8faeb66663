//! The fan-out buffer for Python: a server envelope encoded at most once per wire variant.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use serde_json::value::RawValue;

use super::convert::py_to_json;
use super::wire_from_id;
use crate::core::envelope::Envelope;
use crate::core::fanout::encode_one;

/// Payloads of at least this many bytes are encoded with the GIL released.
const DETACH_AT: usize = 64 * 1024;

/// A server envelope whose frames are built lazily, once per wire variant, and shared by every recipient.
#[pyclass(frozen, module = "glide._native")]
pub struct Outgoing {
    env: Envelope,
    frames: [OnceLock<Py<PyBytes>>; 4],
}

#[pymethods]
impl Outgoing {
    #[new]
    #[pyo3(signature = (action, data=None, *, seq=0, sender="", to="", ticket="", extra=None, raw_data=None, ver=1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        action: &str,
        data: Option<&Bound<'_, PyAny>>,
        seq: i64,
        sender: &str,
        to: &str,
        ticket: &str,
        extra: Option<BTreeMap<String, String>>,
        raw_data: Option<&[u8]>,
        ver: i64,
    ) -> PyResult<Self> {
        let data = match (raw_data, data) {
            (Some(raw), _) => {
                let text = std::str::from_utf8(raw).map_err(|_| PyValueError::new_err("raw_data: not UTF-8"))?;
                Some(
                    RawValue::from_string(text.to_owned())
                        .map_err(|e| PyValueError::new_err(format!("raw_data: {e}")))?,
                )
            }
            (None, Some(obj)) => {
                Some(RawValue::from_string(py_to_json(obj)?).map_err(|e| PyValueError::new_err(e.to_string()))?)
            }
            // GlideIM writes `"data":null` for a server message built without data.
            (None, None) => {
                Some(RawValue::from_string("null".to_owned()).map_err(|e| PyValueError::new_err(e.to_string()))?)
            }
        };
        let env = Envelope {
            ver,
            seq,
            action: action.to_owned(),
            from: sender.to_owned(),
            to: to.to_owned(),
            data,
            ticket: ticket.to_owned(),
            extra,
        };
        Ok(Self {
            env,
            frames: Default::default(),
        })
    }

    #[getter]
    fn action(&self) -> &str {
        &self.env.action
    }

    /// The complete frame for one wire variant (the same bytes object on every call).
    fn frame(&self, py: Python<'_>, wire: u8) -> PyResult<Py<PyBytes>> {
        let slot = self
            .frames
            .get(usize::from(wire))
            .ok_or_else(|| PyValueError::new_err("unknown wire"))?;
        if let Some(frame) = slot.get() {
            return Ok(frame.clone_ref(py));
        }
        let variant = wire_from_id(wire)?;
        let size = self.env.data.as_ref().map_or(0, |d| d.get().len());
        let encode = || {
            let mut out = Vec::with_capacity(64 + size);
            encode_one(&self.env, variant, &mut out).map(|()| out)
        };
        // Encoding a large payload (above all to protobuf) is plain Rust: let other threads run meanwhile.
        let out = if size >= DETACH_AT { py.detach(encode) } else { encode() }
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let frame: Py<PyBytes> = PyBytes::new(py, &out).unbind();
        Ok(slot.get_or_init(|| frame).clone_ref(py))
    }

    /// One frame per recipient wire; identical variants share one bytes object.
    fn frames<'py>(&self, py: Python<'py>, wires: Vec<u8>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for wire in wires {
            list.append(self.frame(py, wire)?)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!("<Outgoing action={:?}>", self.env.action)
    }
}
