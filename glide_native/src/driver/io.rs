//! The I/O thread: a current-thread tokio runtime running the listeners, one task per connection, the
//! command loop and the liveness ticker. Everything here lives on this one thread (`Rc`, `RefCell`).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::{spawn_local, JoinHandle, LocalSet};
use tokio::time::Instant;

use super::conn::{write_queued, Conn, Phase, State};
use super::tls::Tls;
use super::{Command, Config, Event, Shared, Transport};
use crate::core::envelope::Envelope;
use crate::core::fanout::EncodedOnce;
use crate::core::id_map::IdMap;
use crate::core::wheel::TimingWheel;
use std::sync::atomic::Ordering::Relaxed;

/// The one read buffer of the thread: a read is parsed before the next one starts.
const READ_BUFFER: usize = 64 * 1024;
/// A connection whose close frame the peer does not take within this long is cut.
const CLOSE_TIMEOUT_MS: u64 = 5_000;
/// At shutdown, how long connections get to take their close frames.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
const LISTEN_BACKLOG: u32 = 4096;

pub(super) fn run(runtime: &Runtime, shared: Arc<Shared>, config: Config) {
    let local = LocalSet::new();
    local.block_on(runtime, async move {
        let io = Rc::new(Io::new(shared, config));
        if !io.config.manual_clock {
            spawn_local(ticker(Rc::clone(&io)));
        }
        io.serve_commands().await;
    });
}

struct Io {
    shared: Arc<Shared>,
    config: Config,
    conns: RefCell<IdMap<Rc<Conn>>>,
    next_id: Cell<u64>,
    wheel: RefCell<TimingWheel>,
    expired: RefCell<Vec<u64>>,
    started: Instant,
    manual_now: Cell<u64>,
    read_buf: RefCell<Vec<u8>>,
    /// What one read decrypted, on a TLS connection.
    plain_buf: RefCell<Vec<u8>>,
    heartbeat: EncodedOnce,
    /// Connections given frames by the batch of commands being applied.
    dirty: RefCell<Vec<Rc<Conn>>>,
    listeners: RefCell<Vec<JoinHandle<()>>>,
    stopping: Cell<bool>,
}

impl Io {
    fn new(shared: Arc<Shared>, config: Config) -> Io {
        // As the asyncio driver sends it: `{"ver":1,"action":"heartbeat","data":null}`.
        let mut heartbeat = Envelope::new("heartbeat");
        heartbeat.ver = 1;
        heartbeat.data = crate::core::envelope::raw_data("null").ok();
        Io {
            shared,
            wheel: RefCell::new(TimingWheel::new(config.tick_ms, 0)),
            config,
            conns: RefCell::new(IdMap::default()),
            next_id: Cell::new(1),
            expired: RefCell::new(Vec::new()),
            started: Instant::now(),
            manual_now: Cell::new(0),
            read_buf: RefCell::new(vec![0; READ_BUFFER]),
            plain_buf: RefCell::new(Vec::new()),
            heartbeat: EncodedOnce::new(heartbeat),
            dirty: RefCell::new(Vec::new()),
            listeners: RefCell::new(Vec::new()),
            stopping: Cell::new(false),
        }
    }

    fn now(&self) -> u64 {
        if self.config.manual_clock {
            self.manual_now.get()
        } else {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        }
    }

    fn conn(&self, id: u64) -> Option<Rc<Conn>> {
        self.conns.borrow().get(&id).cloned()
    }

    // commands from Python

    async fn serve_commands(self: &Rc<Self>) {
        loop {
            self.shared.command_ready.notified().await;
            let mut stop = false;
            for command in self.shared.take_commands() {
                match command {
                    Command::Stop => stop = true,
                    other => self.apply(other),
                }
            }
            self.flush_dirty();
            if stop {
                self.shutdown().await;
                return;
            }
        }
    }

