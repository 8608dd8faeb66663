//! A minimal JSON tokenizer over UTF-8 text, shared by the envelope decoder and the JSON -> protobuf
//! converter. It validates what it reads as RFC 8259 requires (escapes, control characters, number
//! grammar) and decodes strings the way Go does (a lone UTF-16 surrogate escape becomes U+FFFD).
//!
//! Errors are plain messages with the byte offset; callers wrap them in their own error type.

use std::borrow::Cow;

/// Bytes that end the plain run of a JSON string: the closing quote, an escape, or a control character
/// (which JSON forbids unescaped).
const fn string_stop_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}

static STRING_STOP: [bool; 256] = string_stop_table();

/// Index of the first byte at or after `i` that ends a plain string run (see [`STRING_STOP`]), or
/// `bytes.len()`. Eight bytes at a time: strings are scanned for every key and value, so this is the
/// tokenizer's hottest loop.
fn plain_run_end(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Marks (in each byte's high bit) the bytes of `v` that are below `n` (n <= 0x80). Borrows can only
    // create false marks above a true one, so the lowest mark is exact.
    let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let hits = below(x, 0x20) | below(x ^ (ONES * 0x22), 1) | below(x ^ (ONES * 0x5C), 1);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| !STRING_STOP[usize::from(b)]) {
        i += 1;
    }
    i
}

