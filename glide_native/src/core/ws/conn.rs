//! [`WsServerConn`]: one server-side WebSocket connection, from the upgrade request to the close
//! handshake, as a state machine the driver feeds socket reads into.

use super::close::NO_STATUS;
use super::encode::{encode_close, write_frame};
use super::frame::{FrameParser, OpCode, ProtocolError, WsEvent, WsMessage};
use super::handshake::{Handshake, HandshakeError, RequestParser, Subprotocol};

/// Per-connection limits and the endpoint path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// The largest data message accepted, all fragments added up; larger ones fail with 1009.
    pub max_message_size: usize,
    /// The largest upgrade request header block accepted; larger ones get a 431.
    pub max_header_size: usize,
    /// The only request path accepted (query excluded); others get a 404. `None` accepts any path.
    pub path: Option<String>,
}

impl Default for WsConfig {
    /// 64 KiB messages, 8 KiB header blocks, any path.
    fn default() -> Self {
        WsConfig {
            max_message_size: 64 * 1024,
            max_header_size: 8 * 1024,
            path: None,
        }
    }
}

/// Why and how the connection ends. The driver writes [`WsFeed::to_send`] first, then closes the
/// transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// The WebSocket close code: the peer's (1005 when its close frame had none) or ours for a
    /// violation (1002, 1007, 1009). For a rejected handshake it is the HTTP status (400, 404, 426,
    /// 431), which never collides with close codes (all at least 1000).
    pub code: u16,
    /// The close reason: the peer's, or the one we sent.
    pub reason: String,
    /// A description of the peer's violation; `None` for an orderly close.
    pub error: Option<String>,
}

/// What one call to [`WsServerConn::feed`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsFeed {
    /// Set exactly once per connection, on the feed that completed the upgrade.
    pub handshake: Option<Handshake>,
    /// Complete data messages in arrival order (text already UTF-8-validated).
    pub messages: Vec<WsMessage>,
    /// Bytes to write: the 101 or error response, pongs, our close frame.
    pub to_send: Vec<u8>,
    /// Set when the connection is over: write `to_send`, then close the transport.
    pub close: Option<CloseRequest>,
    /// Whether at least one pong arrived (a liveness signal; pongs are not messages).
    pub pong_received: bool,
}

