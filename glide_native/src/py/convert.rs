//! JSON text <-> Python objects, for envelope `data`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString, PyTuple};
use serde_json::Value;

/// Parses JSON text into Python objects (dict, list, str, int, float, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, raw: &str) -> PyResult<Bound<'py, PyAny>> {
    let value: Value = serde_json::from_str(raw).map_err(|e| PyValueError::new_err(e.to_string()))?;
    value_to_py(py, &value)
}

fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, value_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Serialises a Python object (dict, list, tuple, str, int, float, bool, None) to JSON text.
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let mut out = String::with_capacity(128);
    write_py(obj, &mut out, 0)?;
    Ok(out)
}

const MAX_DEPTH: usize = 128;

fn write_py(obj: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("data nested too deeply"));
    }
    if obj.is_none() {
        out.push_str("null");
    } else if let Ok(s) = obj.cast::<PyString>() {
        write_str(s.to_str()?, out);
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
    } else if let Ok(i) = obj.extract::<i64>() {
        out.push_str(&i.to_string());
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(PyValueError::new_err("data: NaN and infinity are not JSON"));
        }
        out.push_str(&serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string()));
    } else if let Ok(d) = obj.cast::<PyDict>() {
        out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyValueError::new_err("data: object keys must be str"))?;
            write_str(key.to_str()?, out);
            out.push(':');
            write_py(&v, out, depth + 1)?;
        }
        out.push('}');
    } else if let Ok(l) = obj.cast::<PyList>() {
        write_seq(l.iter(), out, depth)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        write_seq(t.iter(), out, depth)?;
    } else if let Ok(u) = obj.extract::<u64>() {
        out.push_str(&u.to_string());
    } else {
        let type_name = obj.get_type().name()?;
        return Err(PyValueError::new_err(format!(
            "data: {type_name} is not JSON-serialisable"
        )));
    }
    Ok(())
}

fn write_seq<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, out: &mut String, depth: usize) -> PyResult<()> {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_py(&item, out, depth + 1)?;
    }
    out.push(']');
    Ok(())
}

fn write_str(s: &str, out: &mut String) {
    // serde_json's escaping is exact and fast; the string is already valid UTF-8.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}
