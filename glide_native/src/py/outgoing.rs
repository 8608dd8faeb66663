//! The fan-out buffer for Python: a server envelope encoded at most once per wire variant.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyTuple};
use serde_json::value::RawValue;

use super::convert::{needs_go_escaping, pairs_to_json, py_to_json};
use super::wire_from_id;
use crate::core::envelope::Envelope;
use crate::core::fanout::EncodedOnce;

/// Payloads of at least this many bytes are encoded with the GIL released.
const DETACH_AT: usize = 64 * 1024;

/// A server envelope whose frames are built lazily, once per wire variant, and shared by every recipient:
/// the native driver's I/O thread takes the Rust bytes (`shared`), the asyncio driver a `bytes` object.
#[pyclass(frozen, module = "glide._native")]
pub struct Outgoing {
    pub(crate) shared: Arc<EncodedOnce>,
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
            (None, Some(obj)) => Some(py_to_json(obj)?),
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
            shared: Arc::new(EncodedOnce::new(env)),
            frames: Default::default(),
        })
    }

    #[getter]
    fn action(&self) -> &str {
        &self.shared.envelope().action
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
        let size = self.shared.envelope().data.as_ref().map_or(0, |d| d.get().len());
        let bytes = if size >= DETACH_AT {
            // Encoding a large payload (above all to protobuf) is plain Rust: let other threads run meanwhile.
            py.detach(|| self.shared.frame(variant))
        } else {
            self.shared.frame(variant)
        }
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let frame = PyBytes::new(py, &bytes).unbind();
        Ok(slot.get_or_init(|| frame).clone_ref(py))
    }

    /// One frame per recipient wire; identical variants share one bytes object.
    ///
    /// Each variant is built once. A list is read without converting every item: when all items equal
    /// the first (the usual fan-out, everyone on one wire) the result is `[frame] * n`, otherwise a run of
    /// the same object (CPython's small ints are singletons) is converted once. Other sequences are
    /// converted item by item.
    fn frames<'py>(&self, py: Python<'py>, wires: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let ids = match wires.cast::<PyList>() {
            Ok(list) => {
                if let Some(frames) = self.frames_all_same(py, list)? {
                    return Ok(frames);
                }
                wire_ids(list)?
            }
            Err(_) => wires.extract::<Vec<u8>>()?,
        };
        let mut built: [Option<Py<PyBytes>>; 4] = Default::default();
        for &id in &ids {
            let slot = built
                .get_mut(usize::from(id))
                .ok_or_else(|| PyValueError::new_err("unknown wire"))?;
            if slot.is_none() {
                *slot = Some(self.frame(py, id)?);
            }
        }
        // Every id was checked above, so the `None` arm is unreachable; it keeps this free of panics.
        PyList::new(
            py,
            ids.iter()
                .map(|&id| built.get(usize::from(id)).and_then(Option::as_ref).map(|f| f.bind(py))),
        )
    }

    fn __repr__(&self) -> String {
        format!("<Outgoing action={:?}>", self.shared.envelope().action)
    }
}

impl Outgoing {
    /// A server envelope with `data` already JSON.
    fn with_data(action: &str, data: Box<RawValue>, seq: i64) -> Self {
        let env = Envelope {
            ver: 1,
            seq,
            action: action.to_owned(),
            from: String::new(),
            to: String::new(),
            data: Some(data),
            ticket: String::new(),
            extra: None,
        };
        Self {
            shared: Arc::new(EncodedOnce::new(env)),
            frames: Default::default(),
        }
    }

    /// The common fan-out, every recipient on one wire variant: `list.count(first)` (a C loop comparing by
    /// identity first, and CPython's small ints are singletons) confirms it, and CPython fills the result
    /// list. `None` when the list is short, mixed, or does not start with an int.
    fn frames_all_same<'py>(&self, py: Python<'py>, list: &Bound<'py, PyList>) -> PyResult<Option<Bound<'py, PyList>>> {
        let len = list.len();
        if len < ALL_SAME_MIN {
            return Ok(None);
        }
        let first = list.get_item(0)?;
        // `count` tests `item == first`: with an exact int first, another item counts only if it equals
        // that int (an int of the same value, `False` for 0, `0.0`), and is then that wire.
        if !first.is_exact_instance_of::<PyInt>() {
            return Ok(None);
        }
        let same: usize = list.call_method1(intern!(py, "count"), (&first,))?.extract()?;
        // An item's `__eq__` may have run Python code that changed the list.
        if same != len || list.len() != len {
            return Ok(None);
        }
        let frame = self.frame(py, first.extract::<u8>()?)?;
        // `[frame] * len`, CPython's own fill loop.
        let repeated = PyList::new(py, [frame])?.as_sequence().repeat(len)?;
        Ok(Some(repeated.cast_into::<PyList>()?))
    }
}

/// A server envelope whose `data` is an object with fixed keys, built from a tuple of values: what
/// `Outgoing(action, dict(zip(keys, values)), seq=seq)` builds, byte for byte, without the dict (the
/// message path's pushes and acknowledgements, several per message).
#[pyclass(frozen, module = "glide._native")]
pub struct OutgoingShape {
    action: String,
    keys: Vec<String>,
}

