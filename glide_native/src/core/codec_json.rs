//! JSON codec for [`Envelope`], compatible with GlideIM's Go server (`encoding/json`).
//!
//! Decoding follows Go's rules for the envelope struct: keys match case-insensitively (including Go's
//! Unicode folds `K`/U+212A and `s`/U+017F), unknown keys are ignored, a repeated key overrides the
//! earlier one, `null` leaves a scalar field unchanged, and objects for `extra` merge into an earlier
//! one; a lone UTF-16 surrogate escape in a string field becomes U+FFFD. Deliberate differences:
//! `action` is required and must be a string, Gen-1 integer uids are accepted for `from`/`to`,
//! `data: null` is kept (as the text `null`) instead of dropped, invalid UTF-8 is an error rather than
//! replaced, and `data` (or an ignored value) deeper than [`MAX_DATA_DEPTH`] is refused.
//!
//! Encoding writes Go's exact bytes, except that `data` is copied as stored where Go would
//! additionally strip insignificant whitespace and HTML-escape it (same JSON value either way).
//!
//! [`MAX_DATA_DEPTH`]: super::envelope::MAX_DATA_DEPTH

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::envelope::{too_deep, within_depth, DecodeError, Envelope};
use super::json_escape::{write_i64, write_str};
use super::json_scan::Reader;

/// Decode one JSON envelope from bytes (validated as UTF-8 first).
pub fn decode(input: &[u8]) -> Result<Envelope, DecodeError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| DecodeError::new(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    decode_str(text)
}

/// Decode one JSON envelope from text already known to be UTF-8 (e.g. a WebSocket text frame, which
/// the frame parser has validated), skipping a second validation.
pub fn decode_str(text: &str) -> Result<Envelope, DecodeError> {
    decode_envelope(text).map_err(DecodeError::new)
}

/// The envelope object is walked by hand (keys and scalar fields are a few bytes each, where a generic
/// deserializer's per-field overhead dominates); `data` and unknown values, which can be any JSON, are
/// validated and delimited by serde_json and kept as borrowed raw text.
fn decode_envelope(text: &str) -> Result<Envelope, String> {
    let mut r = Reader::new(text);
    r.skip_ws();
    if r.peek() != Some(b'{') {
        return Err(r.unexpected("expected a JSON object envelope"));
    }
    r.advance(1);
    let mut env = Envelope::default();
    let mut has_action = false;
    r.skip_ws();
    if r.peek() == Some(b'}') {
        r.advance(1);
    } else {
        loop {
            r.skip_ws();
            if r.peek() != Some(b'"') {
                return Err(r.unexpected("expected a key"));
            }
            let key = r.string()?;
            r.expect(b':')?;
            r.skip_ws();
            match field_of(&key) {
                Field::Ver => env.ver = int_field(&mut r, "ver", env.ver)?,
                Field::Seq => env.seq = int_field(&mut r, "seq", env.seq)?,
                Field::Action => {
                    env.action = str_field(&mut r, "action", false)?
                        .ok_or_else(|| r.error("action: expected a string, found null"))?;
                    has_action = true;
                }
                Field::From => set_opt(&mut env.from, str_field(&mut r, "from", true)?),
                Field::To => set_opt(&mut env.to, str_field(&mut r, "to", true)?),
                Field::Ticket => set_opt(&mut env.ticket, str_field(&mut r, "ticket", false)?),
                Field::Msg => drop(str_field(&mut r, "msg", false)?),
                Field::Sign => drop(str_field(&mut r, "sign", false)?),
                Field::Data => env.data = Some(raw_value(&mut r, "data")?.to_owned()),
                Field::Unknown => {
                    // Ignored, but still validated and bounded: no accepted frame nests deeper than
                    // data may.
                    raw_value(&mut r, "an unknown key's value")?;
                }
                Field::Extra => extra_field(&mut r, &mut env.extra)?,
            }
            r.skip_ws();
            match r.peek() {
                Some(b',') => r.advance(1),
                Some(b'}') => {
                    r.advance(1);
                    break;
                }
                _ => return Err(r.unexpected("expected `,` or `}`")),
            }
        }
    }
    r.skip_ws();
    if !r.rest().is_empty() {
        return Err(r.unexpected("trailing characters after the envelope"));
    }
    if !has_action {
        return Err("missing action".to_owned());
    }
    if env.extra.as_ref().is_some_and(BTreeMap::is_empty) {
        env.extra = None;
    }
    Ok(env)
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
/// type-checked as Go does, then dropped.
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

/// Go leaves a field untouched when the JSON value is `null`.
fn set_opt(slot: &mut String, value: Option<String>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// What kind of JSON value starts with `byte`, for error messages.
fn kind_of(byte: Option<u8>) -> &'static str {
    match byte {
        Some(b'"') => "a string",
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "an invalid value",
    }
}

/// An integer field with Go's rules: digits within i64 (no fraction, no exponent); `null` keeps
/// `current`; anything else is an error naming the field.
fn int_field(r: &mut Reader<'_>, field: &str, current: i64) -> Result<i64, String> {
    match r.peek() {
        Some(b'n') => {
            r.literal("null")?;
            Ok(current)
        }
        Some(b'-' | b'0'..=b'9') => {
            let at = r.pos();
            let token = r.number().map_err(|e| format!("{field}: {e}"))?;
            if token.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                return Err(format!(
                    "{field}: expected an integer, found the non-integer number {token} at byte {at}"
                ));
            }
            token
                .parse::<i64>()
                .map_err(|_| format!("{field}: integer {token} out of range at byte {at}"))
        }
        other => Err(r.error(&format!("{field}: expected an integer, found {}", kind_of(other)))),
    }
}

