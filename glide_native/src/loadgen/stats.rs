//! Counters and delivery accounting of one run (owned by the run's single thread), and the snapshot
//! handed to Python.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::hist::{Histogram, Summary};
use super::proto::MsgId;

/// Kinds of errors, counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrKind {
    /// TCP connect failed or timed out.
    Connect,
    /// The WebSocket handshake failed or timed out.
    Handshake,
    /// The server refused the login.
    LoginFailed,
    /// No login reply in time.
    LoginTimeout,
    /// The server closed a logged-in connection before the run ended.
    ClosedByServer,
    /// A read or write failed (reset, broken pipe).
    Io,
    /// The server broke the WebSocket protocol.
    Protocol,
    /// A text frame that is not an envelope.
    BadJson,
    /// `notify.error`, `api.failed`, `notify.forbidden`, `notify.unknown.action`, … after login.
    ServerError,
    /// `notify.kickout`.
    Kickout,
    /// Our unsent data grew past its bound: the server stopped reading.
    Backpressure,
}

const KINDS: [(ErrKind, &str); 11] = [
    (ErrKind::Connect, "connect"),
    (ErrKind::Handshake, "handshake"),
    (ErrKind::LoginFailed, "login_failed"),
    (ErrKind::LoginTimeout, "login_timeout"),
    (ErrKind::ClosedByServer, "closed_by_server"),
    (ErrKind::Io, "io"),
    (ErrKind::Protocol, "protocol"),
    (ErrKind::BadJson, "bad_json"),
    (ErrKind::ServerError, "server_error"),
    (ErrKind::Kickout, "kickout"),
    (ErrKind::Backpressure, "backpressure"),
];

/// Monotonic counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Chat messages sent.
    pub sent: u64,
    /// Distinct messages the server acknowledged (`ack.message`).
    pub acked: u64,
    /// `ack.message` for a message already acknowledged.
    pub duplicate_acks: u64,
    /// `ack.notify` receipts relayed from receivers.
    pub receipts: u64,
    /// `ack.notify` without `from`: the server found the receiver offline.
    pub offline_notices: u64,
    /// Distinct deliveries (message, receiver).
    pub delivered: u64,
    /// A delivery seen again by the same receiver.
    pub duplicates: u64,
    /// A 1:1 message delivered to a client that is not its peer.
    pub misrouted: u64,
    /// A 1:1 message delivered after a later one of the same sender.
    pub reordered: u64,
    /// Chats or acks from elsewhere (another run's inbox replay, other clients).
    pub foreign: u64,
    /// A sender receiving its own group message.
    pub echoes: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Errors of every kind.
    pub errors: u64,
    /// Logins that succeeded.
    pub logged_in: u64,
    /// Connections currently open and logged in.
    pub online: u64,
    /// Connections in connect/handshake/login.
    pub connecting: u64,
}

/// One value per second of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Seconds since the run started.
    pub t: Vec<f64>,
    /// Frames received in that second.
    pub frames_in: Vec<u64>,
    /// Frames sent in that second.
    pub frames_out: Vec<u64>,
    /// Logged-in connections at the end of that second.
    pub online: Vec<u64>,
    /// Errors in that second.
    pub errors: Vec<u64>,
    /// Chats sent in that second.
    pub sent: Vec<u64>,
    /// Deliveries in that second.
    pub delivered: Vec<u64>,
}

/// The role of a client in the send phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Does not send (not logged in, or not among the senders).
    Idle,
    /// Sends to a peer (1:1) or to the group; `done` once it sent everything or died.
    Sender {
        /// Peer client index (1:1); unused for groups.
        peer: u32,
        /// Finished (all sent, or the connection ended).
        done: bool,
    },
}

/// Everything the run accounts.
pub struct State {
    /// Counters.
    pub c: Counters,
    errors: [u64; KINDS.len()],
    /// Delivery latency.
    pub hist: Histogram,
    /// Per-second series.
    pub series: Series,
    last: Counters,
    /// Run nonce (in every message identity).
    pub run: u32,
    messages: u32,
    group: bool,
    /// Per client: logged in and still open.
    pub connected: Vec<bool>,
    /// Group runs: members connected when sending started (each message is due to all but its sender).
    pub members: u64,
    /// Per client: its role in the send phase.
    pub roles: Vec<Role>,
    /// Senders that have not finished.
    pub senders_left: u64,
    /// Clients whose connect/login attempt is over (either way).
    pub resolved: u64,
    /// Client tasks still running.
    pub alive: u64,
    acked_bits: Vec<u64>,
    delivered_bits: Vec<u64>,
    last_n: Vec<i64>,
    group_seen: HashSet<(u32, u32, u32)>,
    /// Run clock (µs) of the first send and of the last delivery.
    pub first_send_us: Option<u64>,
    /// See `first_send_us`.
    pub last_delivery_us: u64,
}

