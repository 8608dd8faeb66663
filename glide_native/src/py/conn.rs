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

fn to_python(py: Python<'_>, list: &Bound<'_, PyList>, decoded: Result<Envelope, DecodeError>) -> PyResult<()> {
    match decoded {
        Ok(inner) => list.append(Py::new(py, PyEnvelope { inner })?),
        Err(e) => list.append(Py::new(py, BadMessage { error: e.to_string() })?),
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
        match &mut self.framing {
            Framing::Ws(ws) => {
                let feed = ws.feed(data);
                let mut opened = false;
                if let Some(handshake) = &feed.handshake {
                    opened = true;
                    self.wire = match handshake.subprotocol {
                        Some(Subprotocol::Proto) => Wire::WsProto,
                        _ => Wire::WsJson,
                    };
                }
                if feed.messages.is_empty() && feed.to_send.is_empty() && feed.close.is_none() && !opened {
                    return Ok(None);
                }
                let list = PyList::empty(py);
                for msg in &feed.messages {
                    to_python(py, &list, decode(self.wire, msg.binary, &msg.payload))?;
                }
                let to_send = (!feed.to_send.is_empty()).then(|| PyBytes::new(py, &feed.to_send).unbind());
                let (close, error) = match feed.close {
                    Some(c) => (Some((c.code, c.reason)), c.error),
                    None => (None, None),
                };
                Ok(Some(Feed {
                    messages: list.unbind(),
                    to_send,
                    close,
                    opened,
                    error,
                }))
            }
            Framing::Tcp { framer, failed } => {
                let mut frames = Vec::new();
                let result = framer.feed(data, &mut frames);
                if frames.is_empty() && result.is_ok() {
                    return Ok(None);
                }
                let list = PyList::empty(py);
                for payload in &frames {
                    to_python(py, &list, decode(self.wire, true, payload))?;
                }
                let (close, error) = match result {
                    Ok(()) => (None, None),
                    Err(e) => {
                        *failed = true;
                        (Some((1002, e.to_string())), Some(e.to_string()))
                    }
                };
                Ok(Some(Feed {
                    messages: list.unbind(),
                    to_send: None,
                    close,
                    opened: false,
                    error,
                }))
            }
        }
    }

    /// Bytes that start a server-initiated close (a WebSocket close frame; empty for TCP).
    fn close_frame<'py>(&mut self, py: Python<'py>, code: u16, reason: &str) -> Bound<'py, PyBytes> {
        match &mut self.framing {
            Framing::Ws(ws) => PyBytes::new(py, &ws.close(code, reason)),
            Framing::Tcp { .. } => PyBytes::new(py, b""),
        }
    }
}
