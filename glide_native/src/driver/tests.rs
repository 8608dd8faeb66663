//! The driver over real loopback sockets, with plain blocking clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::core::envelope::Envelope;

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode, 0x80 | u8::try_from(payload.len()).unwrap()];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

fn start(config: Config) -> (Driver, SocketAddr) {
    let driver = Driver::start(config).unwrap();
    let addr = driver.listen(Transport::Ws, "127.0.0.1:0".parse().unwrap()).unwrap();
    (driver, addr)
}

/// Events until `done` says enough (or a 5 s timeout fails the test).
fn events_until(driver: &Driver, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut all = Vec::new();
    while !done(&all) {
        assert!(Instant::now() < deadline, "timed out; events so far: {all:?}");
        all.extend(driver.take_events());
        std::thread::sleep(Duration::from_millis(2));
    }
    all
}

fn open_ws(addr: SocketAddr) -> TcpStream {
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.write_all(UPGRADE).unwrap();
    let mut response = [0u8; 129];
    client.read_exact(&mut response).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 101"));
    client
}

fn opened_id(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::Opened { id, .. } => Some(*id),
        _ => None,
    })
}

fn outgoing(action: &str) -> Arc<EncodedOnce> {
    Arc::new(EncodedOnce::new(Envelope::new(action)))
}

