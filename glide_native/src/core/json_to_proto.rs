//! JSON text to a protobuf `google.protobuf.Value`, written straight as bytes: the encode direction of
//! `data` in the protobuf envelope. Building a prost `Value` tree first would cost an allocation per
//! string, key and container, several times the work of the conversion itself.
//!
//! Numbers become doubles (integers beyond 2^53 round, by design: server-assigned `mid`s stay below it);
//! object members are written in JSON order, a repeated key twice (protobuf map semantics make the last
//! one win, as JSON decoders commonly do).

use super::envelope::{too_deep, EncodeError, MAX_DATA_DEPTH};
use super::json_scan::Reader;

/// `google.protobuf.Value` fields (oneof `kind`) and the one field of `Struct`/`ListValue`/map entries.
const NULL_VALUE: u8 = 1 << 3; // varint
const NUMBER_VALUE: u8 = (2 << 3) | 1; // fixed64
const STRING_VALUE: u8 = (3 << 3) | 2;
const BOOL_VALUE: u8 = 4 << 3; // varint
const STRUCT_VALUE: u8 = (5 << 3) | 2;
const LIST_VALUE: u8 = (6 << 3) | 2;
/// `Struct.fields` entries and `ListValue.values` are both field 1, length-delimited; so is a map entry's
/// key, and its value is field 2.
const FIELD_1: u8 = (1 << 3) | 2;
const FIELD_2: u8 = (2 << 3) | 2;

/// Append the encoded fields of one `google.protobuf.Value` for the JSON text `json` (the message body,
/// without a tag or length). Nesting deeper than [`MAX_DATA_DEPTH`] is refused (deeper payloads exceed the
/// recursion limits of protobuf decoders on the receiving side), and so are numbers beyond the double
/// range. Lone UTF-16 surrogate escapes become U+FFFD, as Go's decoder does. On error `out` may hold a
/// partial encoding: callers encode into a buffer they discard on failure.
pub fn encode_json_as_value(json: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut r = Reader::new(json);
    let result = value(&mut r, 0, out).and_then(|()| {
        r.skip_ws();
        if r.rest().is_empty() {
            Ok(())
        } else {
            Err(r.unexpected("trailing characters"))
        }
    });
    result.map_err(|e| EncodeError::new(format!("data cannot be encoded as protobuf: {e}")))
}

/// Append a length-delimited field: tag, length, then whatever `body` writes. The length is not known
/// in advance, so one byte is reserved (enough below 128) and the body moved if the varint needs more.
fn delimited<F>(tag: u8, out: &mut Vec<u8>, body: F) -> Result<(), String>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), String>,
{
    out.push(tag);
    let at = out.len();
    out.push(0);
    body(out)?;
    let len = out.len() - at - 1;
    if let (Ok(byte @ 0..=0x7F), Some(slot)) = (u8::try_from(len), out.get_mut(at)) {
        *slot = byte;
    } else {
        let mut varint = [0u8; 10];
        let n = write_varint(len as u64, &mut varint);
        out.splice(at..at + 1, varint.iter().take(n).copied());
    }
    Ok(())
}

fn write_varint(mut v: u64, buf: &mut [u8; 10]) -> usize {
    let mut n = 0;
    for slot in buf.iter_mut() {
        n += 1;
        if v < 0x80 {
            *slot = v as u8;
            break;
        }
        *slot = (v as u8 & 0x7F) | 0x80;
        v >>= 7;
    }
    n
}

fn put_bytes(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let mut varint = [0u8; 10];
    let n = write_varint(bytes.len() as u64, &mut varint);
    out.extend_from_slice(varint.get(..n).unwrap_or_default());
    out.extend_from_slice(bytes);
}

/// One value's fields, written as it is read; `depth` counts the arrays/objects around it (recursion is
/// bounded by [`MAX_DATA_DEPTH`]). Numbers are parsed here rather than by serde_json because serde_json
/// without its `float_roundtrip` feature may round long decimals to a neighbouring double (the payload
/// would drift on each JSON -> protobuf -> JSON trip); Rust's `f64` parsing is correctly rounded.
fn value(r: &mut Reader<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    r.skip_ws();
    match r.peek() {
        Some(b'n') => literal(r, "null", &[NULL_VALUE, 0], out),
        Some(b't') => literal(r, "true", &[BOOL_VALUE, 1], out),
        Some(b'f') => literal(r, "false", &[BOOL_VALUE, 0], out),
        Some(b'"') => {
            put_bytes(STRING_VALUE, r.string()?.as_bytes(), out);
            Ok(())
        }
        Some(b'-' | b'0'..=b'9') => {
            let token = r.number()?;
            let n: f64 = token.parse().map_err(|_| r.error("invalid number"))?;
            if !n.is_finite() {
                return Err(r.error(&format!("number {token} out of the double range")));
            }
            out.push(NUMBER_VALUE);
            out.extend_from_slice(&n.to_le_bytes());
            Ok(())
        }
        Some(b'[') => {
            let depth = enter(r, depth)?;
            delimited(LIST_VALUE, out, |out| list(r, depth, out))
        }
        Some(b'{') => {
            let depth = enter(r, depth)?;
            delimited(STRUCT_VALUE, out, |out| object(r, depth, out))
        }
        _ => Err(r.unexpected("expected a value")),
    }
}

/// Step into an array/object at `depth`, returning the depth of its elements.
fn enter(r: &mut Reader<'_>, depth: usize) -> Result<usize, String> {
    if depth >= MAX_DATA_DEPTH {
        return Err(too_deep("data"));
    }
    r.advance(1);
    Ok(depth + 1)
}