impl WsFeed {
    /// True when the feed produced nothing at all (a partial frame, say).
    pub fn is_empty(&self) -> bool {
        self.handshake.is_none()
            && self.messages.is_empty()
            && self.to_send.is_empty()
            && self.close.is_none()
            && !self.pong_received
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsState {
    /// Waiting for (the rest of) the upgrade request.
    Handshaking,
    /// Upgraded: messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; data received meanwhile is dropped.
    Closing,
    /// Over: all further input is ignored.
    Closed,
}

/// One server-side WebSocket connection (sans-I/O).
#[derive(Debug, Clone)]
pub struct WsServerConn {
    state: WsState,
    request: RequestParser,
    frames: FrameParser,
    subprotocol: Option<Subprotocol>,
}

impl WsServerConn {
    /// A connection waiting for its upgrade request.
    pub fn new(config: WsConfig) -> Self {
        WsServerConn {
            state: WsState::Handshaking,
            request: RequestParser::new(config.max_header_size, config.path),
            frames: FrameParser::new(config.max_message_size),
            subprotocol: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> WsState {
        self.state
    }

    /// Whether data may be sent: the handshake is done and no close was sent or received.
    pub fn is_open(&self) -> bool {
        self.state == WsState::Open
    }

    /// The negotiated subprotocol (`None` before the handshake or when none was negotiated).
    pub fn subprotocol(&self) -> Option<Subprotocol> {
        self.subprotocol
    }

    /// The codec in use: the negotiated subprotocol, JSON otherwise.
    pub fn codec(&self) -> Subprotocol {
        self.subprotocol.unwrap_or(Subprotocol::Json)
    }

    /// Consume one read from the transport.
    pub fn feed(&mut self, data: &[u8]) -> WsFeed {
        let mut feed = WsFeed::default();
        let frames = match self.state {
            WsState::Closed => return feed,
            WsState::Open | WsState::Closing => data,
            WsState::Handshaking => match self.request.feed(data) {
                Ok(None) => return feed,
                Ok(Some(done)) => {
                    self.state = WsState::Open;
                    self.subprotocol = done.handshake.subprotocol;
                    self.request = RequestParser::new(0, None);
                    feed.to_send = done.response;
                    feed.handshake = Some(done.handshake);
                    // A client may pipeline its first frames right behind the request.
                    data.get(done.consumed..).unwrap_or_default()
                }
                Err(e) => {
                    self.reject(e, &mut feed);
                    return feed;
                }
            },
        };
        if !frames.is_empty() {
            self.read_frames(frames, &mut feed);
        }
        feed
    }

    /// Start a server-initiated close: returns the close frame to write and moves to
    /// [`WsState::Closing`], where the peer's close reply ends the connection. Before the handshake
    /// completes there is nothing to send and the connection is simply over; when already closing or
    /// closed this returns nothing. Codes that may not be sent are replaced as [`encode_close`]
    /// describes (an empty close payload).
    ///
    /// [`encode_close`]: super::encode::encode_close
    pub fn close(&mut self, code: u16, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        match self.state {
            WsState::Open => {
                encode_close(&mut out, Some(code), reason);
                self.state = WsState::Closing;
            }
            WsState::Handshaking => self.state = WsState::Closed,
            WsState::Closing | WsState::Closed => {}
        }
        out
    }

    fn reject(&mut self, e: HandshakeError, feed: &mut WsFeed) {
        self.state = WsState::Closed;
        self.request = RequestParser::new(0, None);
        feed.to_send = e.response();
        feed.close = Some(CloseRequest {
            code: e.status,
            reason: e.reason.to_owned(),
            error: Some(format!("handshake rejected: {}", e.reason)),
        });
    }

    fn read_frames(&mut self, data: &[u8], feed: &mut WsFeed) {
        // A fresh list per read: kept between reads, its capacity would stay with every idle connection.
        let mut events = Vec::new();
        let result = self.frames.feed(data, &mut events);
        for event in events {
            self.on_event(event, feed);
        }
        if let Err(e) = result {
            self.fail(e, feed);
        }
    }

    fn on_event(&mut self, event: WsEvent, feed: &mut WsFeed) {
        match (event, self.state) {
            (WsEvent::Message(msg), WsState::Open) => feed.messages.push(msg),
            // Control payloads are at most 125 bytes (the parser enforces it), so a pong always fits.
            (WsEvent::Ping(payload), WsState::Open) => write_frame(&mut feed.to_send, OpCode::Pong, &payload),
            (WsEvent::Pong(_), _) => feed.pong_received = true,
            (WsEvent::Close { code, reason }, state) => {
                if state == WsState::Open {
                    // Echo the peer's code; an empty close is answered with an empty close.
                    encode_close(&mut feed.to_send, code, "");
                }
                self.state = WsState::Closed;
                feed.close = Some(CloseRequest {
                    code: code.unwrap_or(NO_STATUS),
                    reason,
                    error: None,
                });
            }
            // After our close frame nothing but the peer's close matters (RFC 6455 §5.5.1).
            (WsEvent::Message(_) | WsEvent::Ping(_), _) => {}
        }
    }

    fn fail(&mut self, e: ProtocolError, feed: &mut WsFeed) {
        if self.state == WsState::Open {
            encode_close(&mut feed.to_send, Some(e.code), e.reason);
        }
        self.state = WsState::Closed;
        feed.close = Some(CloseRequest {
            code: e.code,
            reason: e.reason.to_owned(),
            error: Some(e.reason.to_owned()),
        });
    }
}

#[cfg(test)]
mod tests;
