//! One simulated client: connect, handshake, log in, then read, answer and send until the run closes.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::config::Target;
use super::ctx::Ctx;
use super::frame::{self, opcode, Message, Reassembler};
use super::proto::{self, Inbound};
use super::rng::Rng;
use super::stats::{ErrKind, Role};
use super::Phase;

/// Unsent bytes past this mean the server stopped reading from us.
const MAX_PENDING_OUT: usize = 8 << 20;
const LOGIN_SEQ: u64 = 1;

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs client `idx` to the end; every outcome lands in the shared state.
pub async fn run(ctx: Rc<Ctx>, idx: usize, mut phase: watch::Receiver<Phase>) {
    let slot = ctx.base + Duration::from_secs_f64(idx as f64 * ctx.connect_interval_ms / 1000.0);
    let started = tokio::select! {
        _ = sleep_until(slot) => true,
        _ = phase.wait_for(|p| *p == Phase::Closing) => false,
    };
    if started {
        ctx.state.borrow_mut().c.connecting += 1;
        let permit = match &ctx.connecting_limit {
            Some(sem) => sem.acquire().await.ok(),
            None => None,
        };
        let outcome = session(&ctx, idx, &mut phase, permit).await;
        let mut st = ctx.state.borrow_mut();
        if let Err(kind) = outcome {
            st.error(kind);
        }
    }
    let mut st = ctx.state.borrow_mut();
    st.sender_done(idx);
    st.alive -= 1;
}