    fn apply(self: &Rc<Self>, command: Command) {
        match command {
            Command::Send { id, frame } => {
                let Some(conn) = self.conn(id) else { return };
                let mut st = conn.state.borrow_mut();
                if st.phase != Phase::Open {
                    return;
                }
                let Ok(bytes) = frame.frame(st.wire) else { return };
                st.queue(bytes);
                self.shared.stats.frames_out.fetch_add(1, Relaxed);
                if st.out_len > self.config.send_buffer_limit {
                    // A consumer this far behind would make memory grow without bound; what it was sent
                    // stays stored, so dropping it loses nothing.
                    st.abort(1008, "slow consumer");
                    self.shared.stats.slow_consumers.fetch_add(1, Relaxed);
                    drop(st);
                    conn.notify.notify_one();
                    return;
                }
                drop(st);
                self.mark_dirty(conn);
            }
            Command::Close { id, code, reason } => {
                if let Some(conn) = self.conn(id) {
                    self.close(&conn, code, &reason);
                }
            }
            Command::Authenticated { id } => {
                if let Some(conn) = self.conn(id) {
                    conn.state.borrow_mut().authenticated = true;
                }
            }
            Command::PauseReading { id, paused } => {
                if let Some(conn) = self.conn(id) {
                    conn.state.borrow_mut().read_paused = paused;
                    conn.notify.notify_one();
                }
            }
            Command::WatchDrain { id } => match self.conn(id) {
                Some(conn) => {
                    conn.state.borrow_mut().watch_drain = true;
                    self.mark_dirty(conn);
                }
                None => self.shared.emit([Event::Drained { id }]),
            },
            Command::Advance { now_ms } => {
                self.manual_now.set(now_ms.max(self.manual_now.get()));
                self.tick();
            }
            Command::Listen { transport, addr, reply } => {
                let _ = reply.send(self.listen(transport, addr));
            }
            Command::Stop => {}
        }
    }

    fn mark_dirty(&self, conn: Rc<Conn>) {
        self.dirty.borrow_mut().push(conn);
    }

    fn flush_dirty(&self) {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        for conn in dirty {
            self.flush(&conn);
        }
    }

    /// Write what the connection has queued (unless the task waits for writability already).
    fn flush(&self, conn: &Conn) {
        let mut st = conn.state.borrow_mut();
        if st.phase == Phase::Done {
            return;
        }
        if !st.blocked && st.has_output() {
            match write_queued(&conn.stream, &mut st) {
                Ok(true) => st.last_sent = self.now(),
                Ok(false) => {
                    st.last_sent = self.now();
                    st.blocked = true;
                    conn.notify.notify_one();
                }
                Err(_) => {
                    st.abort(1006, "write failed");
                    conn.notify.notify_one();
                    return;
                }
            }
        }
        if st.phase == Phase::Closing && !st.has_output() {
            st.phase = Phase::Done;
            conn.notify.notify_one();
        }
        if st.watch_drain && st.out_len <= self.config.low_water {
            st.watch_drain = false;
            self.shared.emit([Event::Drained { id: conn.id }]);
        }
    }

    /// A server-initiated close: what is queued, a close frame, then the socket.
    fn close(&self, conn: &Conn, code: u16, reason: &str) {
        let mut st = conn.state.borrow_mut();
        if matches!(st.phase, Phase::Closing | Phase::Done) {
            return;
        }
        let frame = st.close_frame(code, reason);
        if !frame.is_empty() {
            st.queue(Bytes::from(frame));
        }
        st.end(code, reason);
        drop(st);
        self.wheel.borrow_mut().insert(conn.id, self.now() + CLOSE_TIMEOUT_MS);
        self.flush(conn);
    }

    // listeners and connections

