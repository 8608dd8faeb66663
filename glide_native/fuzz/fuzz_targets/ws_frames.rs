//! Arbitrary bytes, in arbitrary chunkings, through `WsServerConn`.
//!
//! Byte 0 of the input picks the mode (bit 0 clear: a valid upgrade request is prefixed so frames are
//! reached; bit 1: a server-initiated close right after the handshake), byte 1 seeds the chunking.
//! The checks live in `core::ws::fuzz_harness` so the regression test runs exactly the same ones.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    _native::core::ws::fuzz_harness::run(data);
});
