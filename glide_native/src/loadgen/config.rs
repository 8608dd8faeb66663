//! What a load run does, as handed over from Python (a dict, deserialised with serde).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use serde::Deserialize;

/// One simulated user: its uid and how it logs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user id as the server names it (GlideIM uids are strings on the wire).
    pub uid: String,
    /// A JWT for `api.auth` (glide, im-service).
    #[serde(default)]
    pub token: Option<String>,
    /// A GlideIM credential for `authenticate` (glide b77948d).
    #[serde(default)]
    pub credential: Option<String>,
    /// The credential's `message_deliver_secret`: when set, chats carry GlideIM's send ticket.
    #[serde(default)]
    pub ticket_secret: Option<String>,
}

fn default_interval() -> [u64; 2] {
    [60, 200]
}
fn default_timeout() -> u64 {
    10_000
}
fn default_max_duration() -> u64 {
    3_600_000
}
fn default_true() -> bool {
    true
}
fn default_max_message() -> usize {
    1 << 20
}
fn default_heartbeat() -> u64 {
    30_000
}
fn default_max_connecting() -> usize {
    1000
}

/// A load run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `ws://host:port/path` of the server under test (or give `urls`).
    #[serde(default)]
    pub url: String,
    /// The nodes of one cluster, instead of `url`: client `i` connects to `urls[i % urls.len()]`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// With several `urls`: each sender's peer is connected to another node than its own, so every
    /// chat crosses nodes (default: any online peer).
    #[serde(default)]
    pub cross_node: bool,
    /// One client per entry.
    pub users: Vec<UserSpec>,
    /// Client `i` starts connecting at `i * connect_interval_ms` (0: all at once).
    #[serde(default)]
    pub connect_interval_ms: f64,
    /// At most this many handshakes/logins in flight (0: no limit).
    #[serde(default = "default_max_connecting")]
    pub max_connecting: usize,
    /// Messages each sender sends (0: connect, log in and idle for `hold_ms`).
    #[serde(default)]
    pub messages: u32,
    /// Uniform random gap between two sends of one client, `[min, max]` ms.
    #[serde(default = "default_interval")]
    pub interval_ms: [u64; 2],
    /// Pad each `content` to at least this many bytes.
    #[serde(default)]
    pub content_len: usize,
    /// TCP connect + WebSocket handshake limit per client.
    #[serde(default = "default_timeout")]
    pub connect_timeout_ms: u64,
    /// Login reply limit per client.
    #[serde(default = "default_timeout")]
    pub login_timeout_ms: u64,
    /// After the last send: how long to wait for outstanding deliveries and acks.
    #[serde(default = "default_timeout")]
    pub grace_ms: u64,
    /// Idle runs (`messages == 0`): how long to hold the connections once all are logged in.
    #[serde(default)]
    pub hold_ms: u64,
    /// Hard stop for the whole run, whatever happens.
    #[serde(default = "default_max_duration")]
    pub max_duration_ms: u64,
    /// Local addresses to bind before connecting, round-robin (beyond one address's ephemeral ports).
    #[serde(default)]
    pub source_ips: Vec<String>,
    /// Seed for intervals, peers and masks (default: from the clock).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Answer each received `message.chat` with `ack.request` (the two-phase ack flow).
    #[serde(default = "default_true")]
    pub ack_requests: bool,
    /// Fan-out runs: send `message.group` to this group id instead of 1:1 chats to a random peer.
    #[serde(default)]
    pub group: Option<String>,
    /// Only the first `senders` clients send (default: every client).
    #[serde(default)]
    pub senders: Option<u32>,
    /// Send a `heartbeat` every this many ms once logged in, as GlideIM's clients do (0: never).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Largest server message accepted.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
}

/// Where to connect, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved server address.
    pub addr: SocketAddr,
    /// `Host` header (`host:port`).
    pub host: String,
    /// Request path.
    pub path: String,
}

