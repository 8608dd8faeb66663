//! The GlideIM Gen-2 JSON envelopes the simulated clients send and read (glideim.md §1.5, §2.2).
//!
//! Each message carries its identity in `content` (`"<run> <sender> <n> <sent_us>"`) and `cliMid`
//! (`"<run>-<sender>-<n>"`), so delivery, duplicates and latency are accounted without trusting the
//! server's `mid` (GlideIM's default store hands out Unix *seconds* as mids), and messages left over from
//! an earlier run (replayed from an inbox on login) are recognised as foreign.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha1::{Digest, Sha1};

/// Identity of one simulated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgId {
    /// Run nonce: tells this run's messages from replays of earlier ones.
    pub run: u32,
    /// Sender's client index.
    pub sender: u32,
    /// Sender's message number, from 0.
    pub n: u32,
}

/// JSON string literal for `s` (with quotes and escapes).
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `api.auth` with a JWT (im-service / glide login).
pub fn api_auth(out: &mut Vec<u8>, seq: u64, token_json: &str) {
    let _ = write!(
        Out(out),
        r#"{{"action":"api.auth","seq":{seq},"data":{{"Token":{token_json}}}}}"#
    );
}

/// `authenticate` with a GlideIM credential (glide b77948d login).
pub fn authenticate(out: &mut Vec<u8>, seq: u64, credential_json: &str) {
    let _ = write!(
        Out(out),
        r#"{{"action":"authenticate","seq":{seq},"data":{{"credential":{credential_json},"version":1}}}}"#
    );
}

/// What varies per chat message.
pub struct Chat<'a> {
    /// `message.chat` (1:1) or `message.group`.
    pub action: &'a str,
    /// Envelope seq.
    pub seq: u64,
    /// Target (uid or group id) as a JSON string literal.
    pub to_json: &'a str,
    /// Send ticket (40 hex chars), when the login was a credential with a deliver secret.
    pub ticket: Option<&'a str>,
    /// Identity.
    pub id: MsgId,
    /// Send time on the run's monotonic clock.
    pub sent_us: u64,
    /// Wall-clock ms for `sendAt`.
    pub send_at_ms: u64,
    /// Pad `content` to at least this many bytes.
    pub min_content: usize,
}

