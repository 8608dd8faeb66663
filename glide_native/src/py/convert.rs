//! JSON text <-> Python objects, for envelope `data`.
//!
//! Parsing builds Python objects straight from serde_json's tokens (no intermediate `Value` tree) and
//! gives what Python's `json.loads` gives, with two documented exceptions (both raise `ValueError`):
//! lone UTF-16 surrogate escapes (`"\ud800"`, which `json` turns into a `str` holding a surrogate that
//! no UTF-8 encoder accepts) and numbers outside the double range (`1e400` and integer literals of more
//! than 308 digits, which `json` turns into `inf` and an exact `int`). Integers beyond 64 bits and
//! `-0` are exact `int`s as in `json`; floats round-trip.
//!
//! Serialising is in [`to_json`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

mod to_json;

pub use to_json::{needs_go_escaping, pairs_to_json, py_to_json};

/// Parses JSON text into Python objects (dict, list, str, int, float, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, raw: &str) -> PyResult<Bound<'py, PyAny>> {
    let ctx = Ctx::new(py, None, StrCache::lock());
    match parse(&ctx, raw) {
        Ok(value) => Ok(value),
        // A number serde_json could only give as a double, but which may be an integer literal: parse
        // again, reading such numbers from their text (rare: 64-bit overflow or `-0`).
        Err(_) if ctx.needs_text.get() => {
            let literals = number_literals(raw);
            let ctx = Ctx::new(py, Some(&literals), ctx.keys.into_inner());
            parse(&ctx, raw).map_err(|e| ctx.into_err(e))
        }
        Err(e) => Err(ctx.into_err(e)),
    }
}

/// A Python `str` holding `s`.
///
/// ASCII text (nearly every key, action, uid and id) is copied straight into a new compact ASCII string,
/// skipping CPython's UTF-8 decoder (`PyString::new`), which checks the text again on its way in; other
/// text takes that decoder.
#[cfg(not(feature = "abi3"))]
pub fn new_str<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    if !s.is_ascii() {
        return Ok(PyString::new(py, s));
    }
    let len = pyo3::ffi::Py_ssize_t::try_from(s.len()).map_err(|_| PyValueError::new_err("string too long"))?;
    // SAFETY: `PyUnicode_New(len, 127)` returns a new compact ASCII string with room for `len` bytes (or
    // null with an exception set, turned into `Err`). Its one-byte data buffer is filled completely with
    // ASCII bytes before the object is handed out, which is what CPython requires of such a string.
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyUnicode_New(len, 127))?;
        std::ptr::copy_nonoverlapping(s.as_ptr(), pyo3::ffi::PyUnicode_1BYTE_DATA(obj.as_ptr()), s.len());
        Ok(obj.cast_into_unchecked())
    }
}

/// A Python `str` holding `s` (the stable ABI has no way to fill a string's buffer in place).
#[cfg(feature = "abi3")]
pub fn new_str<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    Ok(PyString::new(py, s))
}

fn parse<'py>(ctx: &Ctx<'_, 'py>, raw: &str) -> Result<Bound<'py, PyAny>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = Value(ctx).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// State shared by every visitor of one parse.
struct Ctx<'a, 'py> {
    py: Python<'py>,
    /// The text of every number in document order, when parsing in the slow mode that needs them.
    literals: Option<&'a [&'a str]>,
    /// Index into `literals` of the next number the deserializer reports.
    next_literal: Cell<usize>,
    /// Set in the fast mode when a double was reported that may have been an integer literal.
    needs_text: Cell<bool>,
    /// A Python error (a failed allocation, say) that aborted the parse, to be raised as it is.
    py_err: Cell<Option<PyErr>>,
    /// Object keys come from here.
    keys: RefCell<StrCache>,
}

impl<'a, 'py> Ctx<'a, 'py> {
    fn new(py: Python<'py>, literals: Option<&'a [&'a str]>, keys: StrCache) -> Self {
        Ctx {
            py,
            literals,
            next_literal: Cell::new(0),
            needs_text: Cell::new(false),
            py_err: Cell::new(None),
            keys: RefCell::new(keys),
        }
    }

    fn key(&self, text: &str) -> PyResult<Bound<'py, PyString>> {
        match self.keys.try_borrow_mut() {
            Ok(mut cache) => cache.get(self.py, text),
            Err(_) => new_str(self.py, text),
        }
    }

    /// Keep `err` to raise later; serde only carries a message.
    fn stash<E: de::Error>(&self, err: PyErr) -> E {
        self.py_err.set(Some(err));
        E::custom("Python error")
    }

    fn into_err(self, err: serde_json::Error) -> PyErr {
        self.py_err
            .take()
            .unwrap_or_else(|| PyValueError::new_err(err.to_string()))
    }

    /// The text of the number being visited (slow mode only), advancing to the next.
    fn take_literal(&self) -> Option<&'a str> {
        let index = self.next_literal.get();
        self.next_literal.set(index + 1);
        self.literals.and_then(|all| all.get(index).copied())
    }
}

