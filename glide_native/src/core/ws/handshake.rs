//! The HTTP/1.1 upgrade request (RFC 6455 §4.2.1), parsed incrementally and validated.
//!
//! [`RequestParser`] buffers at most `max_header_size` bytes until the blank line that ends the header
//! block, then validates the request in one pass. Bytes after the blank line (a pipelined first frame)
//! are never copied: the caller learns how many bytes of its last chunk the handshake consumed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use super::response::{http_error_response, switching_protocols};

/// The GUID the accept value is derived with (RFC 6455 §1.3).
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// A request has to start with this; anything else is rejected after its first differing byte.
const REQUEST_PREFIX: &[u8] = b"GET ";

/// The envelope codec a connection speaks, chosen through `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    /// `glide.json`: one JSON envelope per text frame (also the codec when nothing was negotiated).
    Json,
    /// `glide.proto`: one protobuf envelope per binary frame.
    Proto,
}

impl Subprotocol {
    /// The token on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Subprotocol::Json => "glide.json",
            Subprotocol::Proto => "glide.proto",
        }
    }

    /// Subprotocol tokens are compared case-sensitively (RFC 6455 §4.1).
    fn from_token(token: &[u8]) -> Option<Self> {
        match token {
            b"glide.json" => Some(Subprotocol::Json),
            b"glide.proto" => Some(Subprotocol::Proto),
            _ => None,
        }
    }
}

/// A validated upgrade request, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The request path, still percent-encoded, always starting with `/`.
    pub path: String,
    /// The query string after `?` (without it), still percent-encoded; `None` when there was no `?`.
    pub query: Option<String>,
    /// The subprotocol named in the 101 response; `None` when the client offered none we support.
    pub subprotocol: Option<Subprotocol>,
    /// The `Origin` header, when present (browsers send it; the caller may check it).
    pub origin: Option<String>,
    /// Every request header in order, names lowercased, values trimmed (non-UTF-8 bytes replaced).
    pub headers: Vec<(String, String)>,
}

impl Handshake {
    /// The codec to use: the negotiated subprotocol, JSON when none was negotiated.
    pub fn codec(&self) -> Subprotocol {
        self.subprotocol.unwrap_or(Subprotocol::Json)
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A rejected upgrade: the HTTP status to answer with and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeError {
    /// 400, 404 (wrong path), 426 (unsupported `Sec-WebSocket-Version`) or 431 (header block too large).
    pub status: u16,
    /// A short, human-readable reason; also the response body.
    pub reason: &'static str,
}

impl HandshakeError {
    fn bad(reason: &'static str) -> Self {
        HandshakeError { status: 400, reason }
    }

    /// The complete HTTP response to write before closing the transport.
    pub fn response(&self) -> Vec<u8> {
        http_error_response(self.status, self.reason)
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for HandshakeError {}

/// A completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeDone {
    /// What the client asked for.
    pub handshake: Handshake,
    /// The `101 Switching Protocols` response to write.
    pub response: Vec<u8>,
    /// How many bytes of the last fed chunk belonged to the request; the rest are frames.
    pub consumed: usize,
}

/// The `Sec-WebSocket-Accept` value for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    STANDARD.encode(sha.finalize())
}

/// Buffers an upgrade request until its header block is complete, then validates it.
#[derive(Debug, Clone)]
pub struct RequestParser {
    buf: Vec<u8>,
    max_header_size: usize,
    path: Option<String>,
}

impl RequestParser {
    /// A parser accepting header blocks of at most `max_header_size` bytes (blank line included) and,
    /// when `path` is set, only that request path (anything else gets a 404).
    pub fn new(max_header_size: usize, path: Option<String>) -> Self {
        RequestParser {
            buf: Vec::new(),
            max_header_size,
            path,
        }
    }

    /// Feed the next chunk. `Ok(None)` means the header block is not complete yet.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<HandshakeDone>, HandshakeError> {
        let old_len = self.buf.len();
        // Only bytes that can still belong to the header block are buffered, so the buffer never grows
        // past the cap whatever the chunk size.
        let room = self.max_header_size.saturating_sub(old_len);
        let take = data.len().min(room);
        self.buf.extend_from_slice(data.get(..take).unwrap_or_default());
        reject_non_get(&self.buf)?;
        // The terminator may straddle the previous chunk: back up three bytes, never rescan more.
        let from = old_len.saturating_sub(3);
        let tail = self.buf.get(from..).unwrap_or_default();
        let Some(at) = memchr::memmem::find(tail, b"\r\n\r\n") else {
            if self.buf.len() >= self.max_header_size {
                return Err(HandshakeError {
                    status: 431,
                    reason: "request header block too large",
                });
            }
            return Ok(None);
        };
        let end = from + at + 4;
        let block = self.buf.get(..end).unwrap_or_default();
        let (handshake, accept) = parse_request(block, self.path.as_deref())?;
        let response = switching_protocols(&accept, handshake.subprotocol);
        // The blank line ends in this chunk, so everything after it is in `data` too.
        let consumed = end.saturating_sub(old_len);
        self.buf = Vec::new();
        Ok(Some(HandshakeDone {
            handshake,
            response,
            consumed,
        }))
    }
}

/// Garbage (a TLS hello, a POST) is rejected on its first byte rather than after buffering 8 KiB.
fn reject_non_get(buf: &[u8]) -> Result<(), HandshakeError> {
    let n = buf.len().min(REQUEST_PREFIX.len());
    if buf.get(..n) != REQUEST_PREFIX.get(..n) {
        return Err(HandshakeError::bad("method must be GET"));
    }
    Ok(())
}

/// The request-line and header fields of one request, borrowed from the header block.
struct RawRequest<'a> {
    target: &'a [u8],
    headers: Vec<(&'a [u8], &'a [u8])>,
}

