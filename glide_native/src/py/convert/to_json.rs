//! Python objects -> JSON text, for `Outgoing` data.
//!
//! The output is compact JSON (`json.dumps(obj, separators=(",", ":"))` layout) with strings escaped
//! exactly as Go's `encoding/json` escapes them, as GlideIM's Go server writes them.
//!
//! The envelope stores `data` as a `RawValue`, and the only way to get one without serde_json parsing the
//! text again to validate it is `to_raw_value` of a `Serialize` type; so the objects are walked through
//! serde's data model. serde_json escapes strings as Go does except for `<`, `>`, `&`, U+2028 and U+2029:
//! a value string holding one of those is escaped by [`write_str`] and passed on as a (checked) raw value,
//! and a dict with such a key, which serde_json cannot take as raw text, sends the whole payload through
//! the plain writer [`write_py`] instead.

use std::cell::{Cell, RefCell};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

use crate::core::json_escape::{write_i64, write_str};

/// Deepest nesting written; deeper data raises ValueError.
const MAX_DEPTH: usize = 128;

/// Serialises a Python object (dict, list, tuple, str, int, float, bool, None, and subclasses of these)
/// to compact JSON.
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Box<RawValue>> {
    let state = State {
        err: Cell::new(None),
        escaped_key: Cell::new(false),
    };
    match serde_json::value::to_raw_value(&Json {
        obj,
        depth: 0,
        state: &state,
    }) {
        Ok(raw) => Ok(raw),
        Err(_) if state.escaped_key.get() => {
            let text = with_scratch(|buf| {
                write_py(obj, buf, 0)?;
                // Only UTF-8 text (from `str`) and ASCII were written.
                std::str::from_utf8(buf)
                    .map(str::to_owned)
                    .map_err(|e| PyValueError::new_err(e.to_string()))
            })?;
            RawValue::from_string(text).map_err(|e| PyValueError::new_err(e.to_string()))
        }
        Err(e) => Err(state.err.take().unwrap_or_else(|| PyValueError::new_err(e.to_string()))),
    }
}

/// `{keys[i]: values[i], …}` as compact JSON: what [`py_to_json`] gives for that dict, without building it.
/// The caller checked once that no key needs Go's own escaping ([`needs_go_escaping`]).
pub fn pairs_to_json(keys: &[String], values: &Bound<'_, PyTuple>) -> PyResult<Box<RawValue>> {
    if keys.len() != values.len() {
        return Err(PyValueError::new_err(format!(
            "expected {} values, got {}",
            keys.len(),
            values.len()
        )));
    }
    let state = State {
        err: Cell::new(None),
        escaped_key: Cell::new(false),
    };
    match serde_json::value::to_raw_value(&Pairs {
        keys,
        values,
        state: &state,
    }) {
        Ok(raw) => Ok(raw),
        // A dict among the values has a key Go escapes: the dict of the pairs takes the plain writer.
        Err(_) if state.escaped_key.get() => {
            let dict = PyDict::new(values.py());
            for (key, value) in keys.iter().zip(values.iter()) {
                dict.set_item(key, value)?;
            }
            py_to_json(dict.as_any())
        }
        Err(e) => Err(state.err.take().unwrap_or_else(|| PyValueError::new_err(e.to_string()))),
    }
}

/// Whether a key would be escaped differently by Go than by serde_json.
pub fn needs_go_escaping(key: &str) -> bool {
    go_escapes_more(key)
}