/// A string field: `Some(text)`, `None` for null, integers as decimal text only when `accept_int`
/// (Gen-1 integer uids, within i64/u64); anything else is an error naming the field.
fn str_field(r: &mut Reader<'_>, field: &str, accept_int: bool) -> Result<Option<String>, String> {
    match r.peek() {
        Some(b'"') => Ok(Some(r.string()?.into_owned())),
        Some(b'n') => {
            r.literal("null")?;
            Ok(None)
        }
        Some(b'-' | b'0'..=b'9') if accept_int => {
            let at = r.pos();
            let token = r.number().map_err(|e| format!("{field}: {e}"))?;
            let int = token
                .parse::<i64>()
                .map(|v| v.to_string())
                .or_else(|_| token.parse::<u64>().map(|v| v.to_string()));
            int.map(Some)
                .map_err(|_| format!("{field}: expected a string or an integer, found the number {token} at byte {at}"))
        }
        other => {
            let expected = if accept_int {
                "a string, an integer or null"
            } else {
                "a string or null"
            };
            Err(r.error(&format!("{field}: expected {expected}, found {}", kind_of(other))))
        }
    }
}

/// `extra`: null clears it, an object merges into it (Go reuses an existing map), string or null values
/// only (null stores "", as Go does).
fn extra_field(r: &mut Reader<'_>, slot: &mut Option<BTreeMap<String, String>>) -> Result<(), String> {
    match r.peek() {
        Some(b'n') => {
            r.literal("null")?;
            *slot = None;
            return Ok(());
        }
        Some(b'{') => r.advance(1),
        other => return Err(r.error(&format!("extra: expected an object or null, found {}", kind_of(other)))),
    }
    let extra = slot.get_or_insert_with(BTreeMap::new);
    r.skip_ws();
    if r.peek() == Some(b'}') {
        r.advance(1);
        return Ok(());
    }
    loop {
        r.skip_ws();
        if r.peek() != Some(b'"') {
            return Err(r.unexpected("extra: expected a key"));
        }
        let key = r.string()?.into_owned();
        r.expect(b':')?;
        r.skip_ws();
        let value = str_field(r, "extra", false)?;
        extra.insert(key, value.unwrap_or_default());
        r.skip_ws();
        match r.peek() {
            Some(b',') => r.advance(1),
            Some(b'}') => {
                r.advance(1);
                return Ok(());
            }
            _ => return Err(r.unexpected("extra: expected `,` or `}`")),
        }
    }
}

/// Any JSON value, validated by serde_json and returned as raw text borrowed from the input, refused if
/// nested deeper than [`MAX_DATA_DEPTH`](super::envelope::MAX_DATA_DEPTH).
fn raw_value<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a RawValue, String> {
    let start = r.pos();
    let rest = r.rest();
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<&'a RawValue>();
    let raw = match stream.next() {
        Some(Ok(raw)) => raw,
        Some(Err(e)) => return Err(serde_error(&e, rest, start, what)),
        None => return Err(r.unexpected(&format!("{what}: expected a value"))),
    };
    r.advance(stream.byte_offset());
    if !within_depth(raw.get()) {
        return Err(format!("{} at byte {start}", too_deep(what)));
    }
    Ok(raw)
}

/// Re-anchor a serde_json error (positioned by line and column within `rest`) to a byte offset in the
/// whole frame.
fn serde_error(e: &serde_json::Error, rest: &str, start: usize, what: &str) -> String {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text);
    let line_start = if e.line() <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', rest.as_bytes())
            .nth(e.line() - 2)
            .map_or(rest.len(), |i| i + 1)
    };
    let at = start + line_start + e.column().saturating_sub(1);
    format!("{what}: {message} at byte {at}")
}

#[cfg(test)]
#[path = "codec_json_tests.rs"]
mod tests;
