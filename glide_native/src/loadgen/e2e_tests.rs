//! Whole runs against a small in-process relay server speaking the same protocol, on loopback: the client
//! side end to end (handshake, login, chat, both acks, accounting, termination) and its failure paths.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::frame::accept_key;
use super::{start, Config, Snapshot};

#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// GlideIM's 1:1 two-ack relay.
    Relay,
    /// Delivers every chat twice.
    Duplicating,
    /// Acks chats but never delivers them.
    Blackhole,
    /// Answers api.auth with api.failed.
    RejectLogin,
    /// Never answers api.auth.
    SilentLogin,
    /// Closes each connection right after the login reply.
    CloseAfterLogin,
    /// Sends a masked frame (forbidden from a server) after the login reply.
    MaskedFrame,
}

type Peers = Rc<RefCell<HashMap<String, mpsc::UnboundedSender<Vec<u8>>>>>;

fn server_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x81];
    if payload.len() < 126 {
        v.push(payload.len() as u8);
    } else {
        v.push(126);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// Takes one masked client frame off `buf`: `(opcode, payload)`.
fn client_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, head) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        126 => return None,
        127 => panic!("test frames are small"),
        n => (n as usize, 2),
    };
    assert!(buf[1] & 0x80 != 0, "client frames must be masked");
    if buf.len() < head + 4 + len {
        return None;
    }
    let mask = [buf[head], buf[head + 1], buf[head + 2], buf[head + 3]];
    let payload = buf[head + 4..head + 4 + len]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let op = buf[0] & 0x0F;
    buf.drain(..head + 4 + len);
    Some((op, payload))
}

async fn connection(stream: tokio::net::TcpStream, mode: Server, peers: Peers) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let key = loop {
        let n = rd.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            let line = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"))
                .unwrap();
            break line.split_once(':').unwrap().1.trim().to_owned();
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    let mut first = response.into_bytes();
    first.extend(server_frame(
        br#"{"ver":1,"action":"hello","data":{"heartbeat_interval":30}}"#,
    ));
    tokio::task::spawn_local(async move {
        if wr.write_all(&first).await.is_err() {
            return;
        }
        while let Some(bytes) = rx.recv().await {
            if bytes.is_empty() || wr.write_all(&bytes).await.is_err() {
                return; // empty = close
            }
        }
    });
    let send = |to: &mpsc::UnboundedSender<Vec<u8>>, v: Value| {
        let _ = to.send(server_frame(v.to_string().as_bytes()));
    };
    let mut me: Option<String> = None;
    let mut mid = 0u64;
    loop {
        while let Some((op, payload)) = client_frame(&mut buf) {
            if op == 0x8 {
                return;
            }
            let msg: Value = serde_json::from_slice(&payload).expect("clients send JSON");
            let seq = msg["seq"].as_u64().unwrap_or(0);
            let data = &msg["data"];
            match msg["action"].as_str().unwrap_or("") {
                "api.auth" => match mode {
                    Server::RejectLogin => send(&tx, json!({"ver":1,"seq":seq,"action":"api.failed","data":"no"})),
                    Server::SilentLogin => {}
                    _ => {
                        let token = data["Token"].as_str().unwrap().to_owned();
                        peers.borrow_mut().insert(token.clone(), tx.clone());
                        me = Some(token);
                        send(&tx, json!({"ver":1,"seq":seq,"action":"api.success","data":{}}));
                        if mode == Server::CloseAfterLogin {
                            let _ = tx.send(Vec::new());
                        }
                        if mode == Server::MaskedFrame {
                            let _ = tx.send(vec![0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1]);
                        }
                    }
                },
                "message.chat" => {
                    mid += 1;
                    let from = me.clone().unwrap_or_default();
                    let to = msg["to"].as_str().unwrap_or("").to_owned();
                    let m = format!("{from}{mid}");
                    send(
                        &tx,
                        json!({"ver":1,"action":"ack.message","data":{"cliMid":data["cliMid"],"mid":m}}),
                    );
                    let chat = json!({"ver":1,"action":"message.chat","data":{
                        "cliMid":data["cliMid"],"mid":m,"from":from,"to":to,"type":1,
                        "content":data["content"],"sendAt":data["sendAt"]}});
                    let receiver = peers.borrow().get(&to).cloned();
                    match (receiver, mode) {
                        (_, Server::Blackhole) => {}
                        (Some(r), Server::Duplicating) => {
                            send(&r, chat.clone());
                            send(&r, chat);
                        }
                        (Some(r), _) => send(&r, chat),
                        (None, _) => send(&tx, json!({"ver":1,"action":"ack.notify","data":{"mid":m}})),
                    }
                }
                "ack.request" => {
                    let sender = peers.borrow().get(data["from"].as_str().unwrap_or("")).cloned();
                    if let Some(s) = sender {
                        send(
                            &s,
                            json!({"ver":1,"action":"ack.notify","data":{"mid":data["mid"],"from":me}}),
                        );
                    }
                }
                _ => {}
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Starts a fake server on its own thread; returns its URL.
fn serve(mode: Server) -> String {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let peers: Peers = Rc::default();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::task::spawn_local(connection(stream, mode, peers.clone()));
            }
        });
    });
    format!("ws://127.0.0.1:{port}/ws")
}