async fn connect(ctx: &Ctx, idx: usize) -> std::io::Result<TcpStream> {
    let stream = match ctx.sources.get(idx % ctx.sources.len().max(1)) {
        Some(ip) => {
            let sock = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.bind(SocketAddr::new(*ip, 0))?;
            sock.connect(ctx.target(idx).addr).await?
        }
        None => TcpStream::connect(ctx.target(idx).addr).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn handshake(target: &Target, stream: &TcpStream, rng: &mut Rng, inbuf: &mut Vec<u8>) -> Result<(), ErrKind> {
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    key_bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    let key = frame::client_key(key_bytes);
    let request = frame::handshake_request(&target.host, &target.path, &key);
    write_all(stream, &request).await.map_err(|_| ErrKind::Handshake)?;
    let mut buf = [0u8; 4096];
    loop {
        stream.readable().await.map_err(|_| ErrKind::Handshake)?;
        match stream.try_read(&mut buf) {
            Ok(0) => return Err(ErrKind::Handshake),
            Ok(n) => inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => return Err(ErrKind::Handshake),
        }
        if let Some(head) = frame::parse_handshake_response(inbuf, &key).map_err(|_| ErrKind::Handshake)? {
            inbuf.drain(..head);
            return Ok(());
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Connection state besides the socket.
struct Conn {
    idx: u32,
    rng: Rng,
    seq: u64,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    reasm: Reassembler,
    logged_in: bool,
    closed: bool,
    sent: u32,
    role: Role,
}

async fn session(
    ctx: &Rc<Ctx>,
    idx: usize,
    phase: &mut watch::Receiver<Phase>,
    permit: Option<tokio::sync::SemaphorePermit<'_>>,
) -> Result<(), ErrKind> {
    let mut conn = Conn {
        idx: idx as u32,
        rng: Rng::new(ctx.seed, idx as u64),
        seq: LOGIN_SEQ,
        inbuf: Vec::new(),
        out: Vec::new(),
        out_pos: 0,
        reasm: Reassembler::default(),
        logged_in: false,
        closed: false,
        sent: 0,
        role: Role::Idle,
    };
    let deadline = Instant::now() + ctx.connect_timeout;
    let connected = timeout_at(deadline, connect(ctx, idx)).await;
    let stream = match connected {
        Ok(Ok(s)) => s,
        _ => return resolve_failure(ctx, ErrKind::Connect),
    };
    match timeout_at(
        deadline,
        handshake(ctx.target(idx), &stream, &mut conn.rng, &mut conn.inbuf),
    )
    .await
    {
        Ok(Ok(())) => {}
        _ => return resolve_failure(ctx, ErrKind::Handshake),
    }
    let login = ctx.login.get(idx).map(Vec::as_slice).unwrap_or_default();
    frame::encode_frame(&mut conn.out, opcode::TEXT, login, conn.rng.mask());
    ctx.state.borrow_mut().c.frames_out += 1;
    let login_deadline = Instant::now() + ctx.login_timeout;
    let result = drive(ctx, &stream, &mut conn, phase, login_deadline, permit).await;
    if !conn.logged_in {
        // Never got in: the attempt is over either way.
        let mut st = ctx.state.borrow_mut();
        st.c.connecting -= 1;
        st.resolved += 1;
        return result.and(Err(ErrKind::LoginTimeout));
    }
    {
        let mut st = ctx.state.borrow_mut();
        st.c.online -= 1;
        if let Some(flag) = st.connected.get_mut(idx) {
            *flag = false;
        }
    }
    // Polite close: a close frame, then FIN (dropping the stream).
    let mut bye = Vec::new();
    frame::encode_frame(&mut bye, opcode::CLOSE, &1000u16.to_be_bytes(), conn.rng.mask());
    let _ = stream.try_write(&bye);
    result
}

fn resolve_failure(ctx: &Ctx, kind: ErrKind) -> Result<(), ErrKind> {
    let mut st = ctx.state.borrow_mut();
    st.c.connecting -= 1;
    st.resolved += 1;
    Err(kind)
}

async fn drive(
    ctx: &Rc<Ctx>,
    stream: &TcpStream,
    conn: &mut Conn,
    phase: &mut watch::Receiver<Phase>,
    login_deadline: Instant,
    mut permit: Option<tokio::sync::SemaphorePermit<'_>>,
) -> Result<(), ErrKind> {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let timer = sleep_until(login_deadline);
    tokio::pin!(timer);
    let heartbeat = sleep_until(far);
    tokio::pin!(heartbeat);
    let mut heartbeat_armed = false;
    let mut next_send: Option<Instant> = None;
    // Whatever followed the handshake response in the same segment.
    if !conn.inbuf.is_empty() {
        let pending = std::mem::take(&mut conn.inbuf);
        feed(ctx, conn, &pending)?;
    }
    flush(ctx, stream, conn)?;
    loop {
        if conn.closed {
            return if *phase.borrow() == Phase::Closing {
                Ok(())
            } else {
                Err(ErrKind::ClosedByServer)
            };
        }
        if conn.logged_in {
            permit.take();
            if let (Some(period), false) = (ctx.heartbeat, heartbeat_armed) {
                // Spread the first beat over one period so that clients do not beat in lockstep.
                let first = conn.rng.range_inclusive(1, period.as_millis() as u64);
                heartbeat.as_mut().reset(Instant::now() + Duration::from_millis(first));
                heartbeat_armed = true;
            }
        }
        let timer_armed = !conn.logged_in || next_send.is_some();
        let want_write = conn.out_pos < conn.out.len();
        tokio::select! {
            r = stream.readable() => {
                r.map_err(|_| ErrKind::Io)?;
                read_ready(ctx, stream, conn)?;
                flush(ctx, stream, conn)?;
            }
            r = stream.writable(), if want_write => {
                r.map_err(|_| ErrKind::Io)?;
                flush(ctx, stream, conn)?;
            }
            () = &mut timer, if timer_armed => {
                if !conn.logged_in {
                    return Err(ErrKind::LoginTimeout);
                }
                send_one(ctx, conn);
                flush(ctx, stream, conn)?;
                next_send = schedule_next(ctx, conn);
                timer.as_mut().reset(next_send.unwrap_or(far));
            }
            () = &mut heartbeat, if heartbeat_armed => {
                conn.seq += 1;
                let beat = format!(r#"{{"action":"heartbeat","seq":{},"data":{{}}}}"#, conn.seq);
                frame::encode_frame(&mut conn.out, opcode::TEXT, beat.as_bytes(), conn.rng.mask());
                ctx.state.borrow_mut().c.frames_out += 1;
                flush(ctx, stream, conn)?;
                heartbeat.as_mut().reset(Instant::now() + ctx.heartbeat.unwrap_or(Duration::from_secs(30)));
            }
            changed = phase.changed() => {
                let now_phase = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Closing };
                match now_phase {
                    Phase::Closing => return Ok(()),
                    Phase::Sending if conn.logged_in && conn.role == Role::Idle => {
                        conn.role = ctx.state.borrow().roles.get(conn.idx as usize).copied().unwrap_or(Role::Idle);
                        if matches!(conn.role, Role::Sender { .. }) && ctx.messages > 0 {
                            let first = conn.rng.range_inclusive(0, ctx.interval_ms[1]);
                            let at = Instant::now() + Duration::from_millis(first);
                            next_send = Some(at);
                            timer.as_mut().reset(at);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn schedule_next(ctx: &Ctx, conn: &mut Conn) -> Option<Instant> {
    if conn.sent >= ctx.messages {
        ctx.state.borrow_mut().sender_done(conn.idx as usize);
        return None;
    }
    let gap = conn.rng.range_inclusive(ctx.interval_ms[0], ctx.interval_ms[1]);
    Some(Instant::now() + Duration::from_millis(gap))
}

fn send_one(ctx: &Ctx, conn: &mut Conn) {
    let (to_json, ticket) = match (&ctx.group_json, conn.role) {
        (Some(g), _) => (g.as_str(), None),
        (None, Role::Sender { peer, .. }) => {
            let to = ctx.uid_json.get(peer as usize).map(String::as_str).unwrap_or("\"\"");
            (to, ctx.tickets.get(conn.idx as usize).and_then(Option::as_ref))
        }
        (None, Role::Idle) => return,
    };
    let ticket = ticket.map(|(secret, me)| proto::ticket(secret, me, to_json.trim_matches('"')));
    conn.seq += 1;
    let now = ctx.now_us();
    let mut json = ctx.json.borrow_mut();
    json.clear();
    proto::chat(
        &mut json,
        &proto::Chat {
            action: if ctx.group_json.is_some() {
                "message.group"
            } else {
                "message.chat"
            },
            seq: conn.seq,
            to_json,
            ticket: ticket.as_deref(),
            id: proto::MsgId {
                run: ctx.state.borrow().run,
                sender: conn.idx,
                n: conn.sent,
            },
            sent_us: now,
            send_at_ms: wall_ms(),
            min_content: ctx.content_len,
        },
    );
    frame::encode_frame(&mut conn.out, opcode::TEXT, &json, conn.rng.mask());
    conn.sent += 1;
    let mut st = ctx.state.borrow_mut();
    st.on_sent(now);
    st.c.frames_out += 1;
}

fn flush(ctx: &Ctx, stream: &TcpStream, conn: &mut Conn) -> Result<(), ErrKind> {
    while conn.out_pos < conn.out.len() {
        match stream.try_write(&conn.out[conn.out_pos..]) {
            Ok(n) => {
                conn.out_pos += n;
                ctx.state.borrow_mut().c.bytes_out += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Err(ErrKind::Io),
        }
    }
    if conn.out_pos == conn.out.len() {
        conn.out.clear();
        conn.out_pos = 0;
        if conn.out.capacity() > 64 * 1024 {
            conn.out.shrink_to(4096);
        }
    } else if conn.out.len() - conn.out_pos > MAX_PENDING_OUT {
        return Err(ErrKind::Backpressure);
    }
    Ok(())
}

fn read_ready(ctx: &Ctx, stream: &TcpStream, conn: &mut Conn) -> Result<(), ErrKind> {
    loop {
        let mut scratch = ctx.scratch.borrow_mut();
        match stream.try_read(&mut scratch[..]) {
            Ok(0) => {
                conn.closed = true;
                return Ok(());
            }
            Ok(n) => {
                ctx.state.borrow_mut().c.bytes_in += n as u64;
                let full = n == scratch.len();
                if conn.inbuf.is_empty() {
                    feed(ctx, conn, &scratch[..n])?;
                } else {
                    conn.inbuf.extend_from_slice(&scratch[..n]);
                    let pending = std::mem::take(&mut conn.inbuf);
                    feed(ctx, conn, &pending)?;
                }
                if conn.closed {
                    return Ok(());
                }
                if !full {
                    crate::driver::forget_read_readiness(stream);
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Err(ErrKind::Io),
        }
    }
}

/// Consumes every complete frame of `data`; keeps the incomplete tail in `conn.inbuf`.
fn feed(ctx: &Ctx, conn: &mut Conn, data: &[u8]) -> Result<(), ErrKind> {
    let now = ctx.now_us();
    let mut pos = 0;
    while !conn.closed {
        let Some(rest) = data.get(pos..) else { break };
        match frame::parse_frame(rest, ctx.max_message) {
            Ok(Some((f, used))) => {
                pos += used;
                match conn.reasm.push(f, ctx.max_message).map_err(|_| ErrKind::Protocol)? {
                    Message::Data(_, payload) => on_message(ctx, conn, &payload, now)?,
                    Message::Ping(p) => {
                        frame::encode_frame(&mut conn.out, opcode::PONG, p, conn.rng.mask());
                    }
                    Message::Pong | Message::Pending => {}
                    Message::Close(code) => {
                        let mut reply = Vec::new();
                        if let Some(code) = code {
                            reply.extend_from_slice(&code.to_be_bytes());
                        }
                        frame::encode_frame(&mut conn.out, opcode::CLOSE, &reply, conn.rng.mask());
                        conn.closed = true;
                    }
                }
            }
            Ok(None) => break,
            Err(_) => return Err(ErrKind::Protocol),
        }
    }
    conn.inbuf.clear();
    if let Some(tail) = data.get(pos..) {
        if !conn.closed {
            conn.inbuf.extend_from_slice(tail);
        }
    }
    Ok(())
}

fn on_message(ctx: &Ctx, conn: &mut Conn, payload: &[u8], now_us: u64) -> Result<(), ErrKind> {
    let mut st = ctx.state.borrow_mut();
    st.c.frames_in += 1;
    let msg = match proto::parse_inbound(payload) {
        Ok(m) => m,
        Err(_) => {
            st.error(ErrKind::BadJson);
            return Ok(());
        }
    };
    match msg {
        Inbound::Ignored | Inbound::Other => {}
        Inbound::Success { seq } => {
            if !conn.logged_in && seq == LOGIN_SEQ as i64 {
                conn.logged_in = true;
                st.c.connecting -= 1;
                st.c.online += 1;
                st.c.logged_in += 1;
                st.resolved += 1;
                if let Some(flag) = st.connected.get_mut(conn.idx as usize) {
                    *flag = true;
                }
            }
        }
        Inbound::Failure { seq, .. } => {
            if !conn.logged_in && seq == LOGIN_SEQ as i64 {
                return Err(ErrKind::LoginFailed);
            }
            st.error(ErrKind::ServerError);
        }
        Inbound::Kickout => st.error(ErrKind::Kickout),
        Inbound::Chat {
            group,
            mid,
            from,
            content,
        } => {
            let id = content.as_deref().and_then(proto::parse_content);
            st.on_delivery(conn.idx, id, now_us);
            if !group && ctx.ack_requests {
                if let (Some(mid), Some(from)) = (mid, from) {
                    conn.seq += 1;
                    let mut json = ctx.json.borrow_mut();
                    json.clear();
                    proto::ack_request(&mut json, conn.seq, mid, from);
                    frame::encode_frame(&mut conn.out, opcode::TEXT, &json, conn.rng.mask());
                    st.c.frames_out += 1;
                }
            }
        }
        Inbound::AckMessage { cli_mid } => {
            let id = cli_mid.as_deref().and_then(proto::parse_cli_mid);
            st.on_ack(conn.idx, id);
        }
        Inbound::AckNotify { receipt } => {
            if receipt {
                st.c.receipts += 1;
            } else {
                st.c.offline_notices += 1;
            }
        }
    }
    if conn.out.len() - conn.out_pos > MAX_PENDING_OUT {
        return Err(ErrKind::Backpressure);
    }
    Ok(())
}
