//! One client socket's sans-I/O state for Python: `feed` per read returns every decoded message at once.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::convert::StrCache;
use super::envelope::{BadMessage, PyEnvelope};
use super::wire_id;
use crate::core::envelope::{DecodeError, Envelope};
use crate::core::fanout::Wire;
use crate::core::tcp::TcpFramer;
use crate::core::ws::{Subprotocol, WsConfig, WsServerConn};
use crate::core::{codec_json, codec_proto};

/// What one socket read produced.
#[pyclass(frozen, module = "glide._native")]
pub struct Feed {
    #[pyo3(get)]
    messages: Py<PyList>,
    #[pyo3(get)]
    to_send: Option<Py<PyBytes>>,
    #[pyo3(get)]
    close: Option<(u16, String)>,
    #[pyo3(get)]
    opened: bool,
    #[pyo3(get)]
    error: Option<String>,
}

enum Framing {
    Ws(Box<WsServerConn>),
    Tcp { framer: TcpFramer, failed: bool },
}

/// The sans-I/O state of one client socket: framing plus envelope codec.
#[pyclass(module = "glide._native")]
pub struct Connection {
    framing: Framing,
    wire: Wire,
}

fn decode(wire: Wire, binary: bool, payload: &[u8]) -> Result<Envelope, DecodeError> {
    // GlideIM accepts JSON in binary frames too (its load client sends them); protobuf comes only in binary.
    match wire {
        Wire::WsProto | Wire::TcpProto if binary => codec_proto::decode(payload),
        // simdutf8 checks a short ASCII payload faster than std; on failure the codec's own check runs
        // again, for its error message.
        _ => match simdutf8::basic::from_utf8(payload) {
            Ok(text) => codec_json::decode_str(text),
            Err(_) => codec_json::decode(payload),
        },
    }
}

/// Reads of at least this many bytes are parsed with the GIL released.
const DETACH_AT: usize = 64 * 1024;

/// Everything one read produced, still in Rust types.
#[derive(Default)]
struct Parsed {
    wire: Option<Wire>,
    opened: bool,
    messages: Vec<Result<Envelope, DecodeError>>,
    to_send: Vec<u8>,
    close: Option<(u16, String)>,
    error: Option<String>,
}

impl Parsed {
    fn is_empty(&self) -> bool {
        !self.opened && self.messages.is_empty() && self.to_send.is_empty() && self.close.is_none()
    }
}

