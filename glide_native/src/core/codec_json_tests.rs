use super::*;

#[path = "codec_json_vectors.rs"]
mod vectors;
use vectors::{GO_VECTORS, MALFORMED, SERVER_FRAMES};

fn enc(env: &Envelope) -> String {
    String::from_utf8(encode_to_vec(env)).unwrap()
}

fn err(input: &[u8]) -> String {
    decode(input).unwrap_err().message().to_owned()
}

#[test]
fn server_frames_round_trip_byte_exact() {
    for frame in SERVER_FRAMES {
        let env = decode(frame.as_bytes()).unwrap_or_else(|e| panic!("{frame}: {e}"));
        assert_eq!(enc(&env), *frame);
    }
}

#[test]
fn matches_go_output() {
    for (input, go) in GO_VECTORS {
        let env = decode(input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(enc(&env), *go, "input {input}");
    }
}

#[test]
fn literal_client_frames_decode() {
    let env = decode(
        r#"{"action":"authenticate","data":{"credential":"<base64-raw(iv‖AES-CBC(json))>","version":1},"seq":1,"to":null,"extra":null}"#.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (env.ver, env.seq, env.action.as_str(), env.to.as_str()),
        (0, 1, "authenticate", "")
    );
    assert_eq!(
        env.data_json(),
        Some(r#"{"credential":"<base64-raw(iv‖AES-CBC(json))>","version":1}"#)
    );
    assert_eq!(env.extra, None);

    let env = decode(br#"{"action":"api.auth","data":{"Token":"<jwt>"},"seq":1,"to":null,"extra":null}"#).unwrap();
    assert_eq!(env.data_json(), Some(r#"{"Token":"<jwt>"}"#));

    let env = decode(
        r#"{"action":"message.chat","data":{"cliMid":"9F2C0A1B…","content":"hello","from":"1","mid":0,"sendAt":1690000000123,"seq":0,"to":"2","type":1,"status":0},"seq":5,"to":"2","extra":null,"ticket":"3f5e…(40 hex)"}"#.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (env.seq, env.to.as_str(), env.ticket.as_str()),
        (5, "2", "3f5e…(40 hex)")
    );

    // Gen-1: capitalised keys, integer uids in the envelope become decimal strings.
    let env = decode(br#"{"Seq":1,"Action":"api.auth","Data":{"Token":"<jwt>"}}"#).unwrap();
    assert_eq!((env.seq, env.action.as_str()), (1, "api.auth"));
    let env =
        decode(br#"{"Ver":0,"Seq":7,"Action":"message.chat","From":543629,"To":-5,"Data":{"mid":1001}}"#).unwrap();
    assert_eq!((env.from.as_str(), env.to.as_str()), ("543629", "-5"));
    let env = decode(br#"{"action":"x","from":18446744073709551615}"#).unwrap();
    assert_eq!(env.from, "18446744073709551615");
}

#[test]
fn data_is_copied_not_re_escaped() {
    // Go would compact and HTML-escape forwarded data; the payload stays as the sender wrote it.
    let env = decode(br#"{"action":"message.cli","data": { "t" : "<b>\u2028" } ,"to":"2"}"#).unwrap();
    assert_eq!(env.data_json(), Some(r#"{ "t" : "<b>\u2028" }"#));
    assert_eq!(
        enc(&env),
        r#"{"action":"message.cli","to":"2","data":{ "t" : "<b>\u2028" }}"#
    );
}

#[test]
fn broken_surrogates_become_replacement_characters_like_go() {
    let env = decode(br#"{"action":"a\ud800","to":"\udc00x","from":"\ud800\u0041","extra":{"\ud83d":"\ud83d\ude00"}}"#)
        .unwrap();
    assert_eq!(
        (env.action.as_str(), env.to.as_str(), env.from.as_str()),
        ("a\u{fffd}", "\u{fffd}x", "\u{fffd}A")
    );
    assert_eq!(env.extra.unwrap()["\u{fffd}"], "😀");
}

#[test]
fn data_null_is_kept_absent_is_none() {
    let env = decode(br#"{"action":"x","data":null}"#).unwrap();
    assert_eq!(env.data_json(), Some("null"));
    assert_eq!(enc(&env), r#"{"action":"x","data":null}"#);
    let env = decode(br#"{"action":"x"}"#).unwrap();
    assert!(env.data.is_none());
    // A later data key replaces an earlier one, null included.
    assert_eq!(
        decode(br#"{"action":"x","data":1,"DATA":null}"#).unwrap().data_json(),
        Some("null")
    );
    assert_eq!(
        decode(br#"{"action":"x","data":null,"Data":[1]}"#).unwrap().data_json(),
        Some("[1]")
    );
}

#[test]
fn keys_fold_only_like_go() {
    // Go folds KELVIN SIGN and LONG S onto ASCII letters, but not the Turkish dotted/dotless i.
    assert_eq!(
        decode("{\"action\":\"x\",\"tic\u{212a}et\":\"t\"}".as_bytes())
            .unwrap()
            .ticket,
        "t"
    );
    assert_eq!(decode("{\"action\":\"x\",\"\u{17f}eq\":3}".as_bytes()).unwrap().seq, 3);
    assert_eq!(err("{\"act\u{130}on\":\"x\"}".as_bytes()), "missing action");
    assert_eq!(err("{\"act\u{131}on\":\"x\"}".as_bytes()), "missing action");
    // Near misses are unknown keys, not fields.
    let env = decode(br#"{"action":"x","actions":"y","acti":"z","":1,"to_":"q","fromm":"r","extras":5}"#).unwrap();
    assert_eq!(env, Envelope::new("x"));
    // msg and sign are Go struct fields: type-checked, then dropped.
    assert_eq!(
        decode(br#"{"action":"x","msg":"m","sign":"s"}"#).unwrap(),
        Envelope::new("x")
    );
}

#[test]
fn builders_encode_like_go_server() {
    let hello = Envelope::with_json_data(
        1,
        0,
        "hello",
        r#"{"temp_id":"tmp@0b6c1f6e-3f0a-4c1e-9d55-2f4b7c9a1e20","heartbeat_interval":30}"#,
    )
    .unwrap();
    assert_eq!(enc(&hello), SERVER_FRAMES[0]);
    let ok = Envelope::with_json_data(1, 1, "notify.success", "null").unwrap();
    assert_eq!(enc(&ok), r#"{"ver":1,"seq":1,"action":"notify.success","data":null}"#);
    let mut fwd = Envelope::new("message.cli");
    fwd.seq = 11;
    fwd.from = "1".into();
    fwd.to = "2".into();
    fwd.ticket = "<t>".into();
    fwd.extra = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
    assert_eq!(
        enc(&fwd),
        r#"{"seq":11,"action":"message.cli","from":"1","to":"2","ticket":"\u003ct\u003e","extra":{"k":"v"}}"#
    );
    fwd.extra = Some(BTreeMap::new());
    assert!(!enc(&fwd).contains("extra"));
    assert_eq!(enc(&Envelope::default()), r#"{"action":""}"#);
    // Appends, never clears.
    let mut out = b"prefix".to_vec();
    encode(&ok, &mut out);
    assert!(out.starts_with(b"prefix{\"ver\":1"));
}

#[test]
fn malformed_inputs_error() {
    let cases = MALFORMED;
    let wrong: Vec<String> = cases
        .iter()
        .map(|(input, want)| (String::from_utf8_lossy(input), err(input), want))
        .filter(|(_, got, want)| !got.contains(*want))
        .map(|(input, got, want)| format!("{input:?}: got {got:?}, want {want:?}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn deep_nesting_errors_without_overflow() {
    use super::super::envelope::MAX_DATA_DEPTH;
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let frame = |field: &str, value: &str| format!("{{\"action\":\"x\",\"{field}\":{value}}}");
    assert_eq!(
        decode(frame("data", &nest(MAX_DATA_DEPTH)).as_bytes())
            .unwrap()
            .data_json()
            .unwrap()
            .len(),
        64
    );
    for n in [MAX_DATA_DEPTH + 1, 1000, 1_000_000] {
        assert!(err(frame("data", &nest(n)).as_bytes()).starts_with("data: nested deeper than 32 levels"));
        assert!(err(frame("other", &nest(n)).as_bytes()).contains("nested deeper"));
        // Unclosed nesting is both too deep and truncated; either way it errors.
        assert!(decode(frame("data", &"[".repeat(n)).as_bytes()).is_err());
        assert!(err(frame("extra", &nest(n)).as_bytes()).contains("extra: expected an object or null"));
    }
    let objects = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(err(frame("data", &objects).as_bytes()).contains("nested deeper"));
    assert!(err(nest(1_000_000).as_bytes()).contains("expected a JSON object envelope, found '['"));
    let deep_extra = format!("{{\"action\":\"x\",\"extra\":{{\"a\":{}}}}}", nest(1000));
    assert!(err(deep_extra.as_bytes()).contains("extra: expected a string or null, found an array"));
}

#[test]
fn serde_json_recursion_limit_is_128() {
    // Nothing here recurses through serde (data is delimited by serde_json's iterative skipper, and our
    // own recursion stops at MAX_DATA_DEPTH); pinned because anything parsing payloads into a
    // serde_json::Value (e.g. the Python bindings) relies on this limit against stack exhaustion.
    let at = |n: usize| serde_json::from_str::<serde_json::Value>(&format!("{}{}", "[".repeat(n), "]".repeat(n)));
    assert!(at(127).is_ok());
    assert!(at(128).unwrap_err().to_string().contains("recursion limit exceeded"));
}

#[test]
fn encode_then_decode_is_identity() {
    let mut env = Envelope::with_json_data(
        i64::MIN,
        i64::MAX,
        "a\"\\\u{0}\u{1f}<>&\u{2028}\u{2029}\u{7f}é😀",
        r#"{"nested":[1,-2.5e-3,true,false,null,"s\"\u0000"],"e":{}}"#,
    )
    .unwrap();
    env.from = "\u{8}\u{c}\n\r\t".into();
    env.to = "\u{10ffff}".into();
    env.ticket = "0123456789abcdef0123456789abcdef01234567".into();
    env.extra = Some(BTreeMap::from([
        ("<k>".to_owned(), "&v".to_owned()),
        (String::new(), String::new()),
    ]));
    let bytes = encode_to_vec(&env);
    assert_eq!(decode(&bytes).unwrap(), env);
    assert_eq!(decode_str(std::str::from_utf8(&bytes).unwrap()).unwrap(), env);
    for data in ["null", "0", "\"\"", "[]", "{}", "-0", "1E+2", "\"\\ud83d\\ude00\""] {
        let e = Envelope::with_json_data(0, 0, "", data).unwrap();
        assert_eq!(decode(&encode_to_vec(&e)).unwrap(), e, "{data}");
    }
}

#[test]
fn size_hint_covers_unescaped_output() {
    let env = decode(SERVER_FRAMES[15].as_bytes()).unwrap();
    assert!(encoded_len_hint(&env) >= SERVER_FRAMES[15].len());
}

/// Inputs that once crashed or stressed the decoder (from fuzzing, or written by hand to resemble what
/// the fuzzer finds): each must decode or error without panicking, and whatever decodes must survive an
/// encode/decode round trip unchanged.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/json");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        if let Ok(env) = decode(&input) {
            assert_eq!(decode(&encode_to_vec(&env)).as_ref(), Ok(&env), "{}", path.display());
        }
        count += 1;
    }
    assert!(count >= 10, "expected the regression corpus in {}", dir.display());
}