/// Scratch buffers above this capacity are not kept between calls.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// A buffer reused by every encode on this thread: small payloads then cost no allocation of their own.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with an empty scratch buffer (this thread's reusable one, or a fresh one if it is in use).
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// A Python object as one of the JSON types.
enum Kind<'a, 'py> {
    Str(&'a str),
    Int(i64),
    /// Beyond 64 bits signed (a `u64`, or bigger): its decimal text.
    BigInt(String),
    Float(f64),
    Bool(bool),
    Null,
    Dict(&'a Bound<'py, PyDict>),
    List(&'a Bound<'py, PyList>),
    Tuple(&'a Bound<'py, PyTuple>),
}

/// Exact types first (a pointer compare each, and the only types real payloads hold), then subclasses
/// (an `IntEnum`, a `str` enum, an `OrderedDict`), taken as their base type. Only C-level accessors are
/// used, so no Python code runs (which could mutate a dict being iterated).
fn classify<'a, 'py>(obj: &'a Bound<'py, PyAny>, depth: usize) -> PyResult<Kind<'a, 'py>> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("data nested too deeply"));
    }
    Ok(if let Ok(s) = obj.cast_exact::<PyString>() {
        Kind::Str(s.to_str()?)
    } else if let Ok(i) = obj.cast_exact::<PyInt>() {
        int_kind(i)?
    } else if let Ok(d) = obj.cast_exact::<PyDict>() {
        Kind::Dict(d)
    } else if let Ok(l) = obj.cast_exact::<PyList>() {
        Kind::List(l)
    } else if obj.is_none() {
        Kind::Null
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        Kind::Bool(b.is_true())
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        Kind::Float(f.value())
    } else if let Ok(t) = obj.cast_exact::<PyTuple>() {
        Kind::Tuple(t)
    } else if let Ok(s) = obj.cast::<PyString>() {
        Kind::Str(s.to_str()?)
    } else if let Ok(i) = obj.cast::<PyInt>() {
        int_kind(i)?
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Kind::Float(f.value())
    } else if let Ok(d) = obj.cast::<PyDict>() {
        Kind::Dict(d)
    } else if let Ok(l) = obj.cast::<PyList>() {
        Kind::List(l)
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        Kind::Tuple(t)
    } else {
        let type_name = obj.get_type().name()?;
        return Err(PyValueError::new_err(format!(
            "data: {type_name} is not JSON-serialisable"
        )));
    })
}

fn int_kind<'a, 'py>(i: &Bound<'py, PyInt>) -> PyResult<Kind<'a, 'py>> {
    if let Ok(v) = i.extract::<i64>() {
        return Ok(Kind::Int(v));
    }
    // `int.__repr__`, not `repr(i)`, which an enum overrides: the decimal text, as json.dumps writes it.
    let text = i.py().get_type::<PyInt>().getattr("__repr__")?.call1((i,))?;
    Ok(Kind::BigInt(text.extract()?))
}

fn check_float(v: f64) -> PyResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PyValueError::new_err("data: NaN and infinity are not JSON"))
    }
}

fn dict_key<'a>(k: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    k.cast::<PyString>()
        .map_err(|_| PyValueError::new_err("data: object keys must be str"))?
        .to_str()
}

/// Whether Go escapes something in `s` that serde_json leaves as it is (`<`, `>`, `&`; 0xE2 leads U+2028
/// and U+2029, and a few other characters, for which the Go-exact path is merely slower).
fn go_escapes_more(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
}

/// What one serialisation shares: the Python error that stopped it, and whether a key needs Go's escaping.
struct State {
    err: Cell<Option<PyErr>>,
    escaped_key: Cell<bool>,
}

impl State {
    fn fail<E: serde::ser::Error>(&self, err: PyErr) -> E {
        self.err.set(Some(err));
        E::custom("Python error")
    }
}

/// A Python object seen through serde's data model.
struct Json<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
    state: &'a State,
}

