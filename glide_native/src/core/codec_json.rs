//! JSON codec for [`Envelope`], compatible with GlideIM's Go server (`encoding/json`).
//!
//! Decoding follows Go's rules for the envelope struct: keys match case-insensitively (including Go's
//! Unicode folds `K`/U+212A and `s`/U+017F), unknown keys are ignored, a repeated key overrides the
//! earlier one, `null` leaves a scalar field unchanged, and objects for `extra` merge into an earlier
//! one. Deliberate differences: `action` is required and must be a string, Gen-1 integer uids are
//! accepted for `from`/`to`, `data: null` is kept (as the text `null`) instead of dropped, invalid
//! UTF-8 is an error rather than replaced, and `data` deeper than [`MAX_DATA_DEPTH`] is refused.
//!
//! Encoding writes Go's exact bytes, except that `data` is copied as stored where Go would
//! additionally strip insignificant whitespace and HTML-escape it (same JSON value either way).
//!
//! [`MAX_DATA_DEPTH`]: super::envelope::MAX_DATA_DEPTH

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::envelope::{too_deep, within_depth, DecodeError, Envelope};
use super::json_escape::{write_i64, write_str};

/// Decode one JSON envelope from bytes (validated as UTF-8 first).
pub fn decode(input: &[u8]) -> Result<Envelope, DecodeError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| DecodeError::new(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    decode_str(text)
}

/// Decode one JSON envelope from text already known to be UTF-8 (e.g. a WebSocket text frame, which
/// the frame parser has validated), skipping a second validation.
pub fn decode_str(text: &str) -> Result<Envelope, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut env = (&mut de).deserialize_map(EnvelopeVisitor).map_err(json_error)?;
    de.end().map_err(json_error)?;
    if env.extra.as_ref().is_some_and(BTreeMap::is_empty) {
        env.extra = None;
    }
    Ok(env)
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::new(e.to_string())
}

/// Append the JSON encoding of `env` to `out`, byte-identical to Go's `json.Marshal` of GlideIM's
/// `GlideMessage`: keys in the order `ver, seq, action, from, to, data, ticket, extra`, zero values
/// omitted (`action` always present), `extra` keys sorted, strings escaped as Go escapes them.
pub fn encode(env: &Envelope, out: &mut Vec<u8>) {
    out.reserve(encoded_len_hint(env));
    out.extend_from_slice(b"{");
    if env.ver != 0 {
        out.extend_from_slice(b"\"ver\":");
        write_i64(out, env.ver);
        out.push(b',');
    }
    if env.seq != 0 {
        out.extend_from_slice(b"\"seq\":");
        write_i64(out, env.seq);
        out.push(b',');
    }
    out.extend_from_slice(b"\"action\":");
    write_str(out, &env.action);
    if !env.from.is_empty() {
        out.extend_from_slice(b",\"from\":");
        write_str(out, &env.from);
    }
    if !env.to.is_empty() {
        out.extend_from_slice(b",\"to\":");
        write_str(out, &env.to);
    }
    if let Some(data) = &env.data {
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data.get().as_bytes());
    }
    if !env.ticket.is_empty() {
        out.extend_from_slice(b",\"ticket\":");
        write_str(out, &env.ticket);
    }
    if let Some(extra) = env.extra.as_ref().filter(|m| !m.is_empty()) {
        out.extend_from_slice(b",\"extra\":{");
        for (i, (k, v)) in extra.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// The JSON encoding of `env` as a new vector.
pub fn encode_to_vec(env: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    encode(env, &mut out);
    out
}

/// A close upper estimate of the encoded size (exact unless strings need escaping), so encoding
/// allocates once.
pub(crate) fn encoded_len_hint(env: &Envelope) -> usize {
    let extra = env
        .extra
        .as_ref()
        .map_or(0, |m| m.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 10);
    // Fixed part: braces, key names, quotes, colons, commas and two 20-digit numbers.
    90 + env.action.len()
        + env.from.len()
        + env.to.len()
        + env.ticket.len()
        + env.data.as_ref().map_or(0, |d| d.get().len())
        + extra
}

/// The envelope keys, after Go's case folding. `Msg` and `Sign` exist in Go's struct: their values are
/// type-checked like Go does, then dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Ver,
    Seq,
    Action,
    From,
    To,
    Data,
    Msg,
    Ticket,
    Sign,
    Extra,
    Unknown,
}