/// Uids double as tokens: the fake server logs a client in as whatever its token says.
fn config(url: &str, clients: usize, messages: u32) -> Config {
    serde_json::from_value(json!({
        "url": url,
        "users": (0..clients).map(|i| json!({"uid": format!("u{i}"), "token": format!("u{i}")})).collect::<Vec<_>>(),
        "messages": messages,
        "interval_ms": [1, 3],
        "connect_interval_ms": 1.0,
        "grace_ms": 1000,
        "login_timeout_ms": 1000,
        "max_duration_ms": 20000,
        "seed": 7,
    }))
    .unwrap()
}

fn run(cfg: Config) -> Snapshot {
    let handle = start(cfg).expect("valid config");
    handle
        .wait(Duration::from_secs(30))
        .expect("the run bounds itself")
        .expect("runtime ok")
}

#[test]
fn full_two_phase_ack_flow_delivers_everything_once() {
    let url = serve(Server::Relay);
    let s = run(config(&url, 6, 20));
    assert!(s.r#final && s.error.is_none(), "{:?}", s.error);
    let c = &s.counters;
    assert_eq!(
        (c.logged_in, c.sent, c.acked, c.delivered, c.receipts),
        (6, 120, 120, 120, 120)
    );
    assert_eq!(
        (c.duplicates, c.misrouted, c.reordered, c.foreign, c.errors),
        (0, 0, 0, 0, 0)
    );
    assert_eq!((s.lost, s.unacked), (Some(0), Some(0)));
    assert_eq!(s.delivery_rate, 1.0);
    assert_eq!(s.latency.count, 120);
    // Frames: per message the sender writes the chat and the receiver its ack.request.
    assert!(c.frames_out >= 6 + 240, "{}", c.frames_out);
    assert!(c.frames_in >= 6 + 360, "{}", c.frames_in);
    assert_eq!(c.online, 0, "every connection closed at the end");
}

#[test]
fn duplicates_are_counted_not_delivered_twice() {
    let url = serve(Server::Duplicating);
    let s = run(config(&url, 4, 5));
    assert_eq!(s.counters.delivered, 20);
    assert_eq!(s.counters.duplicates, 20);
    assert_eq!(s.lost, Some(0));
}

#[test]
fn undelivered_messages_are_lost_after_the_grace_period() {
    let url = serve(Server::Blackhole);
    let s = run(config(&url, 3, 4));
    assert_eq!((s.counters.sent, s.counters.acked, s.counters.delivered), (12, 12, 0));
    assert_eq!(s.lost, Some(12));
    assert_eq!(s.delivery_rate, 0.0);
}

#[test]
fn refused_logins_end_the_run_with_an_explanation() {
    let url = serve(Server::RejectLogin);
    let s = run(config(&url, 3, 4));
    assert_eq!(s.errors_by_kind.get("login_failed"), Some(&3));
    assert_eq!(s.counters.sent, 0);
    assert!(s.error.as_deref().unwrap_or("").contains("0 of 3"), "{:?}", s.error);
}

#[test]
fn silent_server_times_logins_out() {
    let url = serve(Server::SilentLogin);
    let s = run(config(&url, 2, 1));
    assert_eq!(s.errors_by_kind.get("login_timeout"), Some(&2));
}

#[test]
fn server_closing_connections_is_an_error_and_the_run_still_ends() {
    let url = serve(Server::CloseAfterLogin);
    let s = run(config(&url, 3, 50));
    assert_eq!(
        s.errors_by_kind.get("closed_by_server").copied().unwrap_or(0),
        3,
        "{:?}",
        s.errors_by_kind
    );
    assert!(s.counters.delivered < 150);
}

#[test]
fn protocol_violations_are_errors_not_panics() {
    let url = serve(Server::MaskedFrame);
    let s = run(config(&url, 2, 3));
    assert_eq!(s.errors_by_kind.get("protocol"), Some(&2), "{:?}", s.errors_by_kind);
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = run(config(&format!("ws://127.0.0.1:{port}/ws"), 2, 1));
    assert_eq!(s.errors_by_kind.get("connect"), Some(&2));
}

#[test]
fn idle_runs_hold_then_close() {
    let url = serve(Server::Relay);
    let mut cfg = config(&url, 5, 0);
    cfg.hold_ms = 200;
    let s = run(cfg);
    assert_eq!((s.counters.logged_in, s.counters.sent, s.counters.errors), (5, 0, 0));
    assert_eq!(s.counters.online, 0, "closed after the hold");
    assert!(s.elapsed_s >= 0.2, "held for hold_ms");
}

#[test]
fn stop_ends_a_long_run_early() {
    let url = serve(Server::Relay);
    let mut cfg = config(&url, 2, 1_000_000);
    cfg.interval_ms = [50, 50];
    let handle = start(cfg).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    handle.stop();
    let s = handle.wait(Duration::from_secs(10)).expect("stopped").unwrap();
    assert!(s.counters.sent < 1_000_000);
}
