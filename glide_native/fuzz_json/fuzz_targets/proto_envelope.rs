//! Any bytes through the protobuf decoder: no panic; whatever decodes re-encodes (protobuf and JSON) and
//! decodes back to the same envelope.
#![no_main]

use glide_native_fuzz_json::{codec_json, codec_proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(env) = codec_proto::decode(input) else { return };
    let bytes = codec_proto::encode_to_vec(&env).expect("decoded data must re-encode");
    assert_eq!(codec_proto::decode(&bytes).expect("our own protobuf must decode"), env);
    let json = codec_json::encode_to_vec(&env);
    let from_json = codec_json::decode(&json).expect("our own JSON must decode");
    assert_eq!(from_json, env);
});
