//! HTTP responses the server writes during the handshake: the 101 and the error answers.

use super::handshake::Subprotocol;

/// The `101 Switching Protocols` response for an accepted upgrade.
pub(crate) fn switching_protocols(accept: &str, subprotocol: Option<Subprotocol>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(proto) = subprotocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(proto.name().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete HTTP/1.1 error response with a plain-text body (`body` plus a newline) and
/// `Connection: close`, for a driver that rejects an upgrade itself (403 for a bad origin, 503 when
/// overloaded). A 426 also carries `Upgrade: websocket` and `Sec-WebSocket-Version: 13`, as RFC 6455
/// §4.4 requires.
pub fn http_error_response(status: u16, body: &str) -> Vec<u8> {
    // Keep the status line parseable whatever the caller passed.
    let status = if (100..=999).contains(&status) { status } else { 500 };
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", status_text(status)).as_bytes());
    if status == 426 {
        out.extend_from_slice(b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len() + 1).as_bytes());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_layout() {
        let r = String::from_utf8(http_error_response(404, "no such path")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\
             Connection: close\r\n\r\nno such path\n"
        );
    }

    #[test]
    fn upgrade_required_names_the_version() {
        let r = String::from_utf8(http_error_response(426, "x")).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(r.contains("\r\nUpgrade: websocket\r\n"));
    }

    #[test]
    fn content_length_counts_utf8_bytes_and_bad_status_is_500() {
        let r = String::from_utf8(http_error_response(7, "é")).unwrap();
        assert!(r.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(r.contains("Content-Length: 3\r\n"));
        assert!(r.ends_with("\r\n\r\né\n"));
    }

    #[test]
    fn switching_protocols_with_and_without_subprotocol() {
        let plain = String::from_utf8(switching_protocols("abc", None)).unwrap();
        assert_eq!(
            plain,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: abc\r\n\r\n"
        );
        let proto = String::from_utf8(switching_protocols("abc", Some(Subprotocol::Proto))).unwrap();
        assert!(proto.ends_with("Sec-WebSocket-Accept: abc\r\nSec-WebSocket-Protocol: glide.proto\r\n\r\n"));
    }
}
