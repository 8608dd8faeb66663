//! Protobuf codec for [`Envelope`]: message `glide.v1.Envelope` of `proto/glide.proto`.
//!
//! `data` travels as a `google.protobuf.Value` (see [`super::json_to_proto`] and [`super::proto_value`] for
//! the number rules): an absent
//! field is `None`, a `Value` holding `null_value` is JSON `null`. proto3 cannot tell an empty `action`
//! from a missing one, so an empty action decodes as `""` (the server answers it as an unknown action).
//! Empty `extra` decodes as `None`, like the JSON codec.

use std::collections::BTreeMap;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, int64, key_len, WireType};
use prost::Message as _;
use prost_types::Value;
use serde_json::value::RawValue;

use super::envelope::{DecodeError, EncodeError, Envelope};
use super::json_to_proto::encode_json_as_value;
use super::proto_value::value_to_json;

/// The wire struct, field for field `glide.v1.Envelope` (written by hand: there is no protoc here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoEnvelope {
    /// Protocol version.
    #[prost(int64, tag = "1")]
    pub ver: i64,
    /// Client request sequence.
    #[prost(int64, tag = "2")]
    pub seq: i64,
    /// Action name.
    #[prost(string, tag = "3")]
    pub action: String,
    /// Sender uid.
    #[prost(string, tag = "4")]
    pub from: String,
    /// Target uid or channel id.
    #[prost(string, tag = "5")]
    pub to: String,
    /// Payload.
    #[prost(message, optional, tag = "6")]
    pub data: Option<Value>,
    /// Send ticket.
    #[prost(string, tag = "7")]
    pub ticket: String,
    /// Free-form string map.
    #[prost(btree_map = "string, string", tag = "8")]
    pub extra: BTreeMap<String, String>,
}

/// Decode one protobuf envelope. Truncated input, wrong wire types, invalid UTF-8 in strings, nesting
/// beyond prost's recursion limit and numbers JSON cannot express (NaN, infinities) are errors.
pub fn decode(input: &[u8]) -> Result<Envelope, DecodeError> {
    let msg = ProtoEnvelope::decode(input).map_err(|e| DecodeError::new(format!("invalid protobuf envelope: {e}")))?;
    // proto3 cannot tell an empty string from a missing one; every envelope names an action, as in JSON.
    if msg.action.is_empty() {
        return Err(DecodeError::new("missing action"));
    }
    let data = match &msg.data {
        None => None,
        Some(value) => {
            let mut text = Vec::with_capacity(64);
            value_to_json(value, &mut text)?;
            let text = String::from_utf8(text).map_err(|e| DecodeError::new(format!("data: {e}")))?;
            Some(RawValue::from_string(text).map_err(|e| DecodeError::new(format!("data: {e}")))?)
        }
    };
    Ok(Envelope {
        ver: msg.ver,
        seq: msg.seq,
        action: msg.action,
        from: msg.from,
        to: msg.to,
        data,
        ticket: msg.ticket,
        extra: if msg.extra.is_empty() { None } else { Some(msg.extra) },
    })
}

/// Append the protobuf encoding of `env` to `out`. Fails only when `data` has no `Value` form: a number
/// outside the double range, or nesting deeper than [`MAX_DATA_DEPTH`](super::envelope::MAX_DATA_DEPTH)
/// (possible only in an envelope whose `data` was set without [`raw_data`](super::envelope::raw_data)).
/// Nothing is appended on failure.
pub fn encode(env: &Envelope, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let prepared = Prepared::new(env)?;
    out.reserve(prepared.encoded_len());
    prepared.write(out);
    Ok(())
}

/// The protobuf encoding of `env` as a new vector.
pub fn encode_to_vec(env: &Envelope) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode(env, &mut out)?;
    Ok(out)
}

/// An envelope with its `data` already converted (to the encoded `Value` message body), so the exact
/// length is known before writing (the fan-out writes a length header first).
pub(crate) struct Prepared<'a> {
    env: &'a Envelope,
    data: Option<Vec<u8>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(env: &'a Envelope) -> Result<Self, EncodeError> {
        let data = match env.data.as_deref() {
            None => None,
            Some(raw) => {
                let mut value = Vec::with_capacity(raw.get().len() + 16);
                encode_json_as_value(raw.get(), &mut value)?;
                Some(value)
            }
        };
        Ok(Prepared { env, data })
    }

    /// Exact number of bytes [`Prepared::write`] appends.
    pub(crate) fn encoded_len(&self) -> usize {
        let env = self.env;
        let mut len = 0;
        if env.ver != 0 {
            len += int64::encoded_len(1, &env.ver);
        }
        if env.seq != 0 {
            len += int64::encoded_len(2, &env.seq);
        }
        len += str_len(3, &env.action) + str_len(4, &env.from) + str_len(5, &env.to);
        if let Some(data) = &self.data {
            len += key_len(6) + encoded_len_varint(data.len() as u64) + data.len();
        }
        len += str_len(7, &env.ticket);
        for (k, v) in env.extra.iter().flatten() {
            let entry = str_len(1, k) + str_len(2, v);
            len += key_len(8) + encoded_len_varint(entry as u64) + entry;
        }
        len
    }

    /// Append the encoding, fields in tag order and proto3 defaults omitted, as prost would.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let env = self.env;
        if env.ver != 0 {
            int64::encode(1, &env.ver, out);
        }
        if env.seq != 0 {
            int64::encode(2, &env.seq, out);
        }
        put_str(3, &env.action, out);
        put_str(4, &env.from, out);
        put_str(5, &env.to, out);
        if let Some(data) = &self.data {
            encode_key(6, WireType::LengthDelimited, out);
            encode_varint(data.len() as u64, out);
            out.extend_from_slice(data);
        }
        put_str(7, &env.ticket, out);
        for (k, v) in env.extra.iter().flatten() {
            encode_key(8, WireType::LengthDelimited, out);
            encode_varint((str_len(1, k) + str_len(2, v)) as u64, out);
            put_str(1, k, out);
            put_str(2, v, out);
        }
    }
}

/// Encoded size of a string field, 0 when empty (proto3 omits defaults).
fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_str(tag: u32, s: &str, out: &mut Vec<u8>) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
#[path = "codec_proto_tests.rs"]
mod tests;
