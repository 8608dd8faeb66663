//! One client socket's sans-I/O state for Python: `feed` per read returns every decoded message at once.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

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
        _ => codec_json::decode(payload),
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
                    "proto" => Wire::TcpProto,
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
        let list = PyList::empty(py);
        for decoded in parsed.messages {
            match decoded {
                Ok(inner) => list.append(Py::new(py, PyEnvelope { inner })?)?,
                Err(e) => list.append(Py::new(py, BadMessage { error: e.to_string() })?)?,
            }
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