fn bit(bits: &mut [u64], i: usize) -> Option<bool> {
    let word = bits.get_mut(i / 64)?;
    let mask = 1u64 << (i % 64);
    let was = *word & mask != 0;
    *word |= mask;
    Some(was)
}

fn count_bits(bits: &[u64]) -> u64 {
    bits.iter().map(|w| u64::from(w.count_ones())).sum()
}

impl State {
    /// Accounting for `clients` clients sending `messages` each (bitsets sized up front).
    pub fn new(clients: usize, messages: u32, group: bool, run: u32) -> Self {
        let words = (clients * messages as usize).div_ceil(64);
        State {
            c: Counters::default(),
            errors: [0; KINDS.len()],
            hist: Histogram::default(),
            series: Series::default(),
            last: Counters::default(),
            run,
            messages,
            group,
            connected: vec![false; clients],
            members: 0,
            roles: vec![Role::Idle; clients],
            senders_left: 0,
            resolved: 0,
            alive: clients as u64,
            acked_bits: vec![0; words],
            delivered_bits: if group { Vec::new() } else { vec![0; words] },
            last_n: if group { Vec::new() } else { vec![-1; clients] },
            group_seen: HashSet::new(),
            first_send_us: None,
            last_delivery_us: 0,
        }
    }

    fn slot(&self, id: MsgId) -> Option<usize> {
        if id.run != self.run || id.n >= self.messages || id.sender as usize >= self.roles.len() {
            return None;
        }
        Some(id.sender as usize * self.messages as usize + id.n as usize)
    }