fn literal(r: &mut Reader<'_>, word: &str, encoded: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    r.literal(word)?;
    out.extend_from_slice(encoded);
    Ok(())
}

/// `ListValue` fields for the elements after `[`.
fn list(r: &mut Reader<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    r.skip_ws();
    if r.peek() == Some(b']') {
        r.advance(1);
        return Ok(());
    }
    loop {
        delimited(FIELD_1, out, |out| value(r, depth, out))?;
        r.skip_ws();
        match r.peek() {
            Some(b',') => r.advance(1),
            Some(b']') => {
                r.advance(1);
                return Ok(());
            }
            _ => return Err(r.unexpected("expected `,` or `]`")),
        }
    }
}

/// `Struct` fields (map entries) for the members after `{`.
fn object(r: &mut Reader<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    r.skip_ws();
    if r.peek() == Some(b'}') {
        r.advance(1);
        return Ok(());
    }
    loop {
        delimited(FIELD_1, out, |out| {
            r.skip_ws();
            if r.peek() != Some(b'"') {
                return Err(r.unexpected("expected a key"));
            }
            put_bytes(FIELD_1, r.string()?.as_bytes(), out);
            r.expect(b':')?;
            delimited(FIELD_2, out, |out| value(r, depth, out))
        })?;
        r.skip_ws();
        match r.peek() {
            Some(b',') => r.advance(1),
            Some(b'}') => {
                r.advance(1);
                return Ok(());
            }
            _ => return Err(r.unexpected("expected `,` or `}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_types::value::Kind;
    use prost_types::{ListValue, Struct, Value};

    fn encode(json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_json_as_value(json, &mut out).unwrap();
        out
    }

    fn kind(kind: Kind) -> Value {
        Value { kind: Some(kind) }
    }

    #[test]
    fn bytes_match_prost_for_canonical_input() {
        // With keys already sorted and unique, the streamed bytes are exactly prost's.
        let cases = [
            ("null", kind(Kind::NullValue(0))),
            ("true", kind(Kind::BoolValue(true))),
            ("false", kind(Kind::BoolValue(false))),
            ("-1.5", kind(Kind::NumberValue(-1.5))),
            ("0", kind(Kind::NumberValue(0.0))),
            ("\"\"", kind(Kind::StringValue(String::new()))),
            ("\"a\\u00e9\\n\"", kind(Kind::StringValue("aé\n".into()))),
            ("[]", kind(Kind::ListValue(ListValue::default()))),
            ("{}", kind(Kind::StructValue(Struct::default()))),
            (
                r#"{"a":[1,"x",null],"b":{"c":true}}"#,
                kind(Kind::StructValue(Struct {
                    fields: [
                        (
                            "a".to_owned(),
                            kind(Kind::ListValue(ListValue {
                                values: vec![
                                    kind(Kind::NumberValue(1.0)),
                                    kind(Kind::StringValue("x".into())),
                                    kind(Kind::NullValue(0)),
                                ],
                            })),
                        ),
                        (
                            "b".to_owned(),
                            kind(Kind::StructValue(Struct {
                                fields: [("c".to_owned(), kind(Kind::BoolValue(true)))].into(),
                            })),
                        ),
                    ]
                    .into(),
                })),
            ),
        ];
        for (json, value) in cases {
            assert_eq!(encode(json), value.encode_to_vec(), "{json}");
        }
    }

    #[test]
    fn long_bodies_get_multi_byte_lengths() {
        for n in [126, 127, 128, 300, 20_000] {
            let json = format!("[\"{}\",{{\"k\":\"{}\"}}]", "x".repeat(n), "y".repeat(n));
            let v = Value::decode(encode(&json).as_slice()).unwrap();
            let Some(Kind::ListValue(list)) = v.kind else {
                panic!("not a list")
            };
            assert_eq!(list.values.len(), 2);
            assert_eq!(list.values[0].kind, Some(Kind::StringValue("x".repeat(n))));
        }
    }

    #[test]
    fn repeated_keys_are_written_and_the_last_wins_on_decode() {
        let v = Value::decode(encode(r#"{"a":1,"b":2,"a":3}"#).as_slice()).unwrap();
        let Some(Kind::StructValue(s)) = v.kind else {
            panic!("not a struct")
        };
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields["a"].kind, Some(Kind::NumberValue(3.0)));
    }

    #[test]
    fn malformed_or_unrepresentable_text_errors() {
        // Malformed text never arrives through an Envelope (RawValue is validated), but still errors.
        let bad = [
            "",
            "nul",
            "[1,",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":1,}",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u+123\"",
            "1 2",
            "-",
            "1e400",
            "-1e400",
        ];
        for json in bad {
            let mut out = Vec::new();
            assert!(encode_json_as_value(json, &mut out).is_err(), "{json:?}");
        }
        let mut out = Vec::new();
        let e = encode_json_as_value("[1e999]", &mut out).unwrap_err();
        assert!(e.message().contains("out of the double range"), "{e}");
        let deep = format!("{}{}", "[".repeat(MAX_DATA_DEPTH + 1), "]".repeat(MAX_DATA_DEPTH + 1));
        let e = encode_json_as_value(&deep, &mut out).unwrap_err();
        assert!(e.message().contains("nested deeper than 32"), "{e}");
        assert!(encode_json_as_value(&"[".repeat(1_000_000), &mut out).is_err());
    }
}