#[test]
fn websocket_messages_in_and_frames_out() {
    let (mut driver, addr) = start(Config::default());
    let mut client = open_ws(addr);
    let id = opened_id(&events_until(&driver, |e| opened_id(e).is_some())).unwrap();
    let mut read = Vec::new();
    for seq in 1..=3 {
        read.extend(masked(1, format!(r#"{{"action":"a","seq":{seq}}}"#).as_bytes()));
    }
    client.write_all(&read).unwrap();
    let events = events_until(&driver, |e| {
        e.iter()
            .map(|e| match e {
                Event::Messages { messages, .. } => messages.len(),
                _ => 0,
            })
            .sum::<usize>()
            == 3
    });
    let seqs: Vec<i64> = events
        .iter()
        .flat_map(|e| match e {
            Event::Messages { id: got, messages } => {
                assert_eq!(*got, id);
                messages.iter().map(|m| m.as_ref().unwrap().seq).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // two frames in one batch arrive in order
    let frame = outgoing("one");
    driver.submit([
        Command::Send {
            id,
            frame: Arc::clone(&frame),
        },
        Command::Send {
            id,
            frame: outgoing("two"),
        },
    ]);
    let expected = [
        frame.frame(Wire::WsJson).unwrap(),
        outgoing("two").frame(Wire::WsJson).unwrap(),
    ]
    .concat();
    let mut got = vec![0u8; expected.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
    // a server close: close frame, then the socket ends, then Python hears of it
    driver.submit([Command::Close {
        id,
        code: 4001,
        reason: "kicked".to_owned(),
    }]);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[..4], &[0x88, 8, 0x0f, 0xa1]);
    let events = events_until(&driver, |e| e.iter().any(|e| matches!(e, Event::Closed { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Closed { id: got, code: 4001, .. } if *got == id)));
    driver.stop();
    assert!(!driver.is_running());
}

#[test]
fn tcp_connections_open_at_once_and_frame_by_length() {
    let mut driver = Driver::start(Config::default()).unwrap();
    let addr = driver.listen(Transport::Tcp, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let id = opened_id(&events_until(&driver, |e| opened_id(e).is_some())).unwrap();
    let body = br#"{"action":"x","seq":7}"#;
    let mut read = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    read.extend_from_slice(body);
    client.write_all(&read[..5]).unwrap(); // cut anywhere
    client.write_all(&read[5..]).unwrap();
    let events = events_until(&driver, |e| e.iter().any(|e| matches!(e, Event::Messages { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Messages { id: got, messages } if *got == id
        && messages[0].as_ref().unwrap().seq == 7)));
    driver.submit([Command::Send {
        id,
        frame: outgoing("pong"),
    }]);
    let expected = outgoing("pong").frame(Wire::TcpJson).unwrap();
    let mut got = vec![0u8; expected.len()];
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
    drop(client); // the client goes away: Python hears of it
    events_until(&driver, |e| {
        e.iter()
            .any(|e| matches!(e, Event::Closed { id: got, .. } if *got == id))
    });
    driver.stop();
}

#[test]
fn a_consumer_too_slow_is_dropped() {
    let config = Config {
        send_buffer_limit: 256 * 1024,
        ..Config::default()
    };
    let (mut driver, addr) = start(config);
    let client = open_ws(addr); // never reads again
    let id = opened_id(&events_until(&driver, |e| opened_id(e).is_some())).unwrap();
    let mut big = Envelope::new("big");
    big.set_data_json(format!("\"{}\"", "x".repeat(60_000))).unwrap();
    let frame = Arc::new(EncodedOnce::new(big));
    for _ in 0..200 {
        driver.submit((0..4).map(|_| Command::Send {
            id,
            frame: Arc::clone(&frame),
        }));
        if driver.stats().slow_consumers.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let events = events_until(&driver, |e| e.iter().any(|e| matches!(e, Event::Closed { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Closed { id: got, .. } if *got == id)));
    drop(client);
    driver.stop();
}

#[test]
fn heartbeats_and_timeouts_on_a_manual_clock() {
    let config = Config {
        heartbeat_ms: 1_000,
        auth_timeout_ms: 500,
        manual_clock: true,
        ..Config::default()
    };
    let (mut driver, addr) = start(config);
    let mut idle = open_ws(addr); // never logs in
    let mut member = open_ws(addr);
    let ids = events_until(&driver, |e| {
        e.iter().filter(|e| matches!(e, Event::Opened { .. })).count() == 2
    });
    let opened: Vec<u64> = ids
        .iter()
        .filter_map(|e| match e {
            Event::Opened { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    driver.submit([Command::Authenticated { id: opened[1] }]);
    driver.submit([Command::Advance { now_ms: 600 }]);
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert_eq!(&rest[..2], &[0x88, 24], "closed with 1008: authentication timeout");
    // the logged-in one gets a heartbeat after a silent window, and is closed after four
    driver.submit([Command::Advance { now_ms: 1_100 }]);
    let heartbeat = outgoing("heartbeat");
    let mut env = Envelope::new("heartbeat");
    env.ver = 1;
    env.data = crate::core::envelope::raw_data("null").ok();
    let expected = EncodedOnce::new(env).frame(Wire::WsJson).unwrap();
    let mut got = vec![0u8; expected.len()];
    member.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
    drop(heartbeat);
    for now in [2_100, 3_100, 4_100, 5_200] {
        driver.submit([Command::Advance { now_ms: now }]);
    }
    let mut rest = Vec::new();
    member.read_to_end(&mut rest).unwrap();
    assert!(
        rest.windows(2).any(|w| w == [0x88, 19]),
        "closed with 1000: heartbeat timeout"
    );
    driver.stop();
}

/// Whether the wake-up descriptor is readable within `wait`.
fn woken(driver: &Driver, wait: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: driver.wake_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(wait.as_millis()).unwrap();
    // SAFETY: one valid pollfd, its count given.
    unsafe { libc::poll(&raw mut fd, 1, millis) == 1 }
}

#[test]
fn quiet_empties_the_wake_up_and_none_comes_until_the_events_are_taken() {
    let (mut driver, addr) = start(Config::default());
    let mut client = open_ws(addr);
    let id = opened_id(&events_until(&driver, |e| opened_id(e).is_some())).unwrap();
    assert!(!woken(&driver, Duration::ZERO));
    let frame = |seq: i64| masked(1, format!(r#"{{"action":"a","seq":{seq}}}"#).as_bytes());
    client.write_all(&frame(1)).unwrap();
    assert!(woken(&driver, Duration::from_secs(5)));
    driver.quiet(); // the loop holds its events: the descriptor is empty, the events stay queued
    assert!(!woken(&driver, Duration::ZERO));
    client.write_all(&frame(2)).unwrap();
    // still armed: the second message wakes nobody (given time to arrive, it would have by now)
    assert!(!woken(&driver, Duration::from_millis(100)));
    let messages = |events: &[Event]| -> Vec<i64> {
        events
            .iter()
            .flat_map(|e| match e {
                Event::Messages { id: got, messages } if *got == id => {
                    messages.iter().map(|m| m.as_ref().unwrap().seq).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    };
    let events = events_until(&driver, |e| messages(e).len() == 2);
    assert_eq!(messages(&events), [1, 2]);
    // taken: re-armed, the next message wakes the loop again
    assert!(!woken(&driver, Duration::ZERO));
    client.write_all(&frame(3)).unwrap();
    assert!(woken(&driver, Duration::from_secs(5)));
    driver.stop();
}
