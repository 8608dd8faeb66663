//! The fields of the two requests every chat message brings (`message.chat` and the receiver's
//! `ack.request`), read straight from `data`'s JSON text when the request has the plain shape.
//!
//! Everything else gives `None` and the caller takes its general path (`glide.chat.payload`), which reads
//! the same request into the same fields or answers it with the precise error. That path stays the
//! reference: this one only skips building a Python dict of `data` and looking keys up in it, so it accepts
//! nothing the general path would read differently. "Differently" covers GlideIM's case-insensitive keys:
//! a key that matches a field only when case is ignored sends the request to the general path.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A `message.chat` request's fields, as `glide.chat.payload.parse_chat` reads them.
#[derive(Debug, PartialEq, Eq)]
pub struct Chat<'a> {
    pub receiver: i64,
    pub cli_mid: Cow<'a, str>,
    pub content: Cow<'a, str>,
    pub kind: i64,
    /// 0 when absent (or given as 0): the server's clock then.
    pub send_at: i64,
}

/// The most characters a `cliMid` may have (`glide.chat.payload.MAX_CLI_MID`).
pub const MAX_CLI_MID: usize = 64;

/// The plain `message.chat`: `to` (a positive user id) in the envelope or in `data`, `content` a string,
/// `cliMid` a string of at most [`MAX_CLI_MID`] characters or absent, `type` and `sendAt` 64-bit integers
/// or absent. `envelope_to` is the envelope's own `to` ("" when it has none).
pub fn chat<'a>(envelope_to: &str, data: &'a str) -> Option<Chat<'a>> {
    let [to, content, cli_mid, kind, send_at] = scan(data, ["to", "content", "cliMid", "type", "sendAt"])?;
    let receiver = if envelope_to.is_empty() {
        match to? {
            Scalar::Int(uid) => Some(uid),
            Scalar::Str(text) => uid_text(&text),
            Scalar::Null | Scalar::Other => None,
        }
    } else {
        uid_text(envelope_to)
    }
    .filter(|&uid| uid > 0)?;
    let Scalar::Str(content) = content? else {
        return None;
    };
    let cli_mid = match cli_mid {
        None | Some(Scalar::Null) => Cow::Borrowed(""),
        Some(Scalar::Str(text)) if text.chars().count() <= MAX_CLI_MID => text,
        Some(_) => return None,
    };
    Some(Chat {
        receiver,
        cli_mid,
        content,
        kind: int_or(kind, 1)?,
        send_at: int_or(send_at, 0)?,
    })
}

/// The plain `ack.request` (and every request naming a message by id): `mid` a positive 64-bit integer,
/// with the `cliMid` given beside it ("" when absent or not a string).
pub fn mid_ref(data: &str) -> Option<(i64, Cow<'_, str>)> {
    let [mid, cli_mid] = scan(data, ["mid", "cliMid"])?;
    let Some(Scalar::Int(mid)) = mid else {
        return None;
    };
    if mid <= 0 {
        return None;
    }
    let cli_mid = match cli_mid {
        Some(Scalar::Str(text)) => text,
        _ => Cow::Borrowed(""),
    };
    Some((mid, cli_mid))
}

/// A user id as text, as `parse_uid` takes it: ASCII digits only, at most 19 of them, below 2^63.
fn uid_text(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An optional integer field: absent or `null` is `default`, any other type is not the plain shape.
fn int_or(value: Option<Scalar<'_>>, default: i64) -> Option<i64> {
    match value {
        None | Some(Scalar::Null) => Some(default),
        Some(Scalar::Int(v)) => Some(v),
        Some(_) => None,
    }
}

/// A value as far as the plain shapes care.
#[derive(Debug, PartialEq, Eq)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    /// An integer that fits 64 bits signed.
    Int(i64),
    Null,
    /// Anything else: a bool, a float, a bigger integer, an object or an array.
    Other,
}

/// The last value of each of `names` in a JSON object (later duplicates win, as in Python's `json`), or
/// `None` when the text is not an object, does not parse, or has a key equal to one of `names` only when
/// case is ignored (Python's `str.lower`, which for keys that could equal an ASCII name is Unicode's
/// simple lowercase: Rust's `to_lowercase` gives the same).
fn scan<'a, const N: usize>(data: &'a str, names: [&'static str; N]) -> Option<[Option<Scalar<'a>>; N]> {
    let mut de = serde_json::Deserializer::from_str(data);
    let found = de.deserialize_map(Fields { names }).ok()?;
    de.end().ok()?;
    found
}

struct Fields<const N: usize> {
    names: [&'static str; N],
}

impl<'de, const N: usize> Visitor<'de> for Fields<N> {
    /// `None`: a near-miss key was seen (the rest is still read, so that the text is checked whole).
    type Value = Option<[Option<Scalar<'de>>; N]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: [Option<Scalar<'de>>; N] = std::array::from_fn(|_| None);
        let mut near_miss = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.names.iter().position(|&name| name == key) {
                Some(index) => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    if let Some(slot) = found.get_mut(index) {
                        *slot = Some(value);
                    }
                }
                None => {
                    near_miss |= self.names.iter().any(|name| same_ignoring_case(&key, name));
                    map.next_value_seed(Checked)?;
                }
            }
        }
        Ok((!near_miss).then_some(found))
    }
}

fn same_ignoring_case(key: &str, name: &str) -> bool {
    if key.is_ascii() {
        key.eq_ignore_ascii_case(name)
    } else {
        key.to_lowercase() == name.to_ascii_lowercase()
    }
}

/// An object key, borrowed from the text unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::Other, Scalar::Int))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Checked.visit_map(map).map(|()| Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Checked.visit_seq(seq).map(|()| Scalar::Other)
    }
}

/// A value read only to be checked: every string unescaped and every number parsed, so that text Python's
/// reading of `data` refuses (a lone surrogate escape, a number past the double range) fails here too, in a
/// value the plain shapes do not use as much as in one they do. (serde's `IgnoredAny` skips both unread.)
#[derive(Clone, Copy)]
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Checked)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
#[path = "request_fields_tests.rs"]
mod tests;
