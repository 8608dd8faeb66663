//! The native driver: tokio owns the listeners and the sockets on one I/O thread, Python sees batches.
//!
//! The I/O thread accepts, runs the WebSocket handshake and framing (or the TCP length framing), answers
//! pings and closes, sends heartbeats and closes silent or never-authenticated connections on the timing
//! wheel, and writes each connection's queued frames with one vectored write. It never touches Python:
//! decoded envelopes go into a queue of [`Event`]s, and Python is woken through one file descriptor only
//! when that queue turns non-empty (the gRPC-aio pattern); it takes everything in one call. What Python
//! wants done comes back as [`Command`]s, a batch per loop tick, with one wake-up of the I/O thread.
//! Frames are [`EncodedOnce`]: a fan-out frame is encoded once per wire variant and its bytes are shared by
//! every recipient.
//!
//! This module is the I/O shell around the sans-I/O core; `py::driver` is its thin binding.

mod conn;
mod io;
mod tls;
mod wake;

use std::io::Result as IoResult;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::Notify;

use crate::core::envelope::{DecodeError, Envelope};
use crate::core::fanout::{EncodedOnce, Wire};

pub use tls::server_config as tls_server_config;
pub use wake::Waker;

/// Forget a drained socket's read readiness now, instead of paying a read that would only say "would block"
/// on the next turn of the loop (epoll reports the next arrival anyway). For a read that returned less than
/// the buffer could hold.
pub fn forget_read_readiness(stream: &tokio::net::TcpStream) {
    let _ = stream.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
    });
}

/// The transports a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Tcp,
}

/// How the driver treats every connection.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_message_size: usize,
    /// The only WebSocket path accepted (query excluded); `None` accepts any.
    pub ws_path: Option<String>,
    /// The codec of TCP connections (`TcpJson` or `TcpProto`).
    pub tcp_wire: Wire,
    /// Send-silence after which the server sends a heartbeat; 0 turns liveness off.
    pub heartbeat_ms: u64,
    /// Heartbeat windows a client may stay silent before it is closed (GlideIM: 3, so 4 windows).
    pub heartbeat_lost_limit: u64,
    /// A connection that has not logged in by then is closed (1008).
    pub auth_timeout_ms: u64,
    /// Queued bytes past which a connection is a slow consumer and is dropped.
    pub send_buffer_limit: usize,
    /// Queued bytes below which a connection waiting to drain is told it may go on.
    pub low_water: usize,
    /// Granularity of the timing wheel.
    pub tick_ms: u64,
    /// Time moves only by [`Command::Advance`] (tests); otherwise the I/O thread ticks by itself.
    pub manual_clock: bool,
    /// Events waiting for Python past which the sockets are not read (TCP pushes back on the clients).
    pub max_pending_events: usize,
    /// Every listener speaks TLS with these settings (wss, TLS over TCP); `None`: plain sockets.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 64 * 1024,
            ws_path: Some("/ws".to_owned()),
            tcp_wire: Wire::TcpJson,
            heartbeat_ms: 30_000,
            heartbeat_lost_limit: 3,
            auth_timeout_ms: 10_000,
            send_buffer_limit: 1 << 20,
            low_water: 64 * 1024,
            tick_ms: 100,
            manual_clock: false,
            max_pending_events: 65_536,
            tls: None,
        }
    }
}

/// What the I/O thread tells Python.
#[derive(Debug)]
pub enum Event {
    /// A connection is ready for envelopes (TCP: accepted; WebSocket: upgraded).
    Opened {
        id: u64,
        transport: Transport,
        wire: Wire,
        peer: String,
    },
    /// Every complete message of one read, in order.
    Messages {
        id: u64,
        messages: Vec<Result<Envelope, DecodeError>>,
    },
    /// The connection is gone (after `Opened`, or also without it for a failed handshake).
    Closed { id: u64, code: u16, reason: String },
    /// A connection asked about with [`Command::WatchDrain`] has at most `low_water` bytes queued.
    Drained { id: u64 },
}