    fn listen(self: &Rc<Self>, transport: Transport, addr: SocketAddr) -> io::Result<SocketAddr> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        let local = listener.local_addr()?;
        let handle = spawn_local(accept_loop(Rc::clone(self), listener, transport));
        self.listeners.borrow_mut().push(handle);
        Ok(local)
    }

    fn add(self: &Rc<Self>, stream: TcpStream, peer: SocketAddr, transport: Transport) {
        let _ = stream.set_nodelay(true);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let now = self.now();
        let mut state = State::new(transport, &self.config, now);
        if let Some(config) = &self.config.tls {
            match Tls::new(config) {
                Ok(tls) => state.tls = Some(Box::new(tls)),
                Err(_) => return, // rustls could not start a session: the connection is dropped unannounced
            }
        }
        let wire = state.wire;
        state.announced = transport == Transport::Tcp; // no handshake: open as soon as accepted
        let conn = Rc::new(Conn {
            id,
            stream,
            peer,
            state: RefCell::new(state),
            notify: tokio::sync::Notify::new(),
        });
        if transport == Transport::Tcp {
            self.shared.emit([Event::Opened {
                id,
                transport,
                wire,
                peer: conn.peer.to_string(),
            }]);
        }
        self.conns.borrow_mut().insert(id, Rc::clone(&conn));
        self.shared.stats.connections.fetch_add(1, Relaxed);
        self.shared.stats.accepted.fetch_add(1, Relaxed);
        let first = if self.config.heartbeat_ms > 0 {
            self.config.auth_timeout_ms.min(self.config.heartbeat_ms)
        } else {
            self.config.auth_timeout_ms
        };
        self.wheel.borrow_mut().insert(id, now + first);
        spawn_local(serve(Rc::clone(self), conn));
    }

    /// Read everything the socket has now.
    fn read_ready(&self, conn: &Conn) {
        let mut buf = self.read_buf.borrow_mut();
        loop {
            match conn.stream.try_read(&mut buf) {
                Ok(0) => {
                    conn.state.borrow_mut().abort(1006, "connection closed by the client");
                    return;
                }
                Ok(n) => {
                    if conn.state.borrow().tls.is_some() {
                        self.on_tls_data(conn, &buf[..n]);
                    } else {
                        self.on_data(conn, &buf[..n]);
                    }
                    if n < buf.len() {
                        super::forget_read_readiness(&conn.stream);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.state.borrow_mut().abort(1006, "read failed");
                    return;
                }
            }
            let st = conn.state.borrow();
            if !matches!(st.phase, Phase::Open | Phase::Handshaking) || st.read_paused {
                return;
            }
        }
    }

    fn on_data(&self, conn: &Conn, data: &[u8]) {
        let mut st = conn.state.borrow_mut();
        st.last_recv = self.now();
        let fed = st.feed(data);
        if !fed.to_send.is_empty() {
            st.queue(Bytes::from(fed.to_send));
        }
        let mut events = Vec::new();
        if fed.opened {
            st.phase = Phase::Open;
            st.announced = true;
            events.push(Event::Opened {
                id: conn.id,
                transport: st.transport,
                wire: st.wire,
                peer: conn.peer.to_string(),
            });
        }
        if !fed.messages.is_empty() {
            self.shared.stats.frames_in.fetch_add(fed.messages.len(), Relaxed);
            events.push(Event::Messages {
                id: conn.id,
                messages: fed.messages,
            });
        }
        if let Some((code, reason)) = fed.close {
            st.end(code, &reason);
        }
        let write = st.has_output() || st.phase == Phase::Closing;
        drop(st);
        self.shared.emit(events);
        if write {
            self.flush(conn);
        }
    }

    /// Ciphertext read from a TLS connection: what it decrypts goes to [`Self::on_data`], and the records it
    /// calls for (handshake, alerts) are written.
    fn on_tls_data(&self, conn: &Conn, data: &[u8]) {
        let mut plain = self.plain_buf.borrow_mut();
        plain.clear();
        let received = {
            let mut st = conn.state.borrow_mut();
            let Some(tls) = st.tls.as_deref_mut() else { return };
            tls.receive(data, &mut plain)
        };
        if !plain.is_empty() {
            self.on_data(conn, &plain);
        }
        match received {
            Ok(true) => self.flush(conn),
            Ok(false) => conn.state.borrow_mut().abort(1006, "connection closed by the client"),
            Err(_) => {
                let mut st = conn.state.borrow_mut();
                if let Some(tls) = st.tls.as_deref_mut() {
                    let _ = tls.send(&conn.stream); // the alert saying why, if the socket takes it now
                }
                st.abort(1006, "TLS failed");
            }
        }
    }

    /// The connection's task has ended: forget it, and tell Python if it knew it.
    fn forget(&self, conn: &Conn) {
        self.conns.borrow_mut().remove(&conn.id);
        self.wheel.borrow_mut().cancel(conn.id);
        self.shared.stats.connections.fetch_sub(1, Relaxed);
        let st = conn.state.borrow();
        if st.announced {
            self.shared.emit([Event::Closed {
                id: conn.id,
                code: st.close_code,
                reason: st.close_reason.clone(),
            }]);
        }
    }

    // liveness

    fn tick(&self) {
        let now = self.now();
        let mut expired = std::mem::take(&mut *self.expired.borrow_mut());
        self.wheel.borrow_mut().advance(now, &mut expired);
        for id in expired.drain(..) {
            if let Some(conn) = self.conn(id) {
                self.check(&conn, now);
            }
        }
        *self.expired.borrow_mut() = expired;
    }

    /// A connection's timer fired: close it if it is silent or never logged in, send a heartbeat if we
    /// have been silent, and arm the timer for the next thing due.
    fn check(&self, conn: &Conn, now: u64) {
        let cfg = &self.config;
        let mut st = conn.state.borrow_mut();
        match st.phase {
            Phase::Done => return,
            Phase::Closing => {
                let code = st.close_code;
                st.abort(code, "");
                conn.notify.notify_one();
                return;
            }
            Phase::Handshaking | Phase::Open => {}
        }
        if !st.authenticated && now.saturating_sub(st.opened_at) >= cfg.auth_timeout_ms {
            drop(st);
            self.close(conn, 1008, "authentication timeout");
            return;
        }
        let mut deadline = if st.authenticated {
            u64::MAX
        } else {
            st.opened_at + cfg.auth_timeout_ms
        };
        let hb = cfg.heartbeat_ms;
        if hb > 0 {
            let silent = now.saturating_sub(st.last_recv);
            // GlideIM closes a client silent for more than `heartbeat_lost_limit` windows (4 x 30 s).
            if silent >= hb * (cfg.heartbeat_lost_limit + 1) {
                drop(st);
                self.close(conn, 1000, "heartbeat timeout");
                return;
            }
            if st.phase == Phase::Open && now.saturating_sub(st.last_sent) >= hb {
                if let Ok(frame) = self.heartbeat.frame(st.wire) {
                    st.queue(frame);
                }
                st.last_sent = now;
            }
            deadline = deadline
                .min(st.last_recv + hb * (silent / hb + 1))
                .min(st.last_sent + hb);
        }
        let write = st.has_output();
        drop(st);
        if deadline != u64::MAX {
            self.wheel.borrow_mut().insert(conn.id, deadline.max(now + cfg.tick_ms));
        }
        if write {
            self.flush(conn);
        }
    }

    async fn shutdown(&self) {
        self.stopping.set(true);
        for listener in self.listeners.borrow_mut().drain(..) {
            listener.abort();
        }
        let conns: Vec<Rc<Conn>> = self.conns.borrow().values().cloned().collect();
        for conn in &conns {
            self.close(conn, 1001, "server shutting down");
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.conns.borrow().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn ticker(io: Rc<Io>) {
    let mut interval = tokio::time::interval(Duration::from_millis(io.config.tick_ms.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        io.tick();
    }
}

async fn accept_loop(io: Rc<Io>, listener: TcpListener, transport: Transport) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if io.stopping.get() {
                    return;
                }
                io.add(stream, peer, transport);
            }
            // Out of descriptors or memory for a moment: the connection waits in the backlog meanwhile.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Wait until Python has taken the queued events (or at once if it already has).
async fn room(io: &Io) {
    let notified = io.shared.room.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if io.shared.too_many_events(io.config.max_pending_events) {
        notified.await;
    }
}

/// One connection's task: reads, and writes the queue the socket would not take at once.
async fn serve(io: Rc<Io>, conn: Rc<Conn>) {
    loop {
        let (read, write) = {
            let st = conn.state.borrow();
            if st.phase == Phase::Done {
                break;
            }
            (
                matches!(st.phase, Phase::Open | Phase::Handshaking) && !st.read_paused,
                st.blocked,
            )
        };
        // select! builds the future of every branch, enabled or not, and an idle connection's task keeps the
        // largest set it can wait on in memory: the common waits get selects of their own, and the rare one
        // (the socket would not take our writes) lives on the heap while it lasts.
        let throttled = read && io.shared.too_many_events(io.config.max_pending_events);
        if write {
            Box::pin(blocked(&io, &conn, read, throttled)).await;
        } else if throttled {
            tokio::select! {
                () = room(&io) => {}
                () = conn.notify.notified() => {}
            }
        } else if read {
            tokio::select! {
                biased;
                ready = conn.stream.readable() => readable(&io, &conn, ready),
                () = conn.notify.notified() => {}
            }
        } else {
            conn.notify.notified().await;
        }
    }
    io.forget(&conn);
}

/// A connection whose writes wait for the socket: writability, and reads (or room for them) meanwhile.
async fn blocked(io: &Io, conn: &Conn, read: bool, throttled: bool) {
    tokio::select! {
        biased;
        ready = conn.stream.writable() => match ready {
            Ok(()) => {
                conn.state.borrow_mut().blocked = false;
                io.flush(conn);
            }
            Err(_) => conn.state.borrow_mut().abort(1006, "write failed"),
        },
        ready = conn.stream.readable(), if read && !throttled => readable(io, conn, ready),
        () = room(io), if throttled => {}
        () = conn.notify.notified() => {}
    }
}

/// The socket has something to read (or failed).
fn readable(io: &Io, conn: &Conn, ready: io::Result<()>) {
    match ready {
        Ok(()) => io.read_ready(conn),
        Err(_) => conn.state.borrow_mut().abort(1006, "read failed"),
    }
}
