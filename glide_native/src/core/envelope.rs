//! The message envelope every client frame carries (GlideIM Gen-2 `GlideMessage`), independent of
//! its wire encoding, plus the errors the codecs return.
//!
//! `data` is kept as raw JSON text so a payload the server only forwards is never parsed into a tree
//! and re-serialised: the bytes a sender wrote are the bytes a JSON receiver gets.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::value::RawValue;

/// Deepest nesting of arrays/objects accepted inside `data`.
///
/// Chosen so every accepted payload also fits the protobuf encoding: each JSON object level costs three
/// protobuf message levels (`Value`, `Struct`, map entry) and common protobuf decoders (upb, used by
/// Python's `protobuf`; prost) stop at 100, so 32 levels is the most that survives a JSON -> protobuf
/// fan-out. `0` is a scalar, `{}` or `[]` is depth 1.
pub const MAX_DATA_DEPTH: usize = 32;

/// One decoded message: `{ver, seq, action, from, to, data, ticket, extra}`.
///
/// Empty strings, zero numbers and `None` mean "absent"; the JSON encoder omits them exactly as Go's
/// `omitempty` does (except `action`, which is always written).
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    /// Protocol version; the server sends 1, clients may omit it (0).
    pub ver: i64,
    /// Client request sequence, echoed in replies; 0 (omitted) on pushes.
    pub seq: i64,
    /// Action name such as `message.chat`.
    pub action: String,
    /// Sender uid (Gen-1 integer uids arrive as decimal strings).
    pub from: String,
    /// Target uid or channel id.
    pub to: String,
    /// Payload as raw JSON text, byte-exact as received (no surrounding whitespace).
    /// `None` = the key was absent (omitted on output); JSON `null` is `Some` of the text `null` and is
    /// written back as `"data":null`, as Go writes a server message created with nil data.
    pub data: Option<Box<RawValue>>,
    /// Per-target send ticket (40 hex chars) for chat and group messages.
    pub ticket: String,
    /// Free-form string map; `None` whenever it is absent, null or empty (all three encode the same).
    pub extra: Option<BTreeMap<String, String>>,
}

// Manual impl: `RawValue` has no `PartialEq`; two payloads are equal when their texts are.
impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.ver == other.ver
            && self.seq == other.seq
            && self.action == other.action
            && self.from == other.from
            && self.to == other.to
            && self.data_json() == other.data_json()
            && self.ticket == other.ticket
            && self.extra == other.extra
    }
}

impl Eq for Envelope {}

impl Envelope {
    /// An envelope with only `action` set.
    pub fn new(action: impl Into<String>) -> Self {
        Envelope {
            action: action.into(),
            ..Envelope::default()
        }
    }

    /// An envelope whose `data` is already-serialised JSON text (checked with [`raw_data`]).
    ///
    /// This is how the server builds replies and pushes: `Envelope::with_json_data(1, seq,
    /// "notify.success", "null")` encodes as `{"ver":1,"seq":1,"action":"notify.success","data":null}`.
    pub fn with_json_data(
        ver: i64,
        seq: i64,
        action: impl Into<String>,
        data_json: impl Into<String>,
    ) -> Result<Self, DecodeError> {
        Ok(Envelope {
            ver,
            seq,
            action: action.into(),
            data: Some(raw_data(data_json)?),
            ..Envelope::default()
        })
    }

    /// Replace `data` with already-serialised JSON text (checked with [`raw_data`]).
    pub fn set_data_json(&mut self, data_json: impl Into<String>) -> Result<(), DecodeError> {
        self.data = Some(raw_data(data_json)?);
        Ok(())
    }

    /// The raw JSON text of `data`, if present.
    pub fn data_json(&self) -> Option<&str> {
        self.data.as_deref().map(RawValue::get)
    }
}

/// Check that `json` is one well-formed JSON value nested at most [`MAX_DATA_DEPTH`] deep, and wrap it
/// as a payload. Surrounding whitespace is trimmed so the text is stored as the codecs store it.
pub fn raw_data(json: impl Into<String>) -> Result<Box<RawValue>, DecodeError> {
    let mut json: String = json.into();
    let trimmed = json.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if trimmed.len() != json.len() {
        json = trimmed.to_owned();
    }
    let raw = RawValue::from_string(json).map_err(|e| DecodeError::new(format!("data: invalid JSON: {e}")))?;
    if !within_depth(raw.get()) {
        return Err(DecodeError::new(too_deep("data")));
    }
    Ok(raw)
}

/// Whether JSON text nests at most [`MAX_DATA_DEPTH`] arrays/objects deep.
///
/// Runs on every decoded payload, so it is cheap in the common case: depth can only exceed the limit if
/// the text holds more than that many `[`/`{` bytes, which one SIMD count rules out for nearly all
/// messages; only then is the text walked properly (skipping brackets inside strings).
pub(crate) fn within_depth(json: &str) -> bool {
    let bytes = json.as_bytes();
    if bytes.len() <= MAX_DATA_DEPTH || memchr::memchr2_iter(b'[', b'{', bytes).count() <= MAX_DATA_DEPTH {
        return true;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DATA_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The error text for a value nested too deep, naming the field.
pub(crate) fn too_deep(field: &str) -> String {
    format!("{field}: nested deeper than {MAX_DATA_DEPTH} levels")
}

/// Why a frame could not be decoded. The message is meant for the client (`notify.error` data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
        }
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Why an envelope could not be encoded. Only the protobuf encoder fails: a JSON payload it cannot
/// express as a `google.protobuf.Value` (a number outside the double range, nesting deeper than
/// [`MAX_DATA_DEPTH`] in an envelope built without the checks of [`raw_data`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    message: String,
}

impl EncodeError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        EncodeError {
            message: message.into(),
        }
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_trims_and_validates() {
        assert_eq!(raw_data(" {\"a\": 1}\n").unwrap().get(), "{\"a\": 1}");
        assert_eq!(raw_data("null").unwrap().get(), "null");
        assert!(raw_data("").is_err());
        assert!(raw_data("{").is_err());
        assert!(raw_data("1 2").is_err());
        assert!(raw_data("{'a':1}").is_err());
    }

    #[test]
    fn depth_limit_is_exact() {
        let ok = format!("{}{}", "[".repeat(MAX_DATA_DEPTH), "]".repeat(MAX_DATA_DEPTH));
        assert!(raw_data(ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DATA_DEPTH + 1), "]".repeat(MAX_DATA_DEPTH + 1));
        assert_eq!(
            raw_data(deep).unwrap_err().message(),
            "data: nested deeper than 32 levels"
        );
        // Many brackets side by side are wide, not deep.
        let wide = format!("[{}]", vec!["{}"; 200].join(","));
        assert!(raw_data(wide).is_ok());
        // Brackets inside strings (with escaped quotes) do not count.
        let in_str = format!("[\"\\\"{}\"]", "[".repeat(100));
        assert!(raw_data(in_str).is_ok());
    }

    #[test]
    fn equality_compares_data_text() {
        let a = Envelope::with_json_data(1, 2, "x", "{\"a\":1}").unwrap();
        let mut b = a.clone();
        assert_eq!(a, b);
        b.set_data_json("{\"a\": 1}").unwrap();
        assert_ne!(a, b);
        b.data = None;
        assert_ne!(a, b);
        assert_eq!(b.data_json(), None);
        assert_eq!(Envelope::new("heartbeat").action, "heartbeat");
    }
}