impl Config {
    /// Checks the run makes sense and resolves the targets; the message says which field is wrong.
    pub fn validate(&self) -> Result<(Vec<Target>, Vec<IpAddr>), String> {
        let targets = match (self.url.is_empty(), self.urls.is_empty()) {
            (false, true) => vec![parse_url(&self.url)?],
            (true, false) => self.urls.iter().map(|u| parse_url(u)).collect::<Result<_, _>>()?,
            _ => return Err("url, urls: give exactly one of them".into()),
        };
        if self.cross_node && targets.len() < 2 {
            return Err("cross_node: needs at least two urls".into());
        }
        if self.users.is_empty() {
            return Err("users: at least one client is needed".into());
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.uid.is_empty() {
                return Err(format!("users[{i}].uid: empty"));
            }
            if u.token.is_some() == u.credential.is_some() {
                return Err(format!("users[{i}]: exactly one of token and credential is needed"));
            }
        }
        let [lo, hi] = self.interval_ms;
        if lo > hi {
            return Err(format!("interval_ms: min {lo} is above max {hi}"));
        }
        if self.messages > 0 && self.group.is_none() && self.users.len() < 2 {
            return Err("users: 1:1 chat needs at least two clients".into());
        }
        if !(self.connect_interval_ms.is_finite() && self.connect_interval_ms >= 0.0) {
            return Err("connect_interval_ms: must be a non-negative number".into());
        }
        if self.max_message_bytes < 1024 {
            return Err("max_message_bytes: at least 1024".into());
        }
        let mut sources = Vec::with_capacity(self.source_ips.len());
        for s in &self.source_ips {
            let ip: IpAddr = s
                .parse()
                .map_err(|_| format!("source_ips: {s:?} is not an IP address"))?;
            if targets.iter().any(|t| ip.is_ipv4() != t.addr.is_ipv4()) {
                return Err(format!("source_ips: {ip} is not of the targets' address family"));
            }
            sources.push(ip);
        }
        Ok((targets, sources))
    }
}

/// Parses `ws://host[:port][/path]` (no TLS: the harness talks to servers on this machine).
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("url: expected ws://host:port/path, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("url: malformed {url:?}"));
    }
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        }
    } else if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("url: cannot resolve {authority:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("url: {authority:?} resolves to nothing"))?;
    Ok(Target {
        addr,
        host: authority.to_owned(),
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(users: usize) -> Config {
        serde_json::from_value(serde_json::json!({
            "url": "ws://127.0.0.1:9/ws",
            "users": (0..users).map(|i| serde_json::json!({"uid": i.to_string(), "token": "t"})).collect::<Vec<_>>(),
            "messages": 3,
        }))
        .unwrap()
    }

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            (t.addr.port(), t.host.as_str(), t.path.as_str()),
            (8080, "127.0.0.1:8080", "/ws")
        );
        assert_eq!(parse_url("ws://127.0.0.1").unwrap().path, "/");
        assert_eq!(parse_url("ws://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(parse_url("ws://[::1]:81/x").unwrap().addr.port(), 81);
        for bad in [
            "http://127.0.0.1/ws",
            "wss://127.0.0.1/ws",
            "ws://",
            "ws:///ws",
            "ws://127.0.0.1:99999/",
            "ws://1.2.3.4/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(cfg(2).validate().is_ok());
        assert!(cfg(1).validate().unwrap_err().contains("two clients"));
        assert!(cfg(0).validate().unwrap_err().contains("users"));
        let mut c = cfg(2);
        c.interval_ms = [5, 1];
        assert!(c.validate().unwrap_err().contains("interval_ms"));
        let mut c = cfg(2);
        c.users[1].credential = Some("c".into());
        assert!(c.validate().unwrap_err().contains("users[1]"));
        let mut c = cfg(2);
        c.source_ips = vec!["nope".into()];
        assert!(c.validate().unwrap_err().contains("source_ips"));
        let mut c = cfg(2);
        c.source_ips = vec!["::1".into()];
        assert!(c.validate().unwrap_err().contains("family"));
        let mut c = cfg(2);
        c.connect_interval_ms = f64::NAN;
        assert!(c.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<Config, _> =
            serde_json::from_value(serde_json::json!({"url": "ws://a/", "users": [], "mesages": 1}));
        assert!(r.is_err());
    }
}
