//! Any bytes through the JSON decoder: no panic; whatever decodes re-encodes to bytes that decode to the
//! same envelope (and encode to the same bytes); its protobuf form, when it has one, carries the same
//! fields and is stable under a second round trip; fan-out frames equal the single-wire encodings.
#![no_main]

use glide_native_fuzz_json::envelope::Envelope;
use glide_native_fuzz_json::fanout::{encode_one, fanout, Wire};
use glide_native_fuzz_json::{codec_json, codec_proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(env) = codec_json::decode(input) else { return };
    let json = codec_json::encode_to_vec(&env);
    let again = codec_json::decode(&json).expect("our own JSON must decode");
    assert_eq!(again, env);
    assert_eq!(codec_json::encode_to_vec(&again), json);

    let proto = codec_proto::encode_to_vec(&env);
    if let Ok(bytes) = &proto {
        let p = codec_proto::decode(bytes).expect("our own protobuf must decode");
        let fields = |e: &Envelope| {
            (
                e.ver,
                e.seq,
                e.action.clone(),
                e.from.clone(),
                e.to.clone(),
                e.ticket.clone(),
            )
        };
        assert_eq!(fields(&p), fields(&env));
        assert_eq!(p.extra, env.extra);
        assert_eq!(p.data.is_some(), env.data.is_some());
        let bytes2 = codec_proto::encode_to_vec(&p).expect("decoded protobuf data must re-encode");
        assert_eq!(codec_proto::decode(&bytes2).expect("stable"), p);
        // The JSON text of converted data is itself valid JSON within the depth limit.
        codec_json::decode(&codec_json::encode_to_vec(&p)).expect("protobuf-decoded envelope as JSON");
    }

    let wires = [Wire::TcpProto, Wire::WsJson, Wire::WsProto, Wire::TcpJson, Wire::WsJson];
    match fanout(&env, &wires) {
        Ok(f) => {
            for (wire, frame) in &f.frames {
                let mut one = Vec::new();
                encode_one(&env, *wire, &mut one).expect("fan-out succeeded");
                assert_eq!(&one, frame);
            }
        }
        Err(_) => assert!(proto.is_err()),
    }
});
