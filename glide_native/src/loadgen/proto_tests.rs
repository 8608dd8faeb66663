use super::*;
use serde_json::Value;

fn parse(v: &[u8]) -> Value {
    serde_json::from_slice(v).expect("valid JSON")
}

fn sample(ticket: Option<&str>, min_content: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let to = json_string("42");
    chat(
        &mut out,
        &Chat {
            action: "message.chat",
            seq: 7,
            to_json: &to,
            ticket,
            id: MsgId {
                run: 0xAB,
                sender: 3,
                n: 9,
            },
            sent_us: 123_456,
            send_at_ms: 1_690_000_000_123,
            min_content,
        },
    );
    out
}

#[test]
fn chat_envelope_has_the_sdk_shape_and_our_identity() {
    let v = parse(&sample(None, 0));
    assert_eq!(v["action"], "message.chat");
    assert_eq!(v["seq"], 7);
    assert_eq!(v["to"], "42");
    assert!(v.get("ticket").is_none());
    assert_eq!(v["data"]["cliMid"], "000000ab-3-9");
    assert_eq!(v["data"]["type"], 1);
    assert_eq!(v["data"]["sendAt"], 1_690_000_000_123u64);
    let content = v["data"]["content"].as_str().unwrap();
    assert_eq!(
        parse_content(content),
        Some((
            MsgId {
                run: 0xAB,
                sender: 3,
                n: 9
            },
            123_456
        ))
    );
    assert_eq!(
        parse_cli_mid(v["data"]["cliMid"].as_str().unwrap()),
        Some(MsgId {
            run: 0xAB,
            sender: 3,
            n: 9
        })
    );
}

#[test]
fn padding_reaches_the_requested_size_and_still_parses() {
    let v = parse(&sample(Some("t"), 100));
    let content = v["data"]["content"].as_str().unwrap();
    assert_eq!(content.len(), 100);
    assert_eq!(parse_content(content).unwrap().1, 123_456);
    assert_eq!(v["ticket"], "t");
}