/// Validate a complete header block (ending in the blank line); returns the handshake and accept value.
fn parse_request(block: &[u8], want_path: Option<&str>) -> Result<(Handshake, String), HandshakeError> {
    let raw = split_request(block)?;
    let (path, query) = split_target(raw.target)?;
    if want_path.is_some_and(|want| want.as_bytes() != path) {
        return Err(HandshakeError {
            status: 404,
            reason: "no WebSocket endpoint at this path",
        });
    }
    let mut host = None;
    let mut key = None;
    let mut version = None;
    let mut origin = None;
    let mut upgrade_ok = false;
    let mut connection_ok = false;
    let mut subprotocol = None;
    for &(name, value) in &raw.headers {
        if name.eq_ignore_ascii_case(b"host") {
            set_once(&mut host, value, "duplicate Host header")?;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade_ok |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_ok |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
            set_once(&mut key, value, "duplicate Sec-WebSocket-Key header")?;
        } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
            set_once(&mut version, value, "duplicate Sec-WebSocket-Version header")?;
        } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
            // The first offered token we support wins, across repeated headers in order.
            if subprotocol.is_none() {
                subprotocol = list_items(value).find_map(Subprotocol::from_token);
            }
        } else if name.eq_ignore_ascii_case(b"origin") {
            set_once(&mut origin, value, "duplicate Origin header")?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // A body on an upgrade request would be read as frames: refuse rather than guess.
            return Err(HandshakeError::bad("upgrade request must not have a body"));
        } else if name.eq_ignore_ascii_case(b"content-length") && value != b"0" {
            return Err(HandshakeError::bad("upgrade request must not have a body"));
        }
    }
    if host.is_none_or(|h: &[u8]| h.is_empty()) {
        return Err(HandshakeError::bad("missing Host header"));
    }
    if !upgrade_ok {
        return Err(HandshakeError::bad("missing Upgrade: websocket header"));
    }
    if !connection_ok {
        return Err(HandshakeError::bad("missing Connection: Upgrade header"));
    }
    if version != Some(b"13".as_slice()) {
        return Err(HandshakeError {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version (only 13)",
        });
    }
    let key = key.ok_or(HandshakeError::bad("missing Sec-WebSocket-Key header"))?;
    if STANDARD.decode(key).map(|k| k.len()) != Ok(16) {
        return Err(HandshakeError::bad("Sec-WebSocket-Key is not base64 of 16 bytes"));
    }
    // Base64 is ASCII, so the key is valid UTF-8 once it decoded.
    let accept = accept_key(&String::from_utf8_lossy(key));
    let handshake = Handshake {
        path: lossy(path),
        query: query.map(lossy),
        subprotocol,
        origin: origin.map(lossy),
        headers: raw
            .headers
            .iter()
            .map(|&(n, v)| (lossy(n).to_ascii_lowercase(), lossy(v)))
            .collect(),
    };
    Ok((handshake, accept))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn set_once<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8], dup: &'static str) -> Result<(), HandshakeError> {
    if slot.replace(value).is_some() {
        return Err(HandshakeError::bad(dup));
    }
    Ok(())
}

/// Split the block into request-line and header fields, rejecting anything that is not strict HTTP/1.1.
fn split_request(block: &[u8]) -> Result<RawRequest<'_>, HandshakeError> {
    let body = block.strip_suffix(b"\r\n\r\n").unwrap_or(block);
    let mut lines = memchr::memmem::find_iter(body, b"\r\n");
    let line_end = lines.next().unwrap_or(body.len());
    let request_line = body.get(..line_end).unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(_method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HandshakeError::bad("malformed request line"));
    };
    // Only HTTP/1.1 and later 1.x minors can carry an upgrade (RFC 6455 §4.2.1).
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'1'..=b'9').contains(minor) => {}
        _ => return Err(HandshakeError::bad("HTTP version must be 1.1")),
    }
    let mut headers = Vec::new();
    let mut start = line_end + 2;
    while start < body.len() + 2 {
        let end = lines.next().unwrap_or(body.len());
        let line = body.get(start..end).unwrap_or_default();
        headers.push(split_header(line)?);
        start = end + 2;
    }
    Ok(RawRequest { target, headers })
}

/// One `name: value` field; obsolete line folding and whitespace before the colon are rejected
/// (RFC 9112 §5.1, §5.2).
fn split_header(line: &[u8]) -> Result<(&[u8], &[u8]), HandshakeError> {
    let colon = memchr::memchr(b':', line).ok_or(HandshakeError::bad("malformed header line"))?;
    let (name, rest) = line.split_at(colon);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HandshakeError::bad("malformed header name"));
    }
    let value = trim_ows(rest.get(1..).unwrap_or_default());
    // Field values are visible ASCII, spaces, tabs and obs-text; any other control byte (a bare CR or LF
    // included) is an attempt at request smuggling or garbage.
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HandshakeError::bad("control character in header value"));
    }
    Ok((name, value))
}

/// The origin-form target split into path and query.
fn split_target(target: &[u8]) -> Result<(&[u8], Option<&[u8]>), HandshakeError> {
    if target.first() != Some(&b'/') {
        return Err(HandshakeError::bad("request target must be an absolute path"));
    }
    if !target.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b'#') {
        return Err(HandshakeError::bad("invalid character in request target"));
    }
    Ok(match memchr::memchr(b'?', target) {
        Some(q) => (target.get(..q).unwrap_or_default(), target.get(q + 1..)),
        None => (target, None),
    })
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty, trimmed elements of a comma-separated header value.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|s| !s.is_empty())
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    list_items(value).any(|item| item.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests;