#[pymethods]
impl OutgoingShape {
    #[new]
    fn new(action: &str, keys: Vec<String>) -> PyResult<Self> {
        if let Some(key) = keys.iter().find(|k| needs_go_escaping(k)) {
            return Err(PyValueError::new_err(format!(
                "key {key:?}: not one Go writes as serde does"
            )));
        }
        Ok(Self {
            action: action.to_owned(),
            keys,
        })
    }

    #[getter]
    fn action(&self) -> &str {
        &self.action
    }

    #[getter]
    fn keys(&self) -> Vec<String> {
        self.keys.clone()
    }

    /// The envelope with these values, one per key, in order.
    #[pyo3(signature = (values, *, seq=0))]
    fn __call__(&self, values: &Bound<'_, PyTuple>, seq: i64) -> PyResult<Outgoing> {
        Ok(Outgoing::with_data(
            &self.action,
            pairs_to_json(&self.keys, values)?,
            seq,
        ))
    }

    fn __repr__(&self) -> String {
        format!("<OutgoingShape action={:?} keys={:?}>", self.action, self.keys)
    }
}

/// Lists shorter than this are read item by item (the `count` call costs about as much as 16 items).
const ALL_SAME_MIN: usize = 16;

/// The wire ids of a list, each checked to fit a byte; a run of the same object is extracted once.
fn wire_ids(list: &Bound<'_, PyList>) -> PyResult<Vec<u8>> {
    let mut ids = Vec::with_capacity(list.len());
    let mut last: Option<(Bound<'_, PyAny>, u8)> = None;
    for item in list.iter() {
        let id = match &last {
            Some((prev, id)) if prev.is(&item) => *id,
            _ => {
                let id = item.extract::<u8>()?;
                last = Some((item, id));
                id
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use pyo3::exceptions::{PyOverflowError, PyTypeError};
    use pyo3::types::{PyDict, PyTuple};

    use super::*;

    fn chat(py: Python<'_>) -> Outgoing {
        let data = PyDict::new(py);
        data.set_item("content", "hi <all>").unwrap();
        Outgoing::new("message.chat", Some(data.as_any()), 0, "", "", "", None, None, 1).unwrap()
    }

    fn frames<'py>(out: &Outgoing, py: Python<'py>, wires: Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        Ok(out.frames(py, &wires)?.iter().collect())
    }

    #[test]
    fn frames_share_one_object_per_variant() {
        Python::attach(|py| {
            let out = chat(py);
            let ws = out.frame(py, 0).unwrap().into_bound(py);
            assert!(ws.as_bytes().ends_with(br#""data":{"content":"hi \u003call\u003e"}}"#));
            let tcp = out.frame(py, 2).unwrap();
            for n in [0, 1, ALL_SAME_MIN - 1, ALL_SAME_MIN, 1000] {
                let got = frames(&out, py, PyList::new(py, vec![0u8; n]).unwrap().into_any()).unwrap();
                assert_eq!(got.len(), n);
                assert!(got.iter().all(|f| f.is(&ws)));
            }
            for n in [3, ALL_SAME_MIN + 5] {
                let mut wires = vec![0u8; n];
                wires[n - 1] = 2;
                let list = PyList::new(py, &wires).unwrap().into_any();
                let got = frames(&out, py, list).unwrap();
                assert!(got[..n - 1].iter().all(|f| f.is(&ws)));
                assert!(got[n - 1].is(tcp.bind(py)));
                let tuple = PyTuple::new(py, &wires).unwrap().into_any();
                let from_tuple = frames(&out, py, tuple).unwrap();
                assert!(from_tuple.iter().zip(&got).all(|(a, b)| a.is(b)));
            }
        });
    }

    #[test]
    fn frames_refuse_bad_wires() {
        Python::attach(|py| {
            let out = chat(py);
            let eval = |code: &std::ffi::CStr| py.eval(code, None, None).unwrap();
            for (wires, is_value_error) in [
                (eval(c"[0, 4]"), true),
                (eval(c"[4] * 20"), true),
                (eval(c"[0] * 20 + [5]"), true),
                (eval(c"(0, 9)"), true),
            ] {
                let err = frames(&out, py, wires).unwrap_err();
                assert_eq!(err.is_instance_of::<PyValueError>(py), is_value_error, "{err}");
            }
            assert!(frames(&out, py, eval(c"[256] * 20"))
                .unwrap_err()
                .is_instance_of::<PyOverflowError>(py));
            assert!(frames(&out, py, eval(c"[-1]"))
                .unwrap_err()
                .is_instance_of::<PyOverflowError>(py));
            assert!(frames(&out, py, eval(c"['0'] * 20"))
                .unwrap_err()
                .is_instance_of::<PyTypeError>(py));
            assert!(frames(&out, py, eval(c"[0.0] * 20"))
                .unwrap_err()
                .is_instance_of::<PyTypeError>(py));
            assert!(frames(&out, py, eval(c"'0'"))
                .unwrap_err()
                .is_instance_of::<PyTypeError>(py));
            assert!(frames(&out, py, eval(c"None")).is_err());
        });
    }
}
