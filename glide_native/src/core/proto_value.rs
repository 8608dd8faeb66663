//! `google.protobuf.Value` to JSON text: the decode direction of `data` in the protobuf envelope (the
//! encode direction, which never builds a `Value` tree, is [`super::json_to_proto`]).
//!
//! Numbers: a `Value` number is a double. Integral doubles up to 2^53 are written without a fractional
//! part, so `1783` survives a JSON -> protobuf -> JSON trip as `1783`; integers beyond 2^53 were rounded
//! on the way in (server-assigned `mid`s are designed to stay below 2^53 for this reason). Object keys
//! come out sorted (a protobuf `Struct` is a map; of a key repeated on the wire the last value wins).

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use super::envelope::{too_deep, DecodeError, MAX_DATA_DEPTH};
use super::json_escape::{write_f64, write_str};

/// Append `value` to `out` as compact JSON text (strings escaped as Go does). NaN and infinities have no
/// JSON form and are errors, as is nesting deeper than [`MAX_DATA_DEPTH`]; a `Value` with no kind set is
/// read as `null`.
pub fn value_to_json(value: &Value, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    write_value(value, out, 0)
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), DecodeError> {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => out.extend_from_slice(b"null"),
        Some(Kind::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Kind::NumberValue(n)) => {
            if !write_f64(out, *n) {
                return Err(DecodeError::new(format!("data: the number {n} has no JSON form")));
            }
        }
        Some(Kind::StringValue(s)) => write_str(out, s),
        Some(Kind::StructValue(Struct { fields })) => {
            if depth >= MAX_DATA_DEPTH {
                return Err(DecodeError::new(too_deep("data")));
            }
            out.push(b'{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(v, out, depth + 1)?;
            }
            out.push(b'}');
        }
        Some(Kind::ListValue(ListValue { values })) => {
            if depth >= MAX_DATA_DEPTH {
                return Err(DecodeError::new(too_deep("data")));
            }
            out.push(b'[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out, depth + 1)?;
            }
            out.push(b']');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::envelope::EncodeError;
    use super::super::json_to_proto::encode_json_as_value;
    use super::*;

    fn kind(kind: Kind) -> Value {
        Value { kind: Some(kind) }
    }

    /// JSON -> protobuf bytes (the encoder) -> prost `Value` -> JSON.
    fn round(json: &str) -> String {
        let v = json_to_value(json).unwrap();
        let mut out = Vec::new();
        value_to_json(&v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn json_to_value(json: &str) -> Result<Value, EncodeError> {
        let mut bytes = Vec::new();
        encode_json_as_value(json, &mut bytes)?;
        Ok(prost::Message::decode(bytes.as_slice()).unwrap())
    }

    #[test]
    fn json_round_trips_through_value() {
        assert_eq!(
            round(r#"{"mid":1783,"cliMid":"9F","b":true,"n":null,"l":[1.5,-0,"x<"]}"#),
            { r#"{"b":true,"cliMid":"9F","l":[1.5,0,"x\u003c"],"mid":1783,"n":null}"# }
        );
        assert_eq!(round(" [ ] "), "[]");
        assert_eq!(round("{}"), "{}");
        assert_eq!(round("\"\\u2028\""), r#""\u2028""#);
        assert_eq!(round(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
        assert_eq!(round("9007199254740992"), "9007199254740992");
        assert_eq!(round("-9007199254740993"), "-9007199254740992");
        assert_eq!(round("1690000000123456789"), "1690000000123456800");
        assert_eq!(round("1e2"), "100");
        assert_eq!(round("0.1"), "0.1");
        assert_eq!(round("18446744073709551615"), "18446744073709552000");
        assert_eq!(round("1e300"), "1e300");
        assert_eq!(round("1e-400"), "0");
        // Correctly rounded (as Python reads it); serde_json's default parser makes this ...105e23, whose
        // shortest form then reads back as a different double.
        assert_eq!(round("184467440737091033844674"), "1.8446744073709102e23");
        assert_eq!(round("1.8446744073709102e23"), "1.8446744073709102e23");
    }

    #[test]
    fn strings_unescape_like_go() {
        assert_eq!(
            round(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
            "\"a\\\"\\\\/\\b\\f\\n\\r\\té😀\""
        );
        // Lone surrogates become U+FFFD; a high surrogate followed by another escape keeps that escape.
        assert_eq!(
            round(r#"["\ud800","\udc00x","\ud800\u0041","\ud800\ud800\udc00"]"#),
            "[\"\u{fffd}\",\"\u{fffd}x\",\"\u{fffd}A\",\"\u{fffd}\u{10000}\"]"
        );
        assert_eq!(round(r#"{"\u0000k":"v"}"#), r#"{"\u0000k":"v"}"#);
    }

    #[test]
    fn depth_limit_both_ways() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(round(&nest(MAX_DATA_DEPTH)), nest(MAX_DATA_DEPTH));
        let e = json_to_value(&nest(MAX_DATA_DEPTH + 1)).unwrap_err();
        assert!(e.message().contains("nested deeper than 32"), "{e}");
        // Far past serde_json's own limit: still a clean error.
        assert!(json_to_value(&nest(100_000)).is_err());

        let mut v = kind(Kind::NumberValue(1.0));
        for _ in 0..=MAX_DATA_DEPTH {
            v = kind(Kind::StructValue(Struct {
                fields: [("a".to_owned(), v)].into(),
            }));
        }
        let mut out = Vec::new();
        assert!(value_to_json(&v, &mut out)
            .unwrap_err()
            .message()
            .contains("nested deeper"));
    }

    #[test]
    fn unrepresentable_values_error() {
        for bad in ["1e400", "-1e400", "[1e999]", "{\"a\":1e309}"] {
            let e = json_to_value(bad).unwrap_err();
            assert!(e.message().contains("out of the double range"), "{bad}: {e}");
        }
        // Malformed text never reaches here through an Envelope (RawValue is validated), but still errors.
        for bad in [
            "",
            "nul",
            "[1,",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "1 2",
            "+1",
            "-",
        ] {
            assert!(json_to_value(bad).is_err(), "{bad:?}");
        }
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut out = Vec::new();
            let v = kind(Kind::ListValue(ListValue {
                values: vec![kind(Kind::NumberValue(n))],
            }));
            assert!(value_to_json(&v, &mut out)
                .unwrap_err()
                .message()
                .contains("no JSON form"));
        }
        let mut out = Vec::new();
        value_to_json(&Value { kind: None }, &mut out).unwrap();
        value_to_json(&kind(Kind::NullValue(7)), &mut out).unwrap();
        assert_eq!(out, b"nullnull");
    }
}