fn parse(framing: &mut Framing, wire: Wire, data: &[u8]) -> Parsed {
    match framing {
        Framing::Ws(ws) => {
            let feed = ws.feed(data);
            let mut parsed = Parsed::default();
            let mut wire = wire;
            if let Some(handshake) = &feed.handshake {
                parsed.opened = true;
                wire = match handshake.subprotocol {
                    Some(Subprotocol::Proto) => Wire::WsProto,
                    _ => Wire::WsJson,
                };
                parsed.wire = Some(wire);
            }
            parsed.messages = feed
                .messages
                .iter()
                .map(|m| decode(wire, m.binary, &m.payload))
                .collect();
            parsed.to_send = feed.to_send;
            if let Some(c) = feed.close {
                parsed.close = Some((c.code, c.reason));
                parsed.error = c.error;
            }
            parsed
        }
        Framing::Tcp { framer, failed } => {
            let mut frames = Vec::new();
            let result = framer.feed(data, &mut frames);
            let mut parsed = Parsed {
                messages: frames.iter().map(|payload| decode(wire, true, payload)).collect(),
                ..Parsed::default()
            };
            if let Err(e) = result {
                *failed = true;
                parsed.close = Some((1002, e.to_string()));
                parsed.error = Some(e.to_string());
            }
            parsed
        }
    }
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (transport, *, max_message_size=65536, ws_path=Some("/ws".to_owned()), tcp_codec="json"))]
    fn new(transport: &str, max_message_size: usize, ws_path: Option<String>, tcp_codec: &str) -> PyResult<Self> {
        match transport {
            "ws" => {
                let config = WsConfig {
                    max_message_size,
                    path: ws_path,
                    ..WsConfig::default()
                };
                Ok(Self {
                    framing: Framing::Ws(Box::new(WsServerConn::new(config))),
                    wire: Wire::WsJson,
                })
            }
            "tcp" => {
                let wire = match tcp_codec {
                    "json" => Wire::TcpJson,
                    "proto" | "protobuf" => Wire::TcpProto,
                    other => return Err(PyValueError::new_err(format!("unknown tcp codec {other:?}"))),
                };
                let framer = TcpFramer::new(max_message_size);
                Ok(Self {
                    framing: Framing::Tcp { framer, failed: false },
                    wire,
                })
            }
            other => Err(PyValueError::new_err(format!("unknown transport {other:?}"))),
        }
    }

    #[getter]
    fn wire(&self) -> u8 {
        wire_id(self.wire)
    }

    #[getter]
    fn is_open(&self) -> bool {
        match &self.framing {
            Framing::Ws(ws) => ws.is_open(),
            Framing::Tcp { failed, .. } => !failed,
        }
    }

    /// Consume one socket read; None when it produced nothing to act on.
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Option<Feed>> {
        let wire = self.wire;
        let framing = &mut self.framing;
        // Framing and decoding are plain Rust: for a large read, let other Python threads run meanwhile.
        let parsed = if data.len() >= DETACH_AT {
            py.detach(|| parse(framing, wire, data))
        } else {
            parse(framing, wire, data)
        };
        if let Some(wire) = parsed.wire {
            self.wire = wire;
        }
        if parsed.is_empty() {
            return Ok(None);
        }
        // The list is allocated at its final size and filled in place; a failed object allocation (the only
        // possible error) leaves a None behind and is raised once the list is built.
        let mut failed = None;
        let mut cache = StrCache::lock();
        let objects = parsed.messages.into_iter().map(|decoded| {
            let object = match decoded {
                Ok(inner) => PyEnvelope::new(py, inner, &mut cache)
                    .and_then(|env| Bound::new(py, env))
                    .map(Bound::into_any),
                Err(e) => Bound::new(py, BadMessage { error: e.to_string() }).map(Bound::into_any),
            };
            object.map_err(|e| failed.get_or_insert(e)).ok()
        });
        let list = PyList::new(py, objects)?;
        if let Some(e) = failed {
            return Err(e);
        }
        let to_send = (!parsed.to_send.is_empty()).then(|| PyBytes::new(py, &parsed.to_send).unbind());
        Ok(Some(Feed {
            messages: list.unbind(),
            to_send,
            close: parsed.close,
            opened: parsed.opened,
            error: parsed.error,
        }))
    }

    /// Bytes that start a server-initiated close (a WebSocket close frame; empty for TCP).
    fn close_frame<'py>(&mut self, py: Python<'py>, code: u16, reason: &str) -> Bound<'py, PyBytes> {
        match &mut self.framing {
            Framing::Ws(ws) => PyBytes::new(py, &ws.close(code, reason)),
            Framing::Tcp { .. } => PyBytes::new(py, b""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// One masked client frame (payloads under 126 bytes).
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![0x80 | opcode, 0x80 | u8::try_from(payload.len()).unwrap()];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

    fn open_ws(py: Python<'_>) -> Connection {
        let mut conn = Connection::new("ws", 65536, Some("/ws".to_owned()), "json").unwrap();
        let feed = conn.feed(py, UPGRADE).unwrap().unwrap();
        assert!(feed.opened && feed.to_send.is_some());
        conn
    }

    /// `repr(obj.name)`, or of `obj.name()` when `call` is set.
    fn repr_of(obj: &Bound<'_, PyAny>, name: &str, call: bool) -> String {
        let value = if call {
            obj.call_method0(name)
        } else {
            obj.getattr(name)
        };
        value.unwrap().repr().unwrap().to_string()
    }

    #[test]
    fn feed_decodes_every_message_of_a_read() {
        Python::attach(|py| {
            let mut conn = open_ws(py);
            let mut read = Vec::new();
            for seq in 1..=100 {
                let text = format!(r#"{{"action":"message.chat","seq":{seq},"to":"u{seq}","data":{{"n":{seq}}}}}"#);
                read.extend(client_frame(0x1, text.as_bytes()));
            }
            let feed = conn.feed(py, &read).unwrap().unwrap();
            let messages = feed.messages.bind(py);
            assert_eq!(messages.len(), 100);
            for (i, env) in messages.iter().enumerate() {
                let seq = i + 1;
                assert_eq!(repr_of(&env, "action", false), "'message.chat'");
                assert_eq!(repr_of(&env, "seq", false), seq.to_string());
                assert_eq!(repr_of(&env, "to", false), format!("'u{seq}'"));
                assert_eq!(repr_of(&env, "sender", false), "''");
                assert_eq!(repr_of(&env, "data", true), format!("{{'n': {seq}}}"));
            }
        });
    }

    #[test]
    fn undecodable_messages_become_bad_messages() {
        Python::attach(|py| {
            let mut conn = open_ws(py);
            let mut read = client_frame(0x2, b"{\"action\":\"a\xff\"}");
            read.extend(client_frame(0x1, b"{\"seq\":1}"));
            read.extend(client_frame(0x1, b"{\"action\":\"ok\"}"));
            let feed = conn.feed(py, &read).unwrap().unwrap();
            let messages: Vec<_> = feed.messages.bind(py).iter().collect();
            assert_eq!(repr_of(&messages[0], "error", false), "'invalid UTF-8 at byte 12'");
            assert_eq!(repr_of(&messages[1], "error", false), "'missing action'");
            assert_eq!(repr_of(&messages[2], "action", false), "'ok'");
            assert!(conn.is_open());
        });
    }

    #[test]
    fn tcp_reads_cut_anywhere_give_the_same_messages() {
        Python::attach(|py| {
            let body = br#"{"action":"message.chat","seq":7,"to":"2","data":[1,"x"]}"#;
            let mut stream = Vec::new();
            for _ in 0..3 {
                stream.extend(u32::try_from(body.len()).unwrap().to_be_bytes());
                stream.extend_from_slice(body);
            }
            let mut conn = Connection::new("tcp", 65536, None, "json").unwrap();
            let mut seen = 0;
            for chunk in stream.chunks(5) {
                if let Some(feed) = conn.feed(py, chunk).unwrap() {
                    for env in feed.messages.bind(py).iter() {
                        assert_eq!(repr_of(&env, "seq", false), "7");
                        assert_eq!(repr_of(&env, "data", true), "[1, 'x']");
                        seen += 1;
                    }
                }
            }
            assert_eq!(seen, 3);
        });
    }
}
