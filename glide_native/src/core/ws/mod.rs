//! Sans-I/O WebSocket server core (RFC 6455): the HTTP/1.1 upgrade handshake, an incremental frame
//! parser for masked client frames, a builder for unmasked server frames, and [`WsServerConn`], the
//! per-connection state machine that ties them together. Nothing here touches a socket: the driver
//! feeds bytes in and writes out what it is told to.

pub mod close;
pub mod conn;
pub mod encode;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod handshake;
pub mod response;
#[cfg(test)]
mod test_util;

pub use close::is_valid_close_code;
pub use conn::{CloseRequest, WsConfig, WsFeed, WsServerConn, WsState};
pub use encode::{
    encode_binary, encode_close, encode_message, encode_ping, encode_pong, encode_text, frame_header_len,
    ControlTooLong,
};
pub use frame::{FrameParser, OpCode, ProtocolError, WsEvent, WsMessage, MAX_CONTROL_PAYLOAD};
pub use handshake::{accept_key, Handshake, HandshakeDone, HandshakeError, RequestParser, Subprotocol};
pub use response::http_error_response;