/// A chat envelope, TS-SDK shaped: `{action, seq, to, [ticket], data:{cliMid, content, type, sendAt}}`.
pub fn chat(out: &mut Vec<u8>, c: &Chat<'_>) {
    let MsgId { run, sender, n } = c.id;
    let mut w = Out(out);
    let _ = write!(w, r#"{{"action":"{}","seq":{},"to":{}"#, c.action, c.seq, c.to_json);
    if let Some(t) = c.ticket {
        let _ = write!(w, r#","ticket":"{t}""#);
    }
    let _ = write!(w, r#","data":{{"cliMid":"{run:08x}-{sender}-{n}","content":""#);
    let start = w.0.len();
    let _ = write!(w, "{run:08x} {sender} {n} {}", c.sent_us);
    let written = w.0.len() - start;
    if written < c.min_content {
        w.0.push(b' ');
        w.0.resize(w.0.len() + c.min_content - written - 1, b'x');
    }
    let _ = write!(w, r#"","type":1,"sendAt":{}}}}}"#, c.send_at_ms);
}

/// `ack.request` for a received chat: `mid` and `from` echoed as the server sent them.
pub fn ack_request(out: &mut Vec<u8>, seq: u64, mid: &RawValue, from: &RawValue) {
    let (m, f) = (mid.get(), from.get());
    let _ = write!(
        Out(out),
        r#"{{"action":"ack.request","seq":{seq},"to":{f},"data":{{"mid":{m},"from":{f}}}}}"#
    );
}

/// GlideIM's send ticket: `hex(SHA1(secret + sender + hex(SHA1(secret + to))))` (glideim.md §2.6).
pub fn ticket(secret: &str, sender_uid: &str, to: &str) -> String {
    let inner = hex(&Sha1::new().chain_update(secret).chain_update(to).finalize());
    hex(&Sha1::new()
        .chain_update(secret)
        .chain_update(sender_uid)
        .chain_update(inner)
        .finalize())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses the identity out of a received `content`: `(id, sent_us)`.
pub fn parse_content(content: &str) -> Option<(MsgId, u64)> {
    let mut it = content.split(' ');
    let run = u32::from_str_radix(it.next()?, 16).ok()?;
    let sender = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let sent_us = it.next()?.parse().ok()?;
    Some((MsgId { run, sender, n }, sent_us))
}

/// Parses a `cliMid` this harness generated.
pub fn parse_cli_mid(cli_mid: &str) -> Option<MsgId> {
    let mut it = cli_mid.split('-');
    let run = u32::from_str_radix(it.next()?, 16).ok()?;
    let sender = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(MsgId { run, sender, n })
}

struct Out<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChatData<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    mid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    from: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AckData<'a> {
    #[serde(borrow, default, rename = "cliMid", alias = "cli_mid")]
    cli_mid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    from: Option<&'a RawValue>,
}

/// A server frame, classified.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// `hello`, `heartbeat` and other pushes that need nothing.
    Ignored,
    /// `api.success` / `notify.success` (the login reply when `seq` is the login's).
    Success {
        /// Echoed request seq.
        seq: i64,
    },
    /// `api.failed`, `notify.error`, `notify.forbidden`, `notify.unknown.action`, `message.failed.send`.
    Failure {
        /// Echoed request seq (0 when absent).
        seq: i64,
        /// The action name.
        action: Cow<'a, str>,
    },
    /// `notify.kickout`: another login took this session.
    Kickout,
    /// A received `message.chat` / `message.group`.
    Chat {
        /// True for `message.group`.
        group: bool,
        /// Server-assigned mid, raw JSON.
        mid: Option<&'a RawValue>,
        /// Sender uid, raw JSON.
        from: Option<&'a RawValue>,
        /// Content (our identity, if it is one of ours).
        content: Option<Cow<'a, str>>,
    },
    /// `ack.message`: stored; carries our `cliMid`.
    AckMessage {
        /// The `cliMid` of the acknowledged message.
        cli_mid: Option<Cow<'a, str>>,
    },
    /// `ack.notify`: a receipt from the receiver (`from` present) or "receiver offline" (absent).
    AckNotify {
        /// True for a receiver's receipt.
        receipt: bool,
    },
    /// An action this harness does not know.
    Other,
}

/// Classifies one text frame; `Err` for JSON that is not an envelope.
pub fn parse_inbound(payload: &[u8]) -> Result<Inbound<'_>, serde_json::Error> {
    let env: Envelope<'_> = serde_json::from_slice(payload)?;
    let seq = env.seq.unwrap_or(0);
    Ok(match env.action.as_ref() {
        "hello" | "heartbeat" | "notify.state" | "message.group.notify" => Inbound::Ignored,
        "api.success" | "notify.success" => Inbound::Success { seq },
        "api.failed"
        | "notify.error"
        | "notify.forbidden"
        | "notify.unknown.action"
        | "message.failed.send"
        | "notify.auth" => Inbound::Failure {
            seq,
            action: env.action,
        },
        "notify.kickout" => Inbound::Kickout,
        "message.chat" | "message.group" => {
            let group = env.action == "message.group";
            match env.data {
                Some(raw) => {
                    let d: ChatData<'_> = serde_json::from_str(raw.get())?;
                    Inbound::Chat {
                        group,
                        mid: d.mid,
                        from: d.from,
                        content: d.content,
                    }
                }
                None => Inbound::Chat {
                    group,
                    mid: None,
                    from: None,
                    content: None,
                },
            }
        }
        "ack.message" => match env.data {
            Some(raw) => Inbound::AckMessage {
                cli_mid: serde_json::from_str::<AckData<'_>>(raw.get())?.cli_mid,
            },
            None => Inbound::AckMessage { cli_mid: None },
        },
        "ack.notify" => match env.data {
            Some(raw) => {
                let d: AckData<'_> = serde_json::from_str(raw.get())?;
                Inbound::AckNotify {
                    receipt: d.from.is_some_and(|f| f.get() != "null" && f.get() != "\"\""),
                }
            }
            None => Inbound::AckNotify { receipt: false },
        },
        _ => Inbound::Other,
    })
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