impl Serialize for Json<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = self.state;
        let depth = self.depth + 1;
        match classify(self.obj, self.depth).map_err(|e| state.fail(e))? {
            Kind::Str(s) if go_escapes_more(s) => {
                let mut out = Vec::with_capacity(s.len() + 16);
                write_str(&mut out, s);
                let text = String::from_utf8(out).map_err(S::Error::custom)?;
                RawValue::from_string(text)
                    .map_err(S::Error::custom)?
                    .serialize(serializer)
            }
            Kind::Str(s) => serializer.serialize_str(s),
            Kind::Int(v) => serializer.serialize_i64(v),
            Kind::BigInt(text) => RawValue::from_string(text)
                .map_err(S::Error::custom)?
                .serialize(serializer),
            Kind::Float(v) => serializer.serialize_f64(check_float(v).map_err(|e| state.fail(e))?),
            Kind::Bool(b) => serializer.serialize_bool(b),
            Kind::Null => serializer.serialize_unit(),
            Kind::Dict(d) => {
                let mut map = serializer.serialize_map(Some(d.len()))?;
                for (k, v) in d.iter() {
                    let key = dict_key(&k).map_err(|e| state.fail(e))?;
                    if go_escapes_more(key) {
                        state.escaped_key.set(true);
                        return Err(S::Error::custom("a key needs Go's escaping"));
                    }
                    map.serialize_entry(key, &Json { obj: &v, depth, state })?;
                }
                map.end()
            }
            Kind::List(l) => self.seq(serializer, l.len(), l.iter()),
            Kind::Tuple(t) => self.seq(serializer, t.len(), t.iter()),
        }
    }
}

/// Keys and values side by side, serialised as one object.
struct Pairs<'a, 'py> {
    keys: &'a [String],
    values: &'a Bound<'py, PyTuple>,
    state: &'a State,
}

impl Serialize for Pairs<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.keys.len()))?;
        for (key, value) in self.keys.iter().zip(self.values.iter()) {
            map.serialize_entry(
                key.as_str(),
                &Json {
                    obj: &value,
                    depth: 1,
                    state: self.state,
                },
            )?;
        }
        map.end()
    }
}

impl<'py> Json<'_, 'py> {
    fn seq<S: Serializer>(
        &self,
        serializer: S,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(len))?;
        for item in items {
            seq.serialize_element(&Json {
                obj: &item,
                depth: self.depth + 1,
                state: self.state,
            })?;
        }
        seq.end()
    }
}

/// The plain writer, Go's escaping throughout; its output has to be checked again to become a `RawValue`.
fn write_py(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    match classify(obj, depth)? {
        Kind::Str(s) => write_str(out, s),
        Kind::Int(v) => write_i64(out, v),
        Kind::BigInt(text) => out.extend_from_slice(text.as_bytes()),
        Kind::Float(v) => {
            // Shortest round-trip form (`0.1`, `1.0`, `1e300`), as serde_json writes it above.
            serde_json::to_writer(&mut *out, &check_float(v)?).map_err(|e| PyValueError::new_err(e.to_string()))?
        }
        Kind::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Kind::Null => out.extend_from_slice(b"null"),
        Kind::Dict(d) => {
            out.push(b'{');
            for (i, (k, v)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, dict_key(&k)?);
                out.push(b':');
                write_py(&v, out, depth + 1)?;
            }
            out.push(b'}');
        }
        Kind::List(l) => write_seq(l.iter(), out, depth)?,
        Kind::Tuple(t) => write_seq(t.iter(), out, depth)?,
    }
    Ok(())
}

