//! The load generator behind `glide bench`: N simulated GlideIM clients on a tokio current-thread
//! runtime on its own OS thread, driven from Python (start / poll / join).
//!
//! Not part of the sans-I/O core: it owns real sockets. It speaks the client side of the wire protocol
//! (masked frames, login, chat, the two-phase ack flow) and measures what the issue asks for: sent,
//! acknowledged, delivered, duplicated, lost, latency, per-second frames and errors.

mod client;
pub mod config;
mod ctx;
pub mod frame;
pub mod hist;
pub mod proto;
pub mod rng;
mod run;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use config::Config;
pub use stats::Snapshot;

/// Phases every client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients connect (paced) and log in.
    Connecting,
    /// Senders send; everyone reads and acknowledges.
    Sending,
    /// Idle runs: connections stay open, heartbeats only.
    Holding,
    /// Close everything.
    Closing,
}

/// State shared with the controlling (Python) thread.
#[derive(Default)]
pub struct Outside {
    stop: AtomicBool,
    latest: Mutex<Option<Snapshot>>,
    result: Mutex<Option<Result<Snapshot, String>>>,
    finished: Condvar,
}

impl Outside {
    fn publish(&self, snap: Snapshot) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(snap);
        }
    }

    fn finish(&self, result: Result<Snapshot, String>) {
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(result);
        }
        self.finished.notify_all();
    }
}

/// A running (or finished) load run.
pub struct Handle {
    outside: Arc<Outside>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Validates `cfg` and starts the run on a new thread.
pub fn start(cfg: Config) -> Result<Handle, String> {
    let (targets, sources) = cfg.validate()?;
    let outside = Arc::new(Outside::default());
    let theirs = outside.clone();
    let thread = std::thread::Builder::new()
        .name("glide-loadgen".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let result = match rt {
                Ok(rt) => {
                    let local = tokio::task::LocalSet::new();
                    Ok(local.block_on(&rt, run::run(cfg, targets, sources, theirs.clone())))
                }
                Err(e) => Err(format!("cannot start the runtime: {e}")),
            };
            theirs.finish(result);
        })
        .map_err(|e| format!("cannot start the load thread: {e}"))?;
    Ok(Handle {
        outside,
        thread: Mutex::new(Some(thread)),
    })
}

impl Handle {
    /// Asks the run to close its connections and finish (returns at once).
    pub fn stop(&self) {
        self.outside.stop.store(true, Ordering::Relaxed);
    }

    /// The latest per-second snapshot (None before the first second).
    pub fn latest(&self) -> Option<Snapshot> {
        self.outside.latest.lock().ok().and_then(|s| s.clone())
    }

    /// Waits up to `timeout` for the result; None if the run is still going.
    pub fn wait(&self, timeout: Duration) -> Option<Result<Snapshot, String>> {
        let guard = self.outside.result.lock().ok()?;
        let (guard, _) = self
            .outside
            .finished
            .wait_timeout_while(guard, timeout, |r| r.is_none())
            .ok()?;
        let result = guard.clone();
        drop(guard);
        if result.is_some() {
            if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
                let _ = t.join();
            }
        }
        result
    }

    /// True once the result is available.
    pub fn finished(&self) -> bool {
        self.outside.result.lock().map(|r| r.is_some()).unwrap_or(true)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // A dropped handle must not leave sockets open behind Python's back.
        self.stop();
        if let Some(t) = self.thread.get_mut().ok().and_then(Option::take) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
#[path = "e2e_tests.rs"]
mod e2e_tests;