/// A cursor over JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    /// Byte offset of the next unread byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The unread text.
    pub(crate) fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// Move forward `n` bytes (callers only skip over text they have inspected).
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.text.len());
    }

    /// `what` followed by the current byte offset.
    pub(crate) fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    pub(crate) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skip whitespace, then consume `byte` or fail.
    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected `{}`", char::from(byte))))
        }
    }

    /// `what`, naming the byte actually found (or the end of input).
    pub(crate) fn unexpected(&self, what: &str) -> String {
        match self.rest().chars().next() {
            None => self.error(&format!("{what}, found the end of input")),
            Some(c) => self.error(&format!("{what}, found {c:?}")),
        }
    }

    /// Consume the literal `word` (`null`, `true`, `false`).
    pub(crate) fn literal(&mut self, word: &str) -> Result<(), String> {
        if self.rest().starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Consume a number and return its text, checking the JSON grammar
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    pub(crate) fn number(&mut self) -> Result<&'a str, String> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let int_digits = digits(&mut i);
        let mut ok = int_digits > 0 && (int_digits == 1 || bytes.get(int_start) != Some(&b'0'));
        if ok && bytes.get(i) == Some(&b'.') {
            i += 1;
            ok = digits(&mut i) > 0;
        }
        if ok && matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            ok = digits(&mut i) > 0;
        }
        // A number running straight into more number-like bytes (`01`, `1.`, `1e`, `1.2.3`) is malformed.
        if !ok || matches!(bytes.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
            self.pos = i;
            return Err(self.error("invalid number"));
        }
        self.pos = i;
        Ok(self.text.get(start..i).unwrap_or_default())
    }

    /// Consume a string (the reader must be at its opening quote) and return it unescaped; borrowed when
    /// it holds no escapes.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let i = plain_run_end(bytes, start);
        self.pos = i;
        match bytes.get(i) {
            Some(b'"') => {
                self.pos += 1;
                // Stops are ASCII, so both ends are char boundaries.
                Ok(Cow::Borrowed(self.text.get(start..i).unwrap_or_default()))
            }
            Some(b'\\') => {
                let mut owned = String::from(self.text.get(start..i).unwrap_or_default());
                self.finish_escaped(&mut owned)?;
                Ok(Cow::Owned(owned))
            }
            Some(_) => Err(self.error("control character in string")),
            None => Err(self.error("unterminated string")),
        }
    }

    /// Continue a string at a backslash, appending to `out` through the closing quote.
    fn finish_escaped(&mut self, out: &mut String) -> Result<(), String> {
        let bytes = self.text.as_bytes();
        loop {
            match self.bump() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => {
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
                        Some(_) => {
                            // Point at the offending character, not past it.
                            self.pos -= 1;
                            return Err(self.error("invalid escape"));
                        }
                        None => return Err(self.error("invalid escape")),
                    };
                    out.push(c);
                }
                Some(b) if b < 0x20 => return Err(self.error("control character in string")),
                Some(_) => {
                    // Copy the plain run that starts here in one go.
                    let start = self.pos - 1;
                    let i = plain_run_end(bytes, self.pos);
                    out.push_str(self.text.get(start..i).unwrap_or_default());
                    self.pos = i;
                }
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let unit = self.hex4()?;
        if (0xD800..0xDC00).contains(&unit) {
            let after = self.pos;
            if self.rest().starts_with("\\u") {
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

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or_default();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\u escape"));
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(json: &str) -> Result<String, String> {
        let mut r = Reader::new(json);
        let s = r.string()?.into_owned();
        assert_eq!(r.pos(), json.len(), "{json:?} not fully consumed");
        Ok(s)
    }

    fn number(json: &str) -> Result<&str, String> {
        let mut r = Reader::new(json);
        let n = r.number()?;
        assert!(r.rest().is_empty());
        Ok(n)
    }

    #[test]
    fn strings() {
        assert_eq!(string(r#""""#).unwrap(), "");
        assert_eq!(string(r#""plain é中😀""#).unwrap(), "plain é中😀");
        assert_eq!(
            string(r#""a\"b\\c\/d\b\f\n\r\t""#).unwrap(),
            "a\"b\\c/d\u{8}\u{c}\n\r\t"
        );
        assert_eq!(string(r#""x\u00e9\u4E2D\ud83d\ude00y""#).unwrap(), "xé中😀y");
        // Go's handling of broken surrogates: each bad unit becomes U+FFFD, nothing is dropped.
        assert_eq!(string(r#""\ud800""#).unwrap(), "\u{fffd}");
        assert_eq!(string(r#""\udc00x""#).unwrap(), "\u{fffd}x");
        assert_eq!(string(r#""\ud800\u0041""#).unwrap(), "\u{fffd}A");
        assert_eq!(string(r#""\ud800\ud800\udc00""#).unwrap(), "\u{fffd}\u{10000}");
        assert_eq!(string(r#""\u0000""#).unwrap(), "\u{0}");
        let mut r = Reader::new(r#""no escapes" tail"#);
        assert!(matches!(r.string().unwrap(), Cow::Borrowed("no escapes")));
        assert_eq!(r.rest(), " tail");
    }

    #[test]
    fn plain_runs_stop_at_the_first_special_byte() {
        // Every position of every stop byte, inside and after the 8-byte chunks, among neighbours that
        // are near misses for the bit tricks (0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xFF).
        let fillers = [b'a', 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xFF];
        for len in 0..20 {
            for &filler in &fillers {
                let plain = vec![filler; len];
                assert_eq!(plain_run_end(&plain, 0), len);
                for stop in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                    for at in 0..len {
                        let mut bytes = plain.clone();
                        bytes[at] = stop;
                        // A second stop later must not mask the first.
                        if at + 3 < len {
                            bytes[at + 3] = b'"';
                        }
                        assert_eq!(plain_run_end(&bytes, 0), at, "{bytes:?}");
                        assert_eq!(plain_run_end(&bytes, at), at);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_strings() {
        for (json, want) in [
            ("\"abc", "unterminated string at byte 4"),
            ("\"a\\", "invalid escape at byte 3"),
            ("\"a\\\"", "unterminated string at byte 4"),
            ("\"a\\x\"", "invalid escape at byte 3"),
            ("\"\\u12\"", "invalid \\u escape at byte 3"),
            ("\"\\u+123\"", "invalid \\u escape at byte 3"),
            ("\"\\u12", "invalid \\u escape at byte 3"),
            ("\"a\nb\"", "control character in string at byte 2"),
            ("\"\\n\u{1f}\"", "control character in string at byte 4"),
            ("\"\\n\tx\"", "control character in string at byte 4"),
        ] {
            assert_eq!(string(json).unwrap_err(), want, "{json:?}");
        }
    }

    #[test]
    fn numbers() {
        for ok in [
            "0",
            "-0",
            "1",
            "-12",
            "1.5",
            "0.25",
            "1e5",
            "1E+5",
            "-1.5e-7",
            "123456789012345678901234567890",
        ] {
            assert_eq!(number(ok).unwrap(), ok);
        }
        for bad in [
            "-", "01", "-01", "1.", ".5", "+1", "1e", "1e+", "1.2.3", "1ee5", "--1", "1-2",
        ] {
            assert!(Reader::new(bad).number().is_err(), "{bad}");
        }
        let mut r = Reader::new("12,");
        assert_eq!(r.number().unwrap(), "12");
        assert_eq!(r.peek(), Some(b','));
    }

    #[test]
    fn punctuation() {
        let mut r = Reader::new("  :x");
        r.expect(b':').unwrap();
        assert_eq!(r.expect(b',').unwrap_err(), "expected `,`, found 'x' at byte 3");
        let mut r = Reader::new("");
        assert_eq!(
            r.expect(b'{').unwrap_err(),
            "expected `{`, found the end of input at byte 0"
        );
        let mut r = Reader::new("nul");
        assert!(r.literal("null").is_err());
        let mut r = Reader::new("true,");
        r.literal("true").unwrap();
        assert_eq!(r.rest(), ",");
    }
}
