//! What every client of a run shares: the target, the per-client login payloads, the pacing and the
//! accounting. One thread, so plain `RefCell`s.

use std::cell::RefCell;
use std::time::Duration;

use tokio::time::Instant;

use super::config::Target;
use super::stats::State;

/// Read buffer shared by every client of the run (one thread, reads never overlap).
pub const SCRATCH: usize = 64 * 1024;

/// What every client of a run shares (single-threaded).
pub struct Ctx {
    /// Where the clients connect: client `i` to `targets[i % targets.len()]`.
    pub targets: Vec<Target>,
    /// Local addresses to bind, round-robin.
    pub sources: Vec<std::net::IpAddr>,
    /// Run start: time zero of every timestamp.
    pub base: Instant,
    /// The run's seed.
    pub seed: u64,
    /// Per client: uid as a JSON string literal.
    pub uid_json: Vec<String>,
    /// Per client: the login payload.
    pub login: Vec<Vec<u8>>,
    /// Per client: ticket secret and uid (for GlideIM's send ticket).
    pub tickets: Vec<Option<(String, String)>>,
    /// Group id as a JSON string literal (fan-out runs).
    pub group_json: Option<String>,
    /// Messages per sender.
    pub messages: u32,
    /// Gap between sends, ms.
    pub interval_ms: [u64; 2],
    /// Content padding.
    pub content_len: usize,
    /// Pacing of connects, ms.
    pub connect_interval_ms: f64,
    /// Connect + handshake limit.
    pub connect_timeout: Duration,
    /// Login reply limit.
    pub login_timeout: Duration,
    /// Answer chats with ack.request.
    pub ack_requests: bool,
    /// Client heartbeat period (None: never).
    pub heartbeat: Option<Duration>,
    /// Largest server message.
    pub max_message: usize,
    /// Handshakes in flight.
    pub connecting_limit: Option<tokio::sync::Semaphore>,
    /// Accounting.
    pub state: RefCell<State>,
    /// Shared read buffer.
    pub scratch: RefCell<Vec<u8>>,
    /// Shared JSON build buffer.
    pub json: RefCell<Vec<u8>>,
}

impl Ctx {
    /// The server client `idx` talks to.
    pub fn target(&self, idx: usize) -> &Target {
        &self.targets[idx % self.targets.len()]
    }

    /// µs since the run started.
    pub fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }
}