/// What Python asks of the I/O thread.
#[derive(Debug)]
pub enum Command {
    Send {
        id: u64,
        frame: Arc<EncodedOnce>,
    },
    /// Write what is queued, then a close frame (WebSocket), then close the socket.
    Close {
        id: u64,
        code: u16,
        reason: String,
    },
    /// The connection logged in: no authentication timeout any more.
    Authenticated {
        id: u64,
    },
    PauseReading {
        id: u64,
        paused: bool,
    },
    /// Send [`Event::Drained`] once the connection's queue is at or below the low-water mark.
    WatchDrain {
        id: u64,
    },
    /// The clock of a `manual_clock` driver moves to `now_ms` (timers fire).
    Advance {
        now_ms: u64,
    },
    Listen {
        transport: Transport,
        addr: SocketAddr,
        reply: mpsc::Sender<IoResult<SocketAddr>>,
    },
    /// Close every connection with 1001 and end the I/O thread.
    Stop,
}

/// Counters Python may read at any time.
#[derive(Default, Debug)]
pub struct Stats {
    pub connections: AtomicUsize,
    pub accepted: AtomicUsize,
    pub frames_in: AtomicUsize,
    pub frames_out: AtomicUsize,
    pub slow_consumers: AtomicUsize,
}

/// What the Python thread and the I/O thread share.
pub(crate) struct Shared {
    events: Mutex<Vec<Event>>,
    pending_events: AtomicUsize,
    armed: AtomicBool,
    waker: Waker,
    commands: Mutex<Vec<Command>>,
    command_ready: Notify,
    /// Woken when Python took the events, for readers that stopped at `max_pending_events`.
    room: Notify,
    stats: Stats,
}

impl Shared {
    /// Queue events for Python; wake it if the queue was empty.
    pub(crate) fn emit(&self, new: impl IntoIterator<Item = Event>) {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let before = events.len();
        events.extend(new);
        let added = events.len() - before;
        drop(events);
        if added == 0 {
            return;
        }
        self.pending_events.fetch_add(added, Ordering::Relaxed);
        if !self.armed.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    pub(crate) fn too_many_events(&self, limit: usize) -> bool {
        self.pending_events.load(Ordering::Relaxed) >= limit
    }

    fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut *self.commands.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The handle Python's thread holds: start, hand commands over, take events, stop.
pub struct Driver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    /// Start the I/O thread.
    pub fn start(config: Config) -> IoResult<Driver> {
        let shared = Arc::new(Shared {
            events: Mutex::new(Vec::new()),
            pending_events: AtomicUsize::new(0),
            armed: AtomicBool::new(false),
            waker: Waker::new()?,
            commands: Mutex::new(Vec::new()),
            command_ready: Notify::new(),
            room: Notify::new(),
            stats: Stats::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let io_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("glide-io".to_owned())
            .spawn(move || io::run(&runtime, io_shared, config))?;
        Ok(Driver {
            shared,
            thread: Some(thread),
        })
    }

    /// The file descriptor that becomes readable when events wait (for `loop.add_reader`).
    pub fn wake_fd(&self) -> i32 {
        self.shared.waker.fd()
    }

    /// Hand a batch of commands to the I/O thread (one wake-up).
    pub fn submit(&self, commands: impl IntoIterator<Item = Command>) {
        let mut queue = self.shared.commands.lock().unwrap_or_else(PoisonError::into_inner);
        let before = queue.len();
        queue.extend(commands);
        let added = queue.len() > before;
        drop(queue);
        if added {
            self.shared.command_ready.notify_one();
        }
    }

    /// Bind a listener on the I/O thread; its local address.
    pub fn listen(&self, transport: Transport, addr: SocketAddr) -> IoResult<SocketAddr> {
        let (reply, answer) = mpsc::channel();
        self.submit([Command::Listen { transport, addr, reply }]);
        answer
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the I/O thread has stopped")))
    }

    /// Empty the wake-up pipe and leave the events queued, unarmed: no other wake-up comes until the next
    /// [`take_events`](Self::take_events). For a loop that holds its events for a round it runs later and
    /// keeps its reader on (no `epoll_ctl` to turn it off and on around each such round).
    pub fn quiet(&self) {
        self.shared.waker.clear();
    }

    /// Every event queued since the last call, in order. Re-arms the wake-up.
    pub fn take_events(&self) -> Vec<Event> {
        self.shared.waker.clear();
        self.shared.armed.store(false, Ordering::Release);
        let events = std::mem::take(&mut *self.shared.events.lock().unwrap_or_else(PoisonError::into_inner));
        if !events.is_empty() {
            let before = self.shared.pending_events.fetch_sub(events.len(), Ordering::Relaxed);
            if before >= events.len() {
                self.shared.room.notify_waiters();
            }
        }
        events
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Close every connection with 1001, flush, end the I/O thread and wait for it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.submit([Command::Stop]);
            let _ = thread.join();
        }
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
