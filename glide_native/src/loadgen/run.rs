//! The coordinator of one run: spawns the clients, moves the phases on, samples once a second and
//! publishes snapshots for Python.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::client;
use super::config::{Config, Target};
use super::ctx::{Ctx, SCRATCH};
use super::proto;
use super::rng::Rng;
use super::stats::{Role, Snapshot, State};
use super::{Outside, Phase};

const TICK: Duration = Duration::from_millis(20);
/// After Closing: how long client tasks get to write their close frames.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

fn login_payload(user: &super::config::UserSpec) -> Vec<u8> {
    let mut out = Vec::new();
    match (&user.token, &user.credential) {
        (Some(t), _) => proto::api_auth(&mut out, 1, &proto::json_string(t)),
        (None, Some(c)) => proto::authenticate(&mut out, 1, &proto::json_string(c)),
        (None, None) => {}
    }
    out
}

/// A run id no earlier run used: it goes into every cliMid, and a server that deduplicates (glide does)
/// would otherwise take a rerun with the same seed (every saturate step) for resends. The seed only shapes
/// intervals and peers.
fn fresh_run_id(seed: u64) -> u32 {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let nth = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Rng::new(seed ^ nanos ^ u64::from(std::process::id()).rotate_left(32), nth).next_u64() as u32
}

fn build_ctx(cfg: &Config, targets: Vec<Target>, sources: Vec<std::net::IpAddr>, seed: u64) -> Ctx {
    let n = cfg.users.len();
    let run = fresh_run_id(seed);
    Ctx {
        targets,
        sources,
        base: Instant::now(),
        seed,
        uid_json: cfg.users.iter().map(|u| proto::json_string(&u.uid)).collect(),
        login: cfg.users.iter().map(login_payload).collect(),
        tickets: cfg
            .users
            .iter()
            .map(|u| u.ticket_secret.clone().map(|s| (s, u.uid.clone())))
            .collect(),
        group_json: cfg.group.as_deref().map(proto::json_string),
        messages: cfg.messages,
        interval_ms: cfg.interval_ms,
        content_len: cfg.content_len,
        connect_interval_ms: cfg.connect_interval_ms,
        connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        login_timeout: Duration::from_millis(cfg.login_timeout_ms),
        ack_requests: cfg.ack_requests,
        heartbeat: (cfg.heartbeat_ms > 0).then(|| Duration::from_millis(cfg.heartbeat_ms)),
        max_message: cfg.max_message_bytes,
        connecting_limit: (cfg.max_connecting > 0).then(|| tokio::sync::Semaphore::new(cfg.max_connecting)),
        state: RefCell::new(State::new(n, cfg.messages, cfg.group.is_some(), run)),
        scratch: RefCell::new(vec![0; SCRATCH]),
        json: RefCell::new(Vec::with_capacity(512)),
    }
}

/// How senders pick their peer.
#[derive(Clone, Copy)]
enum Peers {
    /// Group runs: no peer, the sender posts to the group.
    Group,
    /// Any other online client.
    Any,
    /// An online client on another node: client `i` is on node `i % nodes`.
    OtherNode { nodes: usize },
}

/// Picks each sender's peer among the logged-in clients (1:1), or marks the senders (groups).
fn assign_roles(st: &mut State, senders: usize, peers: Peers, rng: &mut Rng) {
    let online: Vec<u32> = (0..st.connected.len())
        .filter(|&i| st.connected[i])
        .map(|i| i as u32)
        .collect();
    let mut count = 0;
    for (k, &me) in online.iter().enumerate() {
        if (me as usize) >= senders {
            continue;
        }
        let peer = match peers {
            Peers::Group => me,
            Peers::Any => {
                // Uniform among the other online clients: draw from n-1 slots and skip over ourselves.
                let pick = rng.below(online.len() - 1);
                online[if pick >= k { pick + 1 } else { pick }]
            }
            Peers::OtherNode { nodes } => {
                let away: Vec<u32> = online
                    .iter()
                    .copied()
                    .filter(|&p| p as usize % nodes != me as usize % nodes)
                    .collect();
                if away.is_empty() {
                    continue;
                }
                away[rng.below(away.len())]
            }
        };
        st.roles[me as usize] = Role::Sender { peer, done: false };
        count += 1;
    }
    st.senders_left = count;
    st.members = online.len() as u64;
}

