//! One client socket on the I/O thread: its framing state, its write queue, and the task that reads it.
//!
//! Writes do not go through the task: the I/O thread writes a connection's queued frames as soon as a
//! batch of commands is applied (one vectored write), and only a write that would block leaves the rest to
//! the task, which waits for the socket to become writable. Reads are the task's: it waits for readability,
//! reads into the thread's one buffer and feeds the sans-I/O parser.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::core::envelope::{DecodeError, Envelope};
use crate::core::fanout::Wire;
use crate::core::tcp::TcpFramer;
use crate::core::ws::{Subprotocol, WsConfig, WsServerConn};
use crate::core::{codec_json, codec_proto};

use super::tls::Tls;
use super::Transport;

/// Frames written by one vectored write at most.
const MAX_SLICES: usize = 64;
/// Plaintext encrypted at a time on a TLS connection: the session buffers no more than this.
const TLS_CHUNK: usize = 64 * 1024;

pub enum Framing {
    Ws(Box<WsServerConn>),
    Tcp(TcpFramer),
}

/// Where the connection is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Accepted, the WebSocket handshake not complete yet.
    Handshaking,
    Open,
    /// Ending: what is queued is written, then the socket is closed.
    Closing,
    /// Over: the task ends and the connection is forgotten.
    Done,
}

pub struct State {
    pub framing: Framing,
    pub wire: Wire,
    pub transport: Transport,
    pub phase: Phase,
    pub out: VecDeque<Bytes>,
    pub out_len: usize,
    /// The last write would have blocked: the task waits for writability.
    pub blocked: bool,
    pub read_paused: bool,
    pub authenticated: bool,
    /// Python waits for the queue to drain ([`super::Command::WatchDrain`]).
    pub watch_drain: bool,
    /// Python was told the connection opened (so it must be told it closed).
    pub announced: bool,
    pub opened_at: u64,
    pub last_recv: u64,
    pub last_sent: u64,
    pub close_code: u16,
    pub close_reason: String,
    /// The TLS session of a connection on a TLS listener.
    pub tls: Option<Box<Tls>>,
}

pub struct Conn {
    pub id: u64,
    pub stream: TcpStream,
    pub peer: SocketAddr, // made a string only for the Opened event
    pub state: RefCell<State>,
    /// Wakes the task: writability wanted, reading resumed, the connection ending.
    pub notify: Notify,
}

/// What feeding one read produced.
pub struct Fed {
    pub opened: bool,
    pub messages: Vec<Result<Envelope, DecodeError>>,
    pub to_send: Vec<u8>,
    pub close: Option<(u16, String)>,
}

fn decode(wire: Wire, binary: bool, payload: &[u8]) -> Result<Envelope, DecodeError> {
    // GlideIM accepts JSON in binary frames too (its load client sends them); protobuf comes only in binary.
    match wire {
        Wire::WsProto | Wire::TcpProto if binary => codec_proto::decode(payload),
        _ => match simdutf8::basic::from_utf8(payload) {
            Ok(text) => codec_json::decode_str(text),
            Err(_) => codec_json::decode(payload),
        },
    }
}

impl State {
    pub fn new(transport: Transport, config: &super::Config, now: u64) -> State {
        let (framing, wire, phase) = match transport {
            Transport::Ws => {
                let ws = WsServerConn::new(WsConfig {
                    max_message_size: config.max_message_size,
                    path: config.ws_path.clone(),
                    ..WsConfig::default()
                });
                (Framing::Ws(Box::new(ws)), Wire::WsJson, Phase::Handshaking)
            }
            Transport::Tcp => (
                Framing::Tcp(TcpFramer::new(config.max_message_size)),
                config.tcp_wire,
                Phase::Open,
            ),
        };
        State {
            framing,
            wire,
            transport,
            phase,
            out: VecDeque::new(),
            out_len: 0,
            blocked: false,
            read_paused: false,
            authenticated: false,
            watch_drain: false,
            announced: false,
            opened_at: now,
            last_recv: now,
            last_sent: now,
            close_code: 1006,
            close_reason: String::new(),
            tls: None,
        }
    }

