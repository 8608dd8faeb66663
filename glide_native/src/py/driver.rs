//! The native driver for Python: commands gathered during a loop tick and handed over in one call, events
//! taken in one call per wake-up (every envelope converted here, on the loop's thread).

use std::net::{SocketAddr, ToSocketAddrs};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::convert::StrCache;
use super::envelope::{BadMessage, PyEnvelope};
use super::outgoing::Outgoing;
use super::wire_id;
use crate::core::fanout::Wire;
use crate::driver::{tls_server_config, Command, Config, Driver, Event, Transport};

/// Event kinds, the first item of every tuple `drain` returns.
const OPENED: u8 = 0;
const MESSAGES: u8 = 1;
const CLOSED: u8 = 2;
const DRAINED: u8 = 3;

/// Sockets on a tokio I/O thread; Python gets batches of events and hands back batches of commands.
#[pyclass(module = "glide._native", name = "NativeDriver")]
pub struct PyDriver {
    driver: Option<Driver>,
    pending: Vec<Command>,
}

impl PyDriver {
    fn driver(&self) -> PyResult<&Driver> {
        self.driver
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the driver is stopped"))
    }
}

#[pymethods]
impl PyDriver {
    #[new]
    #[pyo3(signature = (
        *, max_message_size=65536, ws_path=Some("/ws".to_owned()), tcp_codec="json", heartbeat_ms=30_000,
        heartbeat_lost_limit=3, auth_timeout_ms=10_000, send_buffer_limit=1 << 20, low_water=65536, tick_ms=100,
        manual_clock=false, max_pending_events=65536, tls_cert=None, tls_key=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_message_size: usize,
        ws_path: Option<String>,
        tcp_codec: &str,
        heartbeat_ms: u64,
        heartbeat_lost_limit: u64,
        auth_timeout_ms: u64,
        send_buffer_limit: usize,
        low_water: usize,
        tick_ms: u64,
        manual_clock: bool,
        max_pending_events: usize,
        tls_cert: Option<Vec<u8>>,
        tls_key: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        let tcp_wire = match tcp_codec {
            "json" => Wire::TcpJson,
            "proto" | "protobuf" => Wire::TcpProto,
            other => return Err(PyValueError::new_err(format!("unknown tcp codec {other:?}"))),
        };
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(tls_server_config(&cert, &key).map_err(PyValueError::new_err)?),
            (None, None) => None,
            _ => return Err(PyValueError::new_err("tls_cert and tls_key go together")),
        };
        let config = Config {
            max_message_size,
            ws_path,
            tcp_wire,
            heartbeat_ms,
            heartbeat_lost_limit,
            auth_timeout_ms,
            send_buffer_limit,
            low_water,
            tick_ms,
            manual_clock,
            max_pending_events,
            tls,
        };
        let driver = Driver::start(config).map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(PyDriver {
            driver: Some(driver),
            pending: Vec::new(),
        })
    }

    /// The descriptor that becomes readable when events wait (for ``loop.add_reader``).
    fn fileno(&self) -> PyResult<i32> {
        Ok(self.driver()?.wake_fd())
    }

    /// Empty the wake-up descriptor, the events staying queued: it becomes readable again only after the
    /// next ``drain`` (a loop that holds its events for a later round keeps its reader on).
    fn quiet(&self) -> PyResult<()> {
        self.driver()?.quiet();
        Ok(())
    }

    /// Bind a listener (``"ws"`` or ``"tcp"``); returns the bound ``(host, port)``.
    fn listen(&self, py: Python<'_>, transport: &str, host: &str, port: u16) -> PyResult<(String, u16)> {
        let transport = match transport {
            "ws" => Transport::Ws,
            "tcp" => Transport::Tcp,
            other => return Err(PyValueError::new_err(format!("unknown transport {other:?}"))),
        };
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        let addr: SocketAddr = (host, port)
            .to_socket_addrs()
            .map_err(|e| PyOSError::new_err(format!("{host}: {e}")))?
            .next()
            .ok_or_else(|| PyOSError::new_err(format!("{host}: no address")))?;
        let driver = self.driver()?;
        let bound = py
            .detach(|| driver.listen(transport, addr))
            .map_err(|e| PyOSError::new_err((e.raw_os_error().unwrap_or(0), format!("[{addr}] {e}"))))?;
        Ok((bound.ip().to_string(), bound.port()))
    }

    /// Queue one frame for a connection (sent by the next ``flush``).
    fn send(&mut self, conn_id: u64, out: &Bound<'_, Outgoing>) {
        self.pending.push(Command::Send {
            id: conn_id,
            frame: out.get().shared.clone(),
        });
    }

    /// Queue the same frame for many connections (a fan-out: encoded once per wire variant).
    fn send_many(&mut self, conn_ids: Vec<u64>, out: &Bound<'_, Outgoing>) {
        let frame = &out.get().shared;
        self.pending.extend(conn_ids.into_iter().map(|id| Command::Send {
            id,
            frame: frame.clone(),
        }));
    }

    /// Queue a close: what was queued before it still goes out, then a close frame, then the socket.
    #[pyo3(signature = (conn_id, code=1000, reason=""))]
    fn close(&mut self, conn_id: u64, code: u16, reason: &str) {
        self.pending.push(Command::Close {
            id: conn_id,
            code,
            reason: reason.to_owned(),
        });
    }

    /// The connection logged in: it is no longer closed by the authentication timeout.
    fn authenticated(&mut self, conn_id: u64) {
        self.pending.push(Command::Authenticated { id: conn_id });
    }

    fn pause_reading(&mut self, conn_id: u64, paused: bool) {
        self.pending.push(Command::PauseReading { id: conn_id, paused });
    }

    /// Ask for a ``DRAINED`` event once the connection's queue is below the low-water mark.
    fn watch_drain(&mut self, conn_id: u64) {
        self.pending.push(Command::WatchDrain { id: conn_id });
    }

    /// Move a ``manual_clock`` driver's time to ``now_ms`` (timers fire).
    fn advance(&mut self, now_ms: u64) {
        self.pending.push(Command::Advance { now_ms });
    }

    /// Hand everything queued since the last flush to the I/O thread, in order (one wake-up).
    fn flush(&mut self) -> PyResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let commands = std::mem::take(&mut self.pending);
        self.driver()?.submit(commands);
        Ok(())
    }

    /// Every event since the last call: a list of ``(kind, conn_id, payload)`` with kind ``OPENED``
    /// (payload ``(transport, wire, peer)``), ``MESSAGES`` (a list of Envelope / BadMessage), ``CLOSED``
    /// (``(code, reason)``) or ``DRAINED`` (None).
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = self.driver()?.take_events();
        let mut cache = StrCache::lock();
        let mut items: Vec<Bound<'py, PyAny>> = Vec::with_capacity(events.len());
        for event in events {
            let item = match event {
                Event::Opened {
                    id,
                    transport,
                    wire,
                    peer,
                } => {
                    // One string object per kind, not one per connection (its Conn keeps it).
                    let kind = if transport == Transport::Ws {
                        intern!(py, "ws")
                    } else {
                        intern!(py, "tcp")
                    };
                    (OPENED, id, (kind, wire_id(wire), peer)).into_pyobject(py)?.into_any()
                }
                Event::Messages { id, messages } => {
                    let mut objects = Vec::with_capacity(messages.len());
                    for decoded in messages {
                        objects.push(match decoded {
                            Ok(env) => Bound::new(py, PyEnvelope::new(py, env, &mut cache)?)?.into_any(),
                            Err(e) => Bound::new(py, BadMessage { error: e.to_string() })?.into_any(),
                        });
                    }
                    PyTuple::new(
                        py,
                        [
                            MESSAGES.into_pyobject(py)?.into_any(),
                            id.into_pyobject(py)?.into_any(),
                            PyList::new(py, objects)?.into_any(),
                        ],
                    )?
                    .into_any()
                }
                Event::Closed { id, code, reason } => (CLOSED, id, (code, reason)).into_pyobject(py)?.into_any(),
                Event::Drained { id } => (DRAINED, id, py.None()).into_pyobject(py)?.into_any(),
            };
            items.push(item);
        }
        PyList::new(py, items)
    }

    /// Counters: connections open now, accepted, frames in and out, slow consumers dropped.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.driver()?.stats();
        let dict = PyDict::new(py);
        dict.set_item("connections", stats.connections.load(Relaxed))?;
        dict.set_item("accepted", stats.accepted.load(Relaxed))?;
        dict.set_item("frames_in", stats.frames_in.load(Relaxed))?;
        dict.set_item("frames_out", stats.frames_out.load(Relaxed))?;
        dict.set_item("slow_consumers", stats.slow_consumers.load(Relaxed))?;
        Ok(dict)
    }

    /// Send what is queued, close every connection with 1001, stop the I/O thread. Idempotent.
    fn stop(&mut self, py: Python<'_>) {
        if let Some(mut driver) = self.driver.take() {
            driver.submit(std::mem::take(&mut self.pending));
            py.detach(move || driver.stop());
        }
    }

    #[getter]
    fn running(&self) -> bool {
        self.driver.as_ref().is_some_and(Driver::is_running)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDriver>()?;
    m.add("EVENT_OPENED", OPENED)?;
    m.add("EVENT_MESSAGES", MESSAGES)?;
    m.add("EVENT_CLOSED", CLOSED)?;
    m.add("EVENT_DRAINED", DRAINED)?;
    Ok(())
}