/// Runs the whole load on the current thread's runtime; returns the final snapshot.
pub async fn run(cfg: Config, targets: Vec<Target>, sources: Vec<std::net::IpAddr>, outside: Arc<Outside>) -> Snapshot {
    let cpu0 = thread_cpu_s();
    let seed = cfg.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let nodes = targets.len();
    let ctx = Rc::new(build_ctx(&cfg, targets, sources, seed));
    let n = cfg.users.len();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    for idx in 0..n {
        tokio::task::spawn_local(client::run(ctx.clone(), idx, phase_rx.clone()));
    }
    drop(phase_rx);

    let base = ctx.base;
    let hard_stop = base + Duration::from_millis(cfg.max_duration_ms);
    let connect_deadline = base
        + Duration::from_secs_f64(n as f64 * cfg.connect_interval_ms / 1000.0)
        + Duration::from_millis(cfg.connect_timeout_ms + cfg.login_timeout_ms)
        + Duration::from_secs(2);
    let senders = cfg.senders.map_or(n, |s| (s as usize).min(n));
    let group = cfg.group.is_some();
    let mut rng = Rng::new(seed, u64::MAX - 1);
    let mut phase = Phase::Connecting;
    let mut phase_since = base;
    let mut all_sent_at: Option<Instant> = None;
    let mut next_sample = base + Duration::from_secs(1);
    let mut error: Option<String> = None;

    loop {
        sleep(TICK).await;
        let now = Instant::now();
        let stop = outside.stop.load(Ordering::Relaxed);
        if now >= next_sample {
            let t = (next_sample - base).as_secs_f64();
            let mut st = ctx.state.borrow_mut();
            st.sample(t);
            let mut snap = st.snapshot(phase_name(phase, all_sent_at.is_some()), t, false);
            snap.cpu_s = thread_cpu_s() - cpu0;
            outside.publish(snap);
            next_sample += Duration::from_secs(1);
        }
        if phase == Phase::Closing {
            if ctx.state.borrow().alive == 0 || now >= phase_since + CLOSE_WAIT {
                break;
            }
            continue;
        }
        let mut next = None;
        if stop || now >= hard_stop {
            if now >= hard_stop && !stop {
                error = Some(format!("max_duration_ms ({}) reached", cfg.max_duration_ms));
            }
            next = Some(Phase::Closing);
        } else {
            let mut st = ctx.state.borrow_mut();
            match phase {
                Phase::Connecting if st.resolved as usize >= n || now >= connect_deadline => {
                    let logged = st.connected.iter().filter(|&&b| b).count();
                    if cfg.messages == 0 {
                        next = Some(Phase::Holding);
                    } else if logged < 2 && !group || logged == 0 {
                        error = Some(format!("only {logged} of {n} clients logged in: nothing to send"));
                        next = Some(Phase::Closing);
                    } else {
                        let peers = match (group, cfg.cross_node) {
                            (true, _) => Peers::Group,
                            (false, true) => Peers::OtherNode { nodes },
                            (false, false) => Peers::Any,
                        };
                        assign_roles(&mut st, senders, peers, &mut rng);
                        next = Some(Phase::Sending);
                    }
                }
                Phase::Sending => {
                    if st.senders_left == 0 && all_sent_at.is_none() {
                        all_sent_at = Some(now);
                    }
                    if let Some(t) = all_sent_at {
                        let receipts = cfg.ack_requests && !group;
                        if st.complete(receipts) || now >= t + Duration::from_millis(cfg.grace_ms) {
                            next = Some(Phase::Closing);
                        }
                    }
                }
                Phase::Holding if now >= phase_since + Duration::from_millis(cfg.hold_ms) => {
                    next = Some(Phase::Closing);
                }
                _ => {}
            }
        }
        if let Some(p) = next {
            phase = p;
            phase_since = now;
            let _ = phase_tx.send(p);
        }
    }
    let elapsed = base.elapsed().as_secs_f64();
    let mut st = ctx.state.borrow_mut();
    st.sample(elapsed);
    let mut snap = st.snapshot("done", elapsed, true);
    snap.error = error;
    snap.cpu_s = thread_cpu_s() - cpu0;
    snap
}

/// CPU seconds this thread has used (user + system): what the run itself costs, without the Python
/// process around it.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into a valid, owned struct.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn phase_name(p: Phase, draining: bool) -> &'static str {
    match p {
        Phase::Connecting => "connecting",
        Phase::Sending if draining => "draining",
        Phase::Sending => "sending",
        Phase::Holding => "holding",
        Phase::Closing => "closing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_other_online_clients_and_cover_everyone() {
        let mut st = State::new(6, 1, false, 1);
        st.connected = vec![true, true, false, true, true, true];
        let mut rng = Rng::new(3, 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            assign_roles(&mut st, 6, Peers::Any, &mut rng);
            assert_eq!(st.senders_left, 5);
            for (i, r) in st.roles.iter().enumerate() {
                match r {
                    Role::Sender { peer, .. } => {
                        assert_ne!(*peer as usize, i);
                        assert!(st.connected[*peer as usize]);
                        seen.insert(*peer);
                    }
                    Role::Idle => assert_eq!(i, 2),
                }
            }
        }
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn cross_node_peers_are_online_clients_on_another_node() {
        let mut st = State::new(7, 1, false, 1);
        st.connected = vec![true, true, true, true, false, true, true];
        let mut rng = Rng::new(5, 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            assign_roles(&mut st, 7, Peers::OtherNode { nodes: 3 }, &mut rng);
            assert_eq!(st.senders_left, 6);
            for (i, r) in st.roles.iter().enumerate() {
                if let Role::Sender { peer, .. } = r {
                    assert_ne!(
                        *peer as usize % 3,
                        i % 3,
                        "client {i} on node {} got a peer there",
                        i % 3
                    );
                    assert!(st.connected[*peer as usize]);
                    seen.insert(*peer);
                }
            }
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn a_sender_alone_with_its_node_does_not_send() {
        let mut st = State::new(4, 1, false, 1);
        st.connected = vec![true, false, true, false];
        assign_roles(&mut st, 4, Peers::OtherNode { nodes: 2 }, &mut Rng::new(1, 1));
        assert_eq!(st.senders_left, 0);
        assert!(st.roles.iter().all(|r| *r == Role::Idle));
    }

    #[test]
    fn only_the_first_senders_send() {
        let mut st = State::new(4, 1, true, 1);
        st.connected = vec![true; 4];
        assign_roles(&mut st, 1, Peers::Group, &mut Rng::new(1, 1));
        assert_eq!(st.senders_left, 1);
        assert!(matches!(st.roles[0], Role::Sender { .. }));
        assert!(st.roles[1..].iter().all(|r| *r == Role::Idle));
    }
}
