use super::super::codec_proto;
use super::*;
use serde_json::value::RawValue;

/// Split a frame built here into (first header byte, body), checking the header's length field.
fn unframe(wire: Wire, frame: &[u8]) -> (u8, &[u8]) {
    if !wire.is_websocket() {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        return (0, &frame[4..]);
    }
    assert_eq!(frame[1] & 0x80, 0, "server frames are unmasked");
    let (len, body_at) = match frame[1] {
        126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
        127 => (u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize, 10),
        n => (n as usize, 2),
    };
    // The shortest length form is used, as RFC 6455 §5.2 requires.
    assert_eq!(body_at, header_size(wire, len));
    assert_eq!(len, frame.len() - body_at);
    (frame[0], &frame[body_at..])
}

fn chat() -> Envelope {
    let mut env = Envelope::with_json_data(
        1,
        0,
        "message.chat",
        r#"{"cliMid":"9F2C0A1B","mid":1783,"from":"1","to":"2","type":1,"content":"hello","sendAt":1690000000123}"#,
    )
    .unwrap();
    env.from = "1".into();
    env.to = "2".into();
    env
}

fn one(env: &Envelope, wire: Wire) -> Vec<u8> {
    let mut out = Vec::new();
    encode_one(env, wire, &mut out).unwrap();
    out
}

#[test]
fn each_wire_frames_its_codec() {
    let env = chat();
    let json = codec_json::encode_to_vec(&env);
    let proto = codec_proto::encode_to_vec(&env).unwrap();
    assert_eq!(unframe(Wire::WsJson, &one(&env, Wire::WsJson)), (0x81, json.as_slice()));
    assert_eq!(
        unframe(Wire::WsProto, &one(&env, Wire::WsProto)),
        (0x82, proto.as_slice())
    );
    assert_eq!(unframe(Wire::TcpJson, &one(&env, Wire::TcpJson)), (0, json.as_slice()));
    assert_eq!(
        unframe(Wire::TcpProto, &one(&env, Wire::TcpProto)),
        (0, proto.as_slice())
    );
    // Exact bytes for a small one: FIN|text, 7-bit length, Go's JSON.
    let hb = Envelope::with_json_data(1, 0, "heartbeat", "null").unwrap();
    let text = br#"{"ver":1,"action":"heartbeat","data":null}"#;
    let mut want = vec![0x81, text.len() as u8];
    want.extend_from_slice(text);
    assert_eq!(one(&hb, Wire::WsJson), want);
    let mut want = (text.len() as u32).to_be_bytes().to_vec();
    want.extend_from_slice(text);
    assert_eq!(one(&hb, Wire::TcpJson), want);
}

#[test]
fn websocket_length_boundaries() {
    // `{"action":"…"}` is 13 bytes plus the action.
    for len in [13, 125, 126, 127, 0xFFFF, 0x1_0000, 0x1_0005] {
        let env = Envelope::new("a".repeat(len - 13));
        for wire in [Wire::WsJson, Wire::TcpJson] {
            let mut out = b"prefix".to_vec();
            encode_one(&env, wire, &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            let (_, body) = unframe(wire, &out[6..]);
            assert_eq!(body.len(), len);
            assert_eq!(codec_json::decode(body).unwrap(), env);
        }
        let f = fanout(&env, &[Wire::WsJson, Wire::TcpJson, Wire::WsProto, Wire::TcpProto]).unwrap();
        for (wire, frame) in &f.frames {
            assert_eq!(*frame, one(&env, *wire), "{wire:?} at {len}");
        }
    }
}

#[test]
fn fanout_encodes_each_variant_once() {
    let env = chat();
    let wires = [
        Wire::WsJson,
        Wire::TcpProto,
        Wire::WsJson,
        Wire::WsJson,
        Wire::TcpJson,
        Wire::TcpProto,
        Wire::WsProto,
    ];
    let f = fanout(&env, &wires).unwrap();
    let order: Vec<Wire> = f.frames.iter().map(|(w, _)| *w).collect();
    assert_eq!(order, [Wire::WsJson, Wire::TcpProto, Wire::TcpJson, Wire::WsProto]);
    assert_eq!(f.slots, [0, 1, 0, 0, 2, 1, 3]);
    for (i, wire) in wires.iter().enumerate() {
        assert_eq!(f.frame_for(i).unwrap(), one(&env, *wire).as_slice());
        assert_eq!(f.frames[f.slots[i]].0, *wire);
    }
    assert_eq!(f.frame_for(wires.len()), None);

    let many = vec![Wire::TcpJson; 1000];
    let f = fanout(&env, &many).unwrap();
    assert_eq!(f.frames.len(), 1);
    assert!(f.slots.iter().all(|&s| s == 0));

    assert_eq!(fanout(&env, &[]).unwrap(), Fanout::default());
}

#[test]
fn every_variant_combination_matches_encode_one() {
    let env = chat();
    for mask in 1u32..16 {
        let wires: Vec<Wire> = Wire::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, w)| *w)
            .collect();
        let mut reversed = wires.clone();
        reversed.reverse();
        for list in [wires, reversed] {
            let f = fanout(&env, &list).unwrap();
            assert_eq!(f.frames.len(), list.len());
            for (wire, frame) in &f.frames {
                assert_eq!(*frame, one(&env, *wire));
            }
        }
    }
}

#[test]
fn protobuf_failure_fails_only_when_protobuf_is_needed() {
    let mut env = Envelope::new("message.cli");
    env.data = Some(RawValue::from_string("[1e400]".to_owned()).unwrap());
    assert!(fanout(&env, &[Wire::WsJson, Wire::TcpJson]).is_ok());
    assert!(fanout(&env, &[Wire::WsJson, Wire::TcpProto]).is_err());
    let mut out = b"keep".to_vec();
    assert!(encode_one(&env, Wire::WsProto, &mut out).is_err());
    assert_eq!(out, b"keep");
}

#[test]
fn wire_properties() {
    assert_eq!(Wire::ALL.iter().filter(|w| w.is_proto()).count(), 2);
    assert_eq!(Wire::ALL.iter().filter(|w| w.is_websocket()).count(), 2);
    assert!(Wire::WsProto.is_proto() && Wire::WsProto.is_websocket());
    assert!(!Wire::TcpJson.is_proto() && !Wire::TcpJson.is_websocket());
}