/// Every number token of JSON text in order. The text has been parsed once already, so a token is any
/// run outside strings that starts with `-` or a digit (keywords start with letters).
fn number_literals(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                out.extend(text.get(start..i));
            }
            _ => i += 1,
        }
    }
    out
}

/// 2^63: every integer literal serde_json reports as a double (it overflowed i64/u64) is at least this big.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Any JSON value.
#[derive(Clone, Copy)]
struct Value<'c, 'a, 'py>(&'c Ctx<'a, 'py>);

impl<'de, 'py> DeserializeSeed<'de> for Value<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for Value<'_, '_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.py.None().into_bound(self.0.py))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0.py, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.take_literal();
        Ok(PyInt::new(self.0.py, v).into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.take_literal();
        Ok(PyInt::new(self.0.py, v).into_any())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let ctx = self.0;
        if ctx.literals.is_some() {
            if let Some(text) = ctx.take_literal().filter(|t| !t.contains(['.', 'e', 'E'])) {
                // An integer literal: Python's int parses the exact value (json.loads does the same).
                let int = ctx.py.get_type::<PyInt>().call1((text,));
                return int.map_err(|e| ctx.stash(e));
            }
        } else if v.fract() == 0.0 && (v.abs() >= TWO_POW_63 || (v == 0.0 && v.is_sign_negative())) {
            // Either an integer literal beyond 64 bits, `-0` (an int in Python) or a float literal such as
            // `1e20` or `-0.0`: only the text tells.
            ctx.needs_text.set(true);
            return Err(E::custom("number needs its text"));
        }
        Ok(PyFloat::new(ctx.py, v).into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        new_str(self.0.py, v).map(Bound::into_any).map_err(|e| self.0.stash(e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0.py);
        while let Some(item) = seq.next_element_seed(self)? {
            list.append(item).map_err(|e| self.0.stash(e))?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0.py);
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            let value = map.next_value_seed(self)?;
            // A repeated key keeps its first position and takes the last value, as in json.loads.
            dict.set_item(key, value).map_err(|e| self.0.stash(e))?;
        }
        Ok(dict.into_any())
    }
}

/// An object key.
struct Key<'c, 'a, 'py>(&'c Ctx<'a, 'py>);

impl<'de, 'py> DeserializeSeed<'de> for Key<'_, '_, 'py> {
    type Value = Bound<'py, PyString>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'py> Visitor<'de> for Key<'_, '_, 'py> {
    type Value = Bound<'py, PyString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.key(v).map_err(|e| self.0.stash(e))
    }
}

/// Strings up to this long are cached.
const KEY_MAX_LEN: usize = 24;
/// Slots in the string cache (a power of two).
const KEY_SLOTS: usize = 512;

/// Recently seen short strings (object keys, actions, uids) as Python strings, like orjson's key cache:
/// messages repeat the same few, and a cached `str` is neither allocated, copied nor hashed again (`str`
/// caches its hash, which every dict insert needs). Direct-mapped by a hash of the bytes; a collision
/// replaces the slot.
static KEY_CACHE: Mutex<KeyCache> = Mutex::new(KeyCache { slots: Vec::new() });

/// The string cache, held for one batch of conversions (one parse, one socket read).
pub struct StrCache(Option<MutexGuard<'static, KeyCache>>);

impl StrCache {
    /// Take the cache if it is free. Never wait: whoever holds it (another thread, or this one re-entering
    /// through a finalizer run by the garbage collector mid-parse) is brief, and going without is correct.
    pub fn lock() -> Self {
        StrCache(KEY_CACHE.try_lock().ok())
    }

    /// `text` as a Python `str`, from the cache when it is short and was seen recently.
    pub fn get<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
        match self.0.as_deref_mut() {
            Some(cache) => cache.get(py, text),
            None => new_str(py, text),
        }
    }
}

struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

struct CachedKey {
    len: usize,
    bytes: [u8; KEY_MAX_LEN],
    string: Py<PyString>,
}

