//! Conversion between JSON text and `google.protobuf.Value`, the form `data` takes in the protobuf
//! envelope, so a JSON client and a protobuf client see the same payload.
//!
//! Numbers: a `Value` number is a double. Integers convert exactly up to 2^53 in magnitude; larger ones
//! round to the nearest double (server-assigned `mid`s are designed to stay below 2^53 for this reason).
//! Integral doubles up to 2^53 are written back without a fractional part, so `1783` survives a round
//! trip as `1783`. Object keys come back sorted (a protobuf `Struct` is a map); a key repeated inside one
//! JSON object keeps its last value.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use super::envelope::{too_deep, DecodeError, EncodeError, MAX_DATA_DEPTH};
use super::json_escape::{write_f64, write_str};

/// Parse JSON text into a `Value`, refusing nesting deeper than [`MAX_DATA_DEPTH`] (deeper payloads
/// would exceed the recursion limits of protobuf decoders on the receiving side) and numbers beyond the
/// double range. Lone UTF-16 surrogate escapes become U+FFFD, as Go's decoder does.
pub fn json_to_value(json: &str) -> Result<Value, EncodeError> {
    let mut parser = Parser { text: json, pos: 0 };
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != json.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

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

/// A small recursive-descent JSON parser producing `Value`s directly. It exists (instead of serde_json)
/// because serde_json without its `float_roundtrip` feature may round long decimals to a neighbouring
/// double, which would make a payload drift on each JSON -> protobuf -> JSON trip; Rust's `f64` parsing
/// is correctly rounded. Recursion is bounded by [`MAX_DATA_DEPTH`].
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

fn kind(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

impl Parser<'_> {
    fn error(&self, what: &str) -> EncodeError {
        EncodeError::new(format!(
            "data cannot be encoded as protobuf: {what} at byte {}",
            self.pos
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), EncodeError> {
        self.skip_ws();
        if self.bump() == Some(byte) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(byte))))
        }
    }

    /// One value; `depth` counts the arrays/objects around it.
    fn value(&mut self, depth: usize) -> Result<Value, EncodeError> {
        self.skip_ws();
        match self.peek() {
            Some(b'n') => self.literal("null", Kind::NullValue(0)),
            Some(b't') => self.literal("true", Kind::BoolValue(true)),
            Some(b'f') => self.literal("false", Kind::BoolValue(false)),
            Some(b'"') => Ok(kind(Kind::StringValue(self.string()?))),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                let depth = self.enter(depth)?;
                let mut values = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        values.push(self.value(depth)?);
                        self.skip_ws();
                        match self.bump() {
                            Some(b',') => {}
                            Some(b']') => break,
                            _ => return Err(self.error("expected `,` or `]`")),
                        }
                    }
                }
                Ok(kind(Kind::ListValue(ListValue { values })))
            }
            Some(b'{') => {
                let depth = self.enter(depth)?;
                let mut fields = std::collections::BTreeMap::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        if self.peek() != Some(b'"') {
                            return Err(self.error("expected a key"));
                        }
                        let key = self.string()?;
                        self.expect(b':')?;
                        // A repeated key keeps its last value, as JSON decoders commonly do.
                        fields.insert(key, self.value(depth)?);
                        self.skip_ws();
                        match self.bump() {
                            Some(b',') => {}
                            Some(b'}') => break,
                            _ => return Err(self.error("expected `,` or `}`")),
                        }
                    }
                }
                Ok(kind(Kind::StructValue(Struct { fields })))
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// Step into an array/object at `depth`, returning the depth of its elements.
    fn enter(&mut self, depth: usize) -> Result<usize, EncodeError> {
        if depth >= MAX_DATA_DEPTH {
            return Err(EncodeError::new(too_deep("data")));
        }
        self.pos += 1;
        Ok(depth + 1)
    }

    fn literal(&mut self, word: &str, k: Kind) -> Result<Value, EncodeError> {
        if self.text.get(self.pos..).is_some_and(|rest| rest.starts_with(word)) {
            self.pos += word.len();
            Ok(kind(k))
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Value, EncodeError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.pos += 1;
        }
        let token = self.text.get(start..self.pos).unwrap_or_default();
        // Integers beyond 2^53 round here, by design (see the module doc).
        let n: f64 = token.parse().map_err(|_| self.error("invalid number"))?;
        if !n.is_finite() {
            return Err(self.error(&format!("number {token} out of the double range")));
        }
        Ok(kind(Kind::NumberValue(n)))
    }

    /// A string starting at its opening quote, unescaped.
    fn string(&mut self) -> Result<String, EncodeError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.pos..).unwrap_or_default();
            let Some(i) = memchr::memchr2(b'"', b'\\', rest.as_bytes()) else {
                return Err(self.error("unterminated string"));
            };
            // `"` and `\` are ASCII, so `i` is a char boundary.
            out.push_str(rest.get(..i).unwrap_or_default());
            self.pos += i + 1;
            if rest.as_bytes().get(i) == Some(&b'"') {
                return Ok(out);
            }
            let c = match self.bump() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => self.unicode_escape()?,
                _ => return Err(self.error("invalid escape")),
            };
            out.push(c);
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, EncodeError> {
        let unit = self.hex4()?;
        if (0xD800..0xDC00).contains(&unit) {
            let after = self.pos;
            if self.text.get(self.pos..).is_some_and(|r| r.starts_with("\\u")) {
                self.pos += 2;
                let low = self.hex4()?;
                if (0xDC00..0xE000).contains(&low) {
                    let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                // Not a pair: the second escape is read on its own next time.
                self.pos = after;
            }
        }
        Ok(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex4(&mut self) -> Result<u32, EncodeError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("short \\u escape"))?;
        let unit = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(json: &str) -> String {
        let v = json_to_value(json).unwrap();
        let mut out = Vec::new();
        value_to_json(&v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
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