fn write_seq<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_py(&item, out, depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use pyo3::exceptions::PyValueError;

    use super::*;

    /// Evaluate a Python expression (with `enum`, `collections` and `json` imported) and serialise it.
    fn dumps(py: Python<'_>, expr: &str) -> PyResult<String> {
        let globals = PyDict::new(py);
        for module in ["enum", "collections", "json"] {
            globals.set_item(module, py.import(module)?)?;
        }
        py.run(
            c"class Color(enum.IntEnum):\n    RED = 7\nclass Name(str, enum.Enum):\n    A = 'a<b'\n",
            Some(&globals),
            None,
        )?;
        let code = std::ffi::CString::new(expr).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let obj = py.eval(&code, Some(&globals), None)?;
        py_to_json(&obj).map(|raw| raw.get().to_owned())
    }

    #[test]
    fn writes_compact_json_with_go_escaping() {
        Python::attach(|py| {
            for (expr, want) in [
                (
                    r#"{"mid": 7102113327081369600, "from": "1", "type": 1, "ok": True, "no": None}"#,
                    r#"{"mid":7102113327081369600,"from":"1","type":1,"ok":true,"no":null}"#,
                ),
                (
                    r#"["<a>&", "\u2028\u2029", "€→", 'q"\\', "\x01\n\x7f"]"#,
                    concat!(
                        r#"["\u003ca\u003e\u0026","\u2028\u2029","€→","q\"\\","\u0001\n"#,
                        "\u{7f}\"]"
                    ),
                ),
                (r#"{"<k>": {"é": 1}}"#, r#"{"\u003ck\u003e":{"é":1}}"#),
                (r#"[{"a&": 1}, (1, 2), []]"#, r#"[{"a\u0026":1},[1,2],[]]"#),
                (
                    "[1.0, 0.1, 1e300, -2.5e-7, -0.0, 5e-324]",
                    "[1.0,0.1,1e+300,-2.5e-7,-0.0,5e-324]",
                ),
                (
                    "[2**63, -2**63, 2**64, -2**64 - 1, 10**30]",
                    concat!(
                        "[9223372036854775808,-9223372036854775808,18446744073709551616,",
                        "-18446744073709551617,1000000000000000000000000000000]"
                    ),
                ),
                (
                    "[Color.RED, Name.A, collections.OrderedDict(b=1, a=2)]",
                    r#"[7,"a\u003cb",{"b":1,"a":2}]"#,
                ),
                ("{}", "{}"),
                ("'plain'", r#""plain""#),
            ] {
                assert_eq!(dumps(py, expr).unwrap(), want, "{expr}");
            }
        });
    }

    #[test]
    fn output_reads_back_equal() {
        Python::attach(|py| {
            let expr = r#"{"a": [1, 2.5, "x<y", {"z": None}], "b&": True, "c": 2**70}"#;
            let text = dumps(py, expr).unwrap();
            let back = py.import("json").unwrap().call_method1("loads", (text,)).unwrap();
            let code = std::ffi::CString::new(expr).unwrap();
            assert!(back.eq(py.eval(&code, None, None).unwrap()).unwrap());
        });
    }

    #[test]
    fn refuses_what_json_cannot_hold() {
        Python::attach(|py| {
            for (expr, message) in [
                ("float('nan')", "NaN and infinity"),
                ("[float('inf')]", "NaN and infinity"),
                ("{1: 2}", "keys must be str"),
                ("{'<': 1, 2: 3}", "keys must be str"),
                ("[object()]", "object is not JSON-serialisable"),
                ("{1, 2}", "set is not JSON-serialisable"),
                ("b'bytes'", "bytes is not JSON-serialisable"),
            ] {
                let err = dumps(py, expr).unwrap_err();
                assert!(err.is_instance_of::<PyValueError>(py), "{expr}");
                assert!(err.to_string().contains(message), "{expr}: {err}");
            }
        });
    }

    #[test]
    fn depth_is_bounded() {
        Python::attach(|py| {
            let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
            assert_eq!(dumps(py, &nested(MAX_DEPTH + 1)).unwrap(), nested(MAX_DEPTH + 1));
            let err = dumps(py, &nested(MAX_DEPTH + 2)).unwrap_err();
            assert!(err.to_string().contains("nested too deeply"));
            // The plain writer (taken for a key Go escapes) has the same bound.
            let deep_dict = format!("{}{{'<': 1}}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
            assert!(dumps(py, &deep_dict)
                .unwrap_err()
                .to_string()
                .contains("nested too deeply"));
        });
    }

    #[test]
    fn scratch_is_reentrant() {
        let inner = with_scratch(|outer| {
            outer.extend_from_slice(b"outer");
            let inner = with_scratch(|buf| {
                buf.extend_from_slice(b"inner");
                buf.clone()
            });
            assert_eq!(outer, b"outer");
            inner
        });
        assert_eq!(inner, b"inner");
        assert!(with_scratch(|buf| buf.is_empty()));
    }
}
