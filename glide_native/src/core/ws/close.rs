//! WebSocket close status codes (RFC 6455 §7.4 and the IANA registry).

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutdown, browser navigation).
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer violated the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: the endpoint received a data type it cannot accept.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1005: reported locally when a close frame carried no code; never sent on the wire.
pub const NO_STATUS: u16 = 1005;
/// 1006: reported locally when the transport ended without a close frame; never sent on the wire.
pub const ABNORMAL: u16 = 1006;
/// 1007: a message's payload was inconsistent with its type (invalid UTF-8 in a text message).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: the message violates the endpoint's policy.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: the message is too big to process.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server hit an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;
/// 1012: the service is restarting.
pub const SERVICE_RESTART: u16 = 1012;
/// 1013: try again later (overload).
pub const TRY_AGAIN_LATER: u16 = 1013;

/// Whether `code` may appear in a close frame on the wire.
///
/// 1004 is reserved, 1005/1006/1015 are for local reporting only, codes below 1000 are unused, 1016-2999
/// are reserved for future RFCs, 3000-3999 are registered by libraries and 4000-4999 are private use.
/// Anything from 5000 on is outside the range RFC 6455 defines.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_close_code(code), "{code} should be valid");
        }
        for code in [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!is_valid_close_code(code), "{code} should be invalid");
        }
    }
}