    /// Counts an error.
    pub fn error(&mut self, kind: ErrKind) {
        self.c.errors += 1;
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == kind) {
            self.errors[i] += 1;
        }
    }

    /// A chat left client `sender` at `now_us`.
    pub fn on_sent(&mut self, now_us: u64) {
        self.c.sent += 1;
        self.first_send_us.get_or_insert(now_us);
    }

    /// `ack.message` for `id` arrived at client `me`.
    pub fn on_ack(&mut self, me: u32, id: Option<MsgId>) {
        let slot = id.filter(|id| id.sender == me).and_then(|id| self.slot(id));
        match slot.and_then(|s| bit(&mut self.acked_bits, s)) {
            Some(false) => self.c.acked += 1,
            Some(true) => self.c.duplicate_acks += 1,
            None => self.c.foreign += 1,
        }
    }

    /// Client `me` received message `id` sent at `sent_us`, at `now_us`.
    pub fn on_delivery(&mut self, me: u32, id: Option<(MsgId, u64)>, now_us: u64) {
        let Some((id, sent_us)) = id else {
            self.c.foreign += 1;
            return;
        };
        let Some(slot) = self.slot(id) else {
            self.c.foreign += 1;
            return;
        };
        let first = if self.group {
            if id.sender == me {
                self.c.echoes += 1;
                return;
            }
            self.group_seen.insert((me, id.sender, id.n))
        } else {
            match self.roles.get(id.sender as usize) {
                Some(Role::Sender { peer, .. }) if *peer == me => {}
                _ => self.c.misrouted += 1,
            }
            !bit(&mut self.delivered_bits, slot).unwrap_or(true)
        };
        if !first {
            self.c.duplicates += 1;
            return;
        }
        self.c.delivered += 1;
        self.last_delivery_us = self.last_delivery_us.max(now_us);
        self.hist.record(now_us.saturating_sub(sent_us));
        if !self.group {
            if let Some(last) = self.last_n.get_mut(id.sender as usize) {
                if i64::from(id.n) < *last {
                    self.c.reordered += 1;
                } else {
                    *last = i64::from(id.n);
                }
            }
        }
    }

    /// Marks sender `idx` finished (idempotent).
    pub fn sender_done(&mut self, idx: usize) {
        if let Some(Role::Sender { done, .. }) = self.roles.get_mut(idx) {
            if !*done {
                *done = true;
                self.senders_left = self.senders_left.saturating_sub(1);
            }
        }
    }

    /// Deliveries expected for what was acknowledged so far.
    pub fn expected_deliveries(&self) -> u64 {
        if self.group {
            self.c.acked * self.members.saturating_sub(1)
        } else {
            self.c.sent
        }
    }

    /// Everything sent is acknowledged, delivered and (if asked for) receipted.
    pub fn complete(&self, receipts_expected: bool) -> bool {
        let c = &self.c;
        // 1:1: every acknowledged message's bit is also set among deliveries (counts alone would let a
        // misrouted or foreign delivery stand in for a missing one).
        let delivered = if self.group {
            c.delivered >= self.expected_deliveries()
        } else {
            self.lost() == 0
        };
        c.acked >= c.sent && delivered && (!receipts_expected || c.receipts + c.offline_notices >= c.sent)
    }

    /// Appends one second to the series.
    pub fn sample(&mut self, t: f64) {
        let (c, l, s) = (&self.c, &self.last, &mut self.series);
        s.t.push(t);
        s.frames_in.push(c.frames_in - l.frames_in);
        s.frames_out.push(c.frames_out - l.frames_out);
        s.online.push(c.online);
        s.errors.push(c.errors - l.errors);
        s.sent.push(c.sent - l.sent);
        s.delivered.push(c.delivered - l.delivered);
        self.last = self.c.clone();
    }

    /// Stored (acked) messages never delivered: 1:1 from the bitsets; groups from the expected count.
    pub fn lost(&self) -> u64 {
        if self.group {
            return self.expected_deliveries().saturating_sub(self.c.delivered);
        }
        self.acked_bits
            .iter()
            .zip(&self.delivered_bits)
            .map(|(a, d)| u64::from((a & !d).count_ones()))
            .sum()
    }

    /// The snapshot Python sees.
    pub fn snapshot(&self, phase: &'static str, elapsed_s: f64, final_: bool) -> Snapshot {
        let c = self.c.clone();
        let expected = self.expected_deliveries();
        let (lost, unacked) = if final_ {
            (
                Some(self.lost()),
                Some(c.sent.saturating_sub(count_bits(&self.acked_bits))),
            )
        } else {
            (None, None)
        };
        let span_s = match self.first_send_us {
            Some(first) if self.last_delivery_us > first => (self.last_delivery_us - first) as f64 / 1e6,
            _ => 0.0,
        };
        Snapshot {
            phase,
            elapsed_s,
            r#final: final_,
            clients: self.roles.len() as u64,
            senders: self.roles.iter().filter(|r| matches!(r, Role::Sender { .. })).count() as u64,
            expected_deliveries: expected,
            delivery_rate: if expected == 0 {
                0.0
            } else {
                c.delivered as f64 / expected as f64
            },
            lost,
            unacked,
            send_span_s: span_s,
            delivered_per_s: if span_s > 0.0 { c.delivered as f64 / span_s } else { 0.0 },
            errors_by_kind: KINDS
                .iter()
                .zip(self.errors.iter())
                .filter(|(_, &n)| n > 0)
                .map(|((_, name), &n)| (*name, n))
                .collect(),
            latency: self.hist.summary(final_),
            series: self.series.clone(),
            counters: c,
            error: None,
            cpu_s: 0.0,
        }
    }
}

/// A point-in-time view of the run (and, with `final`, its result).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// `connecting`, `sending`, `draining`, `holding`, `closing` or `done`.
    pub phase: &'static str,
    /// Seconds since start.
    pub elapsed_s: f64,
    /// True for the result of a finished run.
    pub r#final: bool,
    /// Clients configured.
    pub clients: u64,
    /// Clients that send.
    pub senders: u64,
    /// Counters.
    #[serde(flatten)]
    pub counters: Counters,
    /// Deliveries expected for what was sent (1:1) or acknowledged (groups).
    pub expected_deliveries: u64,
    /// `delivered / expected_deliveries`.
    pub delivery_rate: f64,
    /// Stored but never delivered (final only).
    pub lost: Option<u64>,
    /// Sent but never acknowledged (final only).
    pub unacked: Option<u64>,
    /// From the first send to the last delivery, seconds.
    pub send_span_s: f64,
    /// `delivered / send_span_s`.
    pub delivered_per_s: f64,
    /// Non-zero error counts by kind.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// Delivery latency.
    pub latency: Summary,
    /// Per-second series.
    pub series: Series,
    /// Why the run could not proceed, if it could not (e.g. fewer than two logins).
    pub error: Option<String>,
    /// CPU seconds the load generator's own thread used since the run started (set by the run).
    pub cpu_s: f64,
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