/// Match a key the way Go's `encoding/json` matches struct fields: ASCII case-insensitively, plus the
/// two non-ASCII characters Go folds onto letters of these names (KELVIN SIGN -> k, LONG S -> s).
fn field_of(key: &str) -> Field {
    let mut buf = [0u8; 6];
    let mut len = 0;
    for c in key.chars() {
        let folded = match c {
            'a'..='z' => c as u8,
            'A'..='Z' => c.to_ascii_lowercase() as u8,
            '\u{212A}' => b'k',
            '\u{17F}' => b's',
            _ => return Field::Unknown,
        };
        match buf.get_mut(len) {
            Some(slot) => *slot = folded,
            None => return Field::Unknown,
        }
        len += 1;
    }
    match buf.get(..len) {
        Some(b"ver") => Field::Ver,
        Some(b"seq") => Field::Seq,
        Some(b"action") => Field::Action,
        Some(b"from") => Field::From,
        Some(b"to") => Field::To,
        Some(b"data") => Field::Data,
        Some(b"msg") => Field::Msg,
        Some(b"ticket") => Field::Ticket,
        Some(b"sign") => Field::Sign,
        Some(b"extra") => Field::Extra,
        _ => Field::Unknown,
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                Ok(field_of(key))
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// Walks the top-level object; only `visit_map` is implemented, so anything else is a type error.
struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope::default();
        let mut has_action = false;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Ver => env.ver = int_field(map.next_value()?, "ver", env.ver)?,
                Field::Seq => env.seq = int_field(map.next_value()?, "seq", env.seq)?,
                Field::Action => {
                    env.action = map
                        .next_value_seed(StrSeed {
                            field: "action",
                            accept_int: false,
                        })?
                        .ok_or_else(|| de::Error::custom("action: expected a string, found null"))?;
                    has_action = true;
                }
                Field::From => set_opt(
                    &mut env.from,
                    map.next_value_seed(StrSeed {
                        field: "from",
                        accept_int: true,
                    })?,
                ),
                Field::To => set_opt(
                    &mut env.to,
                    map.next_value_seed(StrSeed {
                        field: "to",
                        accept_int: true,
                    })?,
                ),
                Field::Ticket => set_opt(
                    &mut env.ticket,
                    map.next_value_seed(StrSeed {
                        field: "ticket",
                        accept_int: false,
                    })?,
                ),
                Field::Msg => drop(map.next_value_seed(StrSeed {
                    field: "msg",
                    accept_int: false,
                })?),
                Field::Sign => drop(map.next_value_seed(StrSeed {
                    field: "sign",
                    accept_int: false,
                })?),
                Field::Data => {
                    let raw: &'de RawValue = map.next_value()?;
                    if !within_depth(raw.get()) {
                        return Err(de::Error::custom(too_deep("data")));
                    }
                    env.data = Some(raw.to_owned());
                }
                Field::Extra => map.next_value_seed(ExtraSeed(&mut env.extra))?,
                Field::Unknown => {
                    // Ignored, but still bounded: no accepted frame nests deeper than data may.
                    let raw: &'de RawValue = map.next_value()?;
                    if !within_depth(raw.get()) {
                        return Err(de::Error::custom(too_deep("an unknown key's value")));
                    }
                }
            }
        }
        if !has_action {
            return Err(de::Error::custom("missing action"));
        }
        Ok(env)
    }
}

/// Go leaves a field untouched when the JSON value is `null`.
fn set_opt(slot: &mut String, value: Option<String>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Parse an integer field from its raw text with Go's rules: an optional `-`, digits without leading
/// zeros, within i64; `null` keeps `current`; fractions, exponents, strings and others are errors.
fn int_field<E: de::Error>(raw: &RawValue, field: &str, current: i64) -> Result<i64, E> {
    let text = raw.get();
    let Some(&first) = text.as_bytes().first() else {
        return Err(E::custom(format!("{field}: expected an integer")));
    };
    let kind = match first {
        b'-' | b'0'..=b'9' => {
            // serde_json has already checked the number's syntax; Go's ParseInt refuses '.', 'e', 'E'.
            if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                return Err(E::custom(format!(
                    "{field}: expected an integer, found the non-integer number {text}"
                )));
            }
            return text
                .parse::<i64>()
                .map_err(|_| E::custom(format!("{field}: integer {text} out of range")));
        }
        b'n' => return Ok(current),
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'[' => "an array",
        _ => "an object",
    };
    Err(E::custom(format!("{field}: expected an integer, found {kind}")))
}

/// Deserializes a string field: `Some(string)`, `None` for null, integers (as decimal text) only when
/// `accept_int` (Gen-1 uids); anything else is an error naming the field.
struct StrSeed {
    field: &'static str,
    accept_int: bool,
}

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.accept_int {
            write!(f, "a string, an integer or null for `{}`", self.field)
        } else {
            write!(f, "a string for `{}`", self.field)
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if self.accept_int {
            Ok(Some(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if self.accept_int {
            Ok(Some(v.to_string()))
        } else {
            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
        }
    }
}

/// Deserializes `extra` into the slot: null clears it, an object merges into it (Go reuses an existing
/// map), string or null values only (null stores "", as Go does).
struct ExtraSeed<'a>(&'a mut Option<BTreeMap<String, String>>);

impl<'de> DeserializeSeed<'de> for ExtraSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExtraSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings or null for `extra`")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let extra = self.0.get_or_insert_with(BTreeMap::new);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrSeed {
                field: "extra",
                accept_int: false,
            })?;
            extra.insert(key, value.unwrap_or_default());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "codec_json_tests.rs"]
mod tests;