    /// Whether anything waits to be written: queued frames, or TLS records (a handshake, an alert).
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Consume one read.
    pub fn feed(&mut self, data: &[u8]) -> Fed {
        let mut fed = Fed {
            opened: false,
            messages: Vec::new(),
            to_send: Vec::new(),
            close: None,
        };
        match &mut self.framing {
            Framing::Ws(ws) => {
                let feed = ws.feed(data);
                if let Some(handshake) = &feed.handshake {
                    fed.opened = true;
                    self.wire = match handshake.subprotocol {
                        Some(Subprotocol::Proto) => Wire::WsProto,
                        _ => Wire::WsJson,
                    };
                }
                let wire = self.wire;
                fed.messages = feed
                    .messages
                    .iter()
                    .map(|m| decode(wire, m.binary, &m.payload))
                    .collect();
                fed.to_send = feed.to_send;
                fed.close = feed.close.map(|c| (c.code, c.reason));
            }
            Framing::Tcp(framer) => {
                let mut frames = Vec::new();
                let result = framer.feed(data, &mut frames);
                let wire = self.wire;
                fed.messages = frames.iter().map(|p| decode(wire, true, p)).collect();
                if let Err(e) = result {
                    fed.close = Some((1002, e.to_string()));
                }
            }
        }
        fed
    }

    pub fn queue(&mut self, frame: Bytes) {
        self.out_len += frame.len();
        self.out.push_back(frame);
    }

    /// Bytes that start a server-initiated close (a WebSocket close frame; nothing for TCP).
    pub fn close_frame(&mut self, code: u16, reason: &str) -> Vec<u8> {
        match &mut self.framing {
            Framing::Ws(ws) => ws.close(code, reason),
            Framing::Tcp(_) => Vec::new(),
        }
    }

    /// Mark the connection as ending with `code`: queued frames still go out.
    pub fn end(&mut self, code: u16, reason: &str) {
        if matches!(self.phase, Phase::Closing | Phase::Done) {
            return;
        }
        self.close_code = code;
        reason.clone_into(&mut self.close_reason);
        self.phase = Phase::Closing;
    }

    /// Over at once (an I/O error, a slow consumer): nothing more is written.
    pub fn abort(&mut self, code: u16, reason: &str) {
        if self.phase != Phase::Done {
            if self.phase != Phase::Closing {
                self.close_code = code;
                reason.clone_into(&mut self.close_reason);
            }
            self.phase = Phase::Done;
            self.out.clear();
            self.out_len = 0;
        }
    }
}

/// Write as much of the queue as the socket takes now. `Ok(true)` when the queue is empty (or, on TLS,
/// waits for the handshake, not for the socket); `Ok(false)` when the socket would block.
pub fn write_queued(stream: &TcpStream, state: &mut State) -> io::Result<bool> {
    if state.tls.is_some() {
        return write_queued_tls(stream, state);
    }
    while !state.out.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = state.out.len().min(MAX_SLICES);
        for (slot, frame) in slices.iter_mut().zip(state.out.iter()) {
            *slot = IoSlice::new(frame);
        }
        match stream.try_write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut written) => {
                state.out_len -= written;
                while written > 0 {
                    let Some(front) = state.out.front_mut() else { break };
                    if written >= front.len() {
                        written -= front.len();
                        state.out.pop_front();
                    } else {
                        let _ = front.split_to(written);
                        written = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Written out: an idle connection keeps no queue capacity (the next frame allocates it again).
    state.out = VecDeque::new();
    Ok(true)
}

/// The TLS form of [`write_queued`]: the queue is encrypted a chunk at a time, each chunk's records written
/// before the next is taken, so `out_len` keeps counting what the peer has not been sent.
fn write_queued_tls(stream: &TcpStream, state: &mut State) -> io::Result<bool> {
    let Some(tls) = state.tls.as_deref_mut() else {
        return Ok(true);
    };
    loop {
        if !tls.send(stream)? {
            return Ok(false);
        }
        let mut taken = 0;
        while taken < TLS_CHUNK {
            let Some(front) = state.out.front_mut() else { break };
            let n = tls.encrypt(front)?;
            taken += n;
            state.out_len -= n;
            if n == front.len() {
                state.out.pop_front();
            } else {
                let _ = front.split_to(n);
                break;
            }
        }
        if taken == 0 {
            // Nothing queued, or the session takes nothing before its handshake is done (a TCP-transport
            // heartbeat to a client that never finished it): the peer's next records move it on.
            return Ok(true);
        }
    }
}
