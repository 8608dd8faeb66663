//! JSON scalar writers that reproduce Go's `encoding/json` output byte for byte, so GlideIM clients
//! (and tests written against Go) see exactly what the Go server sent.

use std::io::Write as _;

/// Largest magnitude up to which every integer is an exact double (2^53).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Bytes that need a look before copying: controls, `"`, `\`, Go's HTML-safe set `<`, `>`, `&`, and
/// 0xE2, the lead byte of U+2028/U+2029 (which Go escapes because JavaScript treats them as newlines).
const fn special_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
}

static SPECIAL: [bool; 256] = special_table();

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a quoted JSON string escaped like Go's `json.Marshal` (HTML escaping on, Go >= 1.22):
/// `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other controls as `\u00xx`, `<` `>` `&` as `\u003c` `\u003e`
/// `\u0026`, U+2028/U+2029 as `\u2028`/`\u2029`; everything else verbatim (no other non-ASCII escaping).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Copy runs of plain bytes in one go; `start` is the first byte not yet copied.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !SPECIAL[b as usize] {
            continue;
        }
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            b'<' => b"\\u003c",
            b'>' => b"\\u003e",
            b'&' => b"\\u0026",
            0xE2 => match bytes.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) => b"\\u2028",
                Some([0x80, 0xA9]) => b"\\u2029",
                _ => continue,
            },
            _ => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
                start = i + 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        // U+2028/2029 are three bytes; the two continuation bytes are not special, so skipping past
        // them just means starting the next run after them.
        start = if b == 0xE2 { i + 3 } else { i + 1 };
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append the decimal form of `v`.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Append a finite double as a JSON number the way JavaScript prints it: integers up to 2^53 without a
/// fractional part (`1783`, not `1783.0`), other values in the shortest form that reads back to the same
/// double, in exponent notation outside [1e-6, 1e21). Returns false (writing nothing) for NaN/infinity,
/// which JSON cannot express.
pub fn write_f64(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER {
        // Exact: |v| <= 2^53 fits i64. Negative zero prints as 0, as in JavaScript.
        write_i64(out, v as i64);
        return true;
    }
    let abs = v.abs();
    // Writing into a Vec cannot fail.
    let _ = if (1e-6..1e21).contains(&abs) {
        write!(out, "{v}")
    } else {
        write!(out, "{v:e}")
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn go_escapes() {
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{1}"), r#""\u0000\u001f\u0001""#);
        assert_eq!(
            s("<a href=\"x\">&amp;</a>"),
            r#""\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e""#
        );
        assert_eq!(s("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        // Other characters with lead byte 0xE2 are copied verbatim.
        assert_eq!(s("€→\u{2027}\u{202a}"), "\"€→\u{2027}\u{202a}\"");
        assert_eq!(s("\u{7f}é中😀"), "\"\u{7f}é中😀\"");
        assert_eq!(s("\u{2028}"), r#""\u2028""#);
        assert_eq!(s("end\u{e2}"), "\"end\u{e2}\"");
    }

    #[test]
    fn escaped_strings_read_back() {
        for x in [
            "a\u{0}b",
            "\u{2028}\u{2029}",
            "<>&\"\\",
            "\u{1f}\u{7f}\u{80}\u{ffff}",
            "tab\there",
        ] {
            let back: String = serde_json::from_str(&s(x)).unwrap();
            assert_eq!(back, x);
        }
    }

    #[test]
    fn integers() {
        for v in [0, 1, -1, 9, 10, 1783, -1783, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_i64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    #[test]
    fn doubles() {
        let f = |v: f64| {
            let mut out = Vec::new();
            assert!(write_f64(&mut out, v));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(f(1783.0), "1783");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-2.5e-7), "-2.5e-7");
        assert_eq!(f(1e300), "1e300");
        assert_eq!(f(MAX_SAFE_INTEGER), "9007199254740992");
        assert_eq!(f(1.6900000001234568e18), "1690000000123456800");
        assert_eq!(f(1e21), "1e21");
        for v in [0.1, 1e300, 1.6900000001234568e18, 5e-324, f64::MAX, -123.456] {
            let back: f64 = serde_json::from_str(&f(v)).unwrap();
            assert_eq!(back, v);
        }
        let mut out = Vec::new();
        assert!(!write_f64(&mut out, f64::NAN));
        assert!(!write_f64(&mut out, f64::INFINITY));
        assert!(out.is_empty());
    }
}