#[test]
fn login_and_ack_envelopes_are_valid_json() {
    let mut out = Vec::new();
    api_auth(&mut out, 1, &json_string("a\"b\\c"));
    let v = parse(&out);
    assert_eq!((v["action"].as_str(), v["seq"].as_i64()), (Some("api.auth"), Some(1)));
    assert_eq!(v["data"]["Token"], "a\"b\\c");

    out.clear();
    authenticate(&mut out, 1, &json_string("cred"));
    let v = parse(&out);
    assert_eq!(v["data"], serde_json::json!({"credential": "cred", "version": 1}));

    out.clear();
    let mid = RawValue::from_string("18446744073709551615".into()).unwrap();
    let from = RawValue::from_string("\"5\"".into()).unwrap();
    ack_request(&mut out, 3, &mid, &from);
    let text = String::from_utf8(out).unwrap();
    // The mid goes back byte for byte, even beyond i64.
    assert!(text.contains(r#""mid":18446744073709551615"#), "{text}");
    assert_eq!(parse(text.as_bytes())["data"]["from"], "5");
}

#[test]
fn ticket_matches_glideim_formula() {
    // hex(sha1("abc" + "1" + hex(sha1("abc" + "2")))), computed with Python's hashlib.
    assert_eq!(ticket("abc", "1", "2"), "8a240374eb538670639276e24f355034fca8e9e3");
}

#[test]
fn ids_from_elsewhere_do_not_parse() {
    for bad in [
        "",
        "hello",
        "zz 1 2 3",
        "ab 1 2",
        "ab -1 2 3",
        "ab 1 2 x",
        "ab 99999999999 2 3",
    ] {
        assert_eq!(parse_content(bad), None, "{bad:?}");
    }
    for bad in ["", "ab-1", "ab-1-2-3", "g-1-2", "9F2C0A1B0000"] {
        assert_eq!(parse_cli_mid(bad), None, "{bad:?}");
    }
}

#[test]
fn classifies_the_server_frames_of_the_protocol() {
    let hello = br#"{"ver":1,"action":"hello","data":{"temp_id":"tmp@x","heartbeat_interval":30}}"#;
    assert!(matches!(parse_inbound(hello).unwrap(), Inbound::Ignored));
    let hb = br#"{"ver":1,"action":"heartbeat","data":null}"#;
    assert!(matches!(parse_inbound(hb).unwrap(), Inbound::Ignored));
    let ok = br#"{"ver":1,"seq":1,"action":"api.success","data":{"Uid":"1"}}"#;
    assert!(matches!(parse_inbound(ok).unwrap(), Inbound::Success { seq: 1 }));
    let failed = br#"{"ver":1,"seq":1,"action":"notify.error","data":"credential expired"}"#;
    assert!(matches!(
        parse_inbound(failed).unwrap(),
        Inbound::Failure { seq: 1, .. }
    ));
    let chat = br#"{"ver":1,"action":"message.chat","data":{"cliMid":"x","mid":1783,"from":"1","to":"2","type":1,"content":"hello","sendAt":1}}"#;
    match parse_inbound(chat).unwrap() {
        Inbound::Chat {
            group,
            mid,
            from,
            content,
        } => {
            assert!(!group);
            assert_eq!(mid.unwrap().get(), "1783");
            assert_eq!(from.unwrap().get(), "\"1\"");
            assert_eq!(content.as_deref(), Some("hello"));
        }
        other => panic!("{other:?}"),
    }
    let ack = br#"{"ver":1,"action":"ack.message","data":{"cliMid":"9F2C","mid":1783}}"#;
    assert!(matches!(parse_inbound(ack).unwrap(), Inbound::AckMessage { cli_mid: Some(c) } if c == "9F2C"));
    let head_ack = br#"{"ver":1,"action":"ack.message","data":{"cli_mid":"9F2C","mid":1783}}"#;
    assert!(matches!(parse_inbound(head_ack).unwrap(), Inbound::AckMessage { cli_mid: Some(c) } if c == "9F2C"));
    let receipt = br#"{"ver":1,"action":"ack.notify","data":{"mid":1783,"from":"1"}}"#;
    assert!(matches!(
        parse_inbound(receipt).unwrap(),
        Inbound::AckNotify { receipt: true }
    ));
    let offline = br#"{"ver":1,"action":"ack.notify","data":{"mid":1783}}"#;
    assert!(matches!(
        parse_inbound(offline).unwrap(),
        Inbound::AckNotify { receipt: false }
    ));
    let kick = br#"{"ver":1,"action":"notify.kickout","data":{"device_id":"2"}}"#;
    assert!(matches!(parse_inbound(kick).unwrap(), Inbound::Kickout));
    let other = br#"{"action":"message.cli","data":{}}"#;
    assert!(matches!(parse_inbound(other).unwrap(), Inbound::Other));
    let escaped = br#"{"action":"message.chat","data":{"content":"a\"b","mid":1,"from":"1"}}"#;
    assert!(matches!(parse_inbound(escaped).unwrap(), Inbound::Chat { content: Some(c), .. } if c == "a\"b"));
}

#[test]
fn hostile_frames_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"action\":5}",
        b"{\"action\":\"message.chat\",\"data\":[1]}",
        b"{\"action\":\"message.chat\",\"data\":{\"content\":7}}",
        b"{\"action\":\"ack.message\",\"data\":\"x\"}",
        b"\xff\xfe",
        b"{\"action\":\"hello\"",
    ] {
        assert!(parse_inbound(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    // Missing data is tolerated: nothing to account, nothing to crash on.
    assert!(matches!(
        parse_inbound(br#"{"action":"message.chat"}"#).unwrap(),
        Inbound::Chat { mid: None, .. }
    ));
}