impl KeyCache {
    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
        let bytes = text.as_bytes();
        if bytes.len() > KEY_MAX_LEN {
            return new_str(py, text);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(KEY_SLOTS, || None);
        }
        // FxHash-style mixing: keys are a few bytes, so a multiply per byte is cheap enough.
        let hash = bytes.iter().fold(bytes.len() as u64, |h, &b| {
            (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
        });
        let index = (hash >> 32) as usize & (KEY_SLOTS - 1);
        let Some(slot) = self.slots.get_mut(index) else {
            return new_str(py, text);
        };
        if let Some(cached) = slot {
            if cached.bytes.get(..cached.len) == Some(bytes) {
                return Ok(cached.string.bind(py).clone());
            }
        }
        let string = new_str(py, text)?;
        let mut key = [0; KEY_MAX_LEN];
        if let Some(k) = key.get_mut(..bytes.len()) {
            k.copy_from_slice(bytes);
        }
        *slot = Some(CachedKey {
            len: bytes.len(),
            bytes: key,
            string: string.clone().unbind(),
        });
        Ok(string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `repr` tells int from float, `-0.0` from `0.0`, and `True` from `1`.
    fn repr(value: &Bound<'_, PyAny>) -> String {
        value.repr().unwrap().to_string()
    }

    fn json_loads<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyAny> {
        py.import("json").unwrap().call_method1("loads", (text,)).unwrap()
    }

    #[test]
    fn parses_as_json_loads_does() {
        Python::attach(|py| {
            for text in [
                r#"{"cliMid":"9F2C","content":"hello, lunch at noon","type":1,"sendAt":1690000000123}"#,
                r#"{"a":[true,false,null,{}],"b":{"c":[]},"d":"x\u00e9\ud83d\ude00\n\"","e":""}"#,
                r#"{"a":1,"a":2,"b":3}"#,
                r#"  [ 1 , -2 , 3.5 ]  "#,
                "18446744073709551615",
                "18446744073709551616",
                "-9223372036854775808",
                "-9223372036854775809",
                "123456789012345678901234567890",
                "-0",
                "-0.0",
                "[-0, 0, -0.0, 1e20, 1E2, 1.0, -1e-7, 100000000000000000000.0]",
                r#"[1,[2,{"k":[99999999999999999999999,-0,"12345678901234567890123"]}]]"#,
                "0.1",
                "5e-324",
                "1.7976931348623157e308",
                "9007199254740993",
                "\"\u{2028}€中😀\"",
                r#"{"a_key_longer_than_the_cache_takes":1,"é":2}"#,
            ] {
                let ours = json_to_py(py, text).unwrap();
                assert_eq!(repr(&ours), repr(&json_loads(py, text)), "{text}");
            }
        });
    }

    #[test]
    fn documented_differences_raise_value_error() {
        Python::attach(|py| {
            for text in [r#""\ud800""#, "1e400", "[-1e400]", &"1".repeat(400)] {
                let err = json_to_py(py, text).unwrap_err();
                assert!(err.is_instance_of::<PyValueError>(py), "{text}");
            }
        });
    }

    #[test]
    fn malformed_text_raises_value_error() {
        Python::attach(|py| {
            for text in [
                "",
                "{",
                "[1,]",
                "1 2",
                "nul",
                r#"{"a" 1}"#,
                r#"{1:2}"#,
                "\"\\x\"",
                "[\"a\"",
                "-",
            ] {
                let err = json_to_py(py, text).unwrap_err();
                assert!(err.is_instance_of::<PyValueError>(py), "{text:?}");
            }
            // Malformed text after a number that needs its text: the second parse fails the same way.
            assert!(json_to_py(py, "[-0, ]").is_err());
            assert!(json_to_py(py, "[18446744073709551616,").is_err());
        });
    }

    #[test]
    fn each_call_builds_new_containers() {
        Python::attach(|py| {
            let a = json_to_py(py, r#"{"k":[1]}"#).unwrap();
            let b = json_to_py(py, r#"{"k":[1]}"#).unwrap();
            assert!(!a.is(&b));
            a.set_item("k", 2).unwrap();
            assert_eq!(repr(&b), "{'k': [1]}");
        });
    }

    #[test]
    fn number_literals_skip_strings_and_keywords() {
        let text = r#"{"a\"1":-1.5e3,"2":[true,0,"3",null,-0],"x":12345678901234567890123}"#;
        assert_eq!(number_literals(text), ["-1.5e3", "0", "-0", "12345678901234567890123"]);
        assert!(number_literals(r#""unterminated \"#).is_empty());
    }

    #[test]
    fn new_str_copies_ascii_and_decodes_the_rest() {
        Python::attach(|py| {
            for text in ["", "a", "message.chat", "é", "中文", "mixed ascii 😀"] {
                let ours = new_str(py, text).unwrap();
                assert_eq!(ours.to_str().unwrap(), text);
                assert!(ours.as_any().eq(PyString::new(py, text)).unwrap());
                assert_eq!(ours.hash().unwrap(), PyString::new(py, text).hash().unwrap());
            }
        });
    }

    #[test]
    fn key_cache_hands_out_one_object_per_key() {
        Python::attach(|py| {
            let mut cache = KeyCache { slots: Vec::new() };
            let a = cache.get(py, "cliMid").unwrap();
            assert!(a.is(cache.get(py, "cliMid").unwrap()));
            let long = "k".repeat(KEY_MAX_LEN + 1);
            assert!(!cache.get(py, &long).unwrap().is(cache.get(py, &long).unwrap()));
            // Far more keys than slots: collisions replace slots, every answer stays right.
            for round in 0..2 {
                for i in 0..4 * KEY_SLOTS {
                    let key = format!("key{i}");
                    assert_eq!(cache.get(py, &key).unwrap().to_str().unwrap(), key, "round {round}");
                }
            }
            assert_eq!(cache.get(py, "").unwrap().to_str().unwrap(), "");
        });
    }
}
