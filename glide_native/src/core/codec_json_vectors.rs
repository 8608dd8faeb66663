//! Test vectors for the JSON codec: literal frames of glideim.md §1.5, Go's output for them, and malformed
//! inputs with the error each must produce.

/// Server frames of glideim.md §1.5 (Gen-2): decoding and re-encoding must give back the exact bytes
/// Go sent.
pub(super) const SERVER_FRAMES: &[&str] = &[
    r#"{"ver":1,"action":"hello","data":{"temp_id":"tmp@0b6c1f6e-3f0a-4c1e-9d55-2f4b7c9a1e20","heartbeat_interval":30}}"#,
    r#"{"ver":1,"seq":1,"action":"notify.success","data":null}"#,
    r#"{"ver":1,"seq":1,"action":"notify.error","data":"credential expired"}"#,
    r#"{"ver":1,"action":"notify.kickout","data":{"device_id":"2"}}"#,
    r#"{"ver":1,"seq":1,"action":"api.success","data":{"Token":"<jwt>","Uid":"1","Device":"","Server":null}}"#,
    r#"{"ver":1,"seq":1,"action":"api.failed","data":"invalid token"}"#,
    r#"{"ver":1,"action":"ack.message","data":{"cliMid":"9F2C0A1B…","mid":1783}}"#,
    r#"{"ver":1,"action":"message.chat","data":{"cliMid":"9F2C0A1B…","mid":1783,"from":"1","to":"2","type":1,"content":"hello","sendAt":1690000000123}}"#,
    r#"{"ver":1,"action":"ack.notify","data":{"mid":1783,"from":"1"}}"#,
    r#"{"ver":1,"action":"ack.notify","data":{"mid":1783}}"#,
    r#"{"ver":1,"seq":5,"action":"notify.forbidden","data":"ticket expired"}"#,
    r#"{"ver":1,"action":"heartbeat","data":null}"#,
    r#"{"ver":1,"seq":7,"action":"notify.unknown.action","data":"message.chat.recall"}"#,
    r#"{"ver":1,"action":"notify.error","data":"message decode error: invalid character …"}"#,
    r#"{"ver":1,"action":"ack.message","data":{"cliMid":"77AB…"}}"#,
    r#"{"seq":9,"action":"message.group","from":"1","to":"the_world_channel","data":{"cliMid":"77AB…","seq":2,"from":"1","to":"the_world_channel","type":1,"content":"Hi","sendAt":1690000001000},"ticket":"…"}"#,
    r#"{"ver":1,"action":"message.group.notify","data":{"from":"system","type":2,"body":{"uid":"1"}}}"#,
    r#"{"ver":1,"action":"message.group.notify","data":{"from":"system","type":5,"body":{"members":["system","1"]}}}"#,
    r#"{"ver":1,"action":"message.group","data":{"mid":1690000000123456789,"seq":3,"from":"system","to":"the_world_channel","type":100,"content":"1","sendAt":1690000000}}"#,
    r#"{"seq":11,"action":"message.cli","from":"1","to":"2","data":{"content":"{\"id\":\"1\",…}","from":"1","id":0,"to":"2","type":10020}}"#,
];

/// Client frames of §1.5 (Gen-2 and Gen-1) with what Go 1.26's `json.Marshal` printed after
/// `json.Unmarshal` into GlideIM's struct (captured from a Go program; inputs whose data holds `<>&` are
/// left out, Go HTML-escapes data there, see `data_is_copied_not_re_escaped`), plus key-matching cases.
pub(super) const GO_VECTORS: &[(&str, &str)] = &[
    (
        r#"{"action":"message.chat","data":{"cliMid":"9F2C0A1B…","content":"hello","from":"1","mid":0,"sendAt":1690000000123,"seq":0,"to":"2","type":1,"status":0},"seq":5,"to":"2","extra":null,"ticket":"3f5e…(40 hex)"}"#,
        r#"{"seq":5,"action":"message.chat","to":"2","data":{"cliMid":"9F2C0A1B…","content":"hello","from":"1","mid":0,"sendAt":1690000000123,"seq":0,"to":"2","type":1,"status":0},"ticket":"3f5e…(40 hex)"}"#,
    ),
    (
        r#"{"action":"ack.request","data":{"mid":1783,"from":"1"},"seq":3,"to":"1","extra":null}"#,
        r#"{"seq":3,"action":"ack.request","to":"1","data":{"mid":1783,"from":"1"}}"#,
    ),
    (
        r#"{"action":"heartbeat","data":{},"seq":12}"#,
        r#"{"seq":12,"action":"heartbeat","data":{}}"#,
    ),
    (
        r#"{"action":"message.group","data":{"cliMid":"77AB…","content":"Hi","from":"1","mid":0,"sendAt":1690000001000,"seq":0,"to":"the_world_channel","type":1,"status":0},"seq":9,"to":"the_world_channel","extra":null,"ticket":"…"}"#,
        r#"{"seq":9,"action":"message.group","to":"the_world_channel","data":{"cliMid":"77AB…","content":"Hi","from":"1","mid":0,"sendAt":1690000001000,"seq":0,"to":"the_world_channel","type":1,"status":0},"ticket":"…"}"#,
    ),
    (
        r#"{"action":"message.cli","data":{"content":"{\"id\":\"1\",…}","from":"1","id":0,"to":"2","type":10020},"seq":11,"to":"2","extra":null}"#,
        r#"{"seq":11,"action":"message.cli","to":"2","data":{"content":"{\"id\":\"1\",…}","from":"1","id":0,"to":"2","type":10020}}"#,
    ),
    (
        r#"{"Ver":0,"Seq":2,"Action":"message.chat","Data":{"mid":1001,"seq":1,"to":543630,"type":1,"content":"hello","sendAt":1637472935}}"#,
        r#"{"seq":2,"action":"message.chat","data":{"mid":1001,"seq":1,"to":543630,"type":1,"content":"hello","sendAt":1637472935}}"#,
    ),
    (
        r#"{"Ver":0,"Seq":0,"Action":"heartbeat","Data":"","Extra":null}"#,
        r#"{"action":"heartbeat","data":""}"#,
    ),
    (
        r#"{"Seq":3,"Action":"ack.request","Data":{"mid":1001,"from":543629}}"#,
        r#"{"seq":3,"action":"ack.request","data":{"mid":1001,"from":543629}}"#,
    ),
    (
        r#"{"ACTION":"x","VER":2,"SEQ":-3,"FROM":"a","TO":"b","TICKET":"t","EXTRA":{"z":"1","a":"2"},"DATA":[1,2]}"#,
        r#"{"ver":2,"seq":-3,"action":"x","from":"a","to":"b","data":[1,2],"ticket":"t","extra":{"a":"2","z":"1"}}"#,
    ),
    (
        r#"{"action":"x","from":"\b\f\u0001\u001f\u007f<>&\u2028\u2029\"\\/é中😀"}"#,
        "{\"action\":\"x\",\"from\":\"\\b\\f\\u0001\\u001f\u{7f}\\u003c\\u003e\\u0026\\u2028\\u2029\\\"\\\\/é中😀\"}",
    ),
    (
        r#"{"action":"x","extra":{"b":"1","a":"2","A":"3","<":"&"}}"#,
        r#"{"action":"x","extra":{"\u003c":"\u0026","A":"3","a":"2","b":"1"}}"#,
    ),
    (
        r#"{"action":"x","extra":{"a":"1"},"extra":{"b":"2"}}"#,
        r#"{"action":"x","extra":{"a":"1","b":"2"}}"#,
    ),
    (r#"{"action":"x","extra":{"a":"1"},"extra":null}"#, r#"{"action":"x"}"#),
    (
        r#"{"action":"x","extra":{"a":null}}"#,
        r#"{"action":"x","extra":{"a":""}}"#,
    ),
    (r#"{"action":"x","extra":{}}"#, r#"{"action":"x"}"#),
    (
        r#"{"action":"x","from":"1","from":null,"seq":4,"seq":null}"#,
        r#"{"seq":4,"action":"x","from":"1"}"#,
    ),
    (
        r#"{"action":"x","seq":-0,"ver":9223372036854775807}"#,
        r#"{"ver":9223372036854775807,"action":"x"}"#,
    ),
    (
        r#"{"action":"x","ver":-9223372036854775808}"#,
        r#"{"ver":-9223372036854775808,"action":"x"}"#,
    ),
    (
        "{\"tic\\u212aet\":\"t\",\"action\":\"x\",\"\u{17f}eq\":5}",
        r#"{"seq":5,"action":"x","ticket":"t"}"#,
    ),
    (r#"{"ActIon":"a","\u0061ction":"b"}"#, r#"{"action":"b"}"#),
    (r#"{"action":"a","Action":"b","ACTION":"c"}"#, r#"{"action":"c"}"#),
    (
        "\t{ \"action\" : \"x\" , \"seq\" : 1 }\t\n",
        r#"{"seq":1,"action":"x"}"#,
    ),
    (r#"{"action":""}"#, r#"{"action":""}"#),
    (
        r#"{"aCtIoN":"x","unknown":{"deep":[1,2,{"x":null}]},"SIGN":null}"#,
        r#"{"action":"x"}"#,
    ),
];

/// Malformed frames and (a fragment of) the error message each must produce.
pub(super) const MALFORMED: &[(&[u8], &str)] = &[
    (b"", "expected a JSON object envelope, found the end of input at byte 0"),
    (b"   ", "found the end of input at byte 3"),
    (b"hello", "expected a JSON object envelope, found 'h' at byte 0"),
    (
        b"{\"action\":\"x\"",
        "expected `,` or `}`, found the end of input at byte 13",
    ),
    (
        b"{\"action\":\"x\"} x",
        "trailing characters after the envelope, found 'x' at byte 15",
    ),
    (
        b"{\"action\":\"x\"}{}",
        "trailing characters after the envelope, found '{' at byte 14",
    ),
    (b"[\"action\"]", "expected a JSON object envelope, found '[' at byte 0"),
    (b"\"action\"", "expected a JSON object envelope, found '\"'"),
    (b"null", "expected a JSON object envelope, found 'n'"),
    (b"42", "expected a JSON object envelope, found '4'"),
    (b"{}", "missing action"),
    (b"{\"seq\":1}", "missing action"),
    (b"{\"action\":null}", "action: expected a string, found null at byte 14"),
    (
        b"{\"action\":5}",
        "action: expected a string or null, found a number at byte 10",
    ),
    (
        b"{\"action\":[\"x\"]}",
        "action: expected a string or null, found an array",
    ),
    (
        b"{\"action\":\"x\",\"seq\":1.5}",
        "seq: expected an integer, found the non-integer number 1.5 at byte 20",
    ),
    (
        b"{\"action\":\"x\",\"seq\":1e2}",
        "seq: expected an integer, found the non-integer number 1e2",
    ),
    (b"{\"action\":\"x\",\"seq\":-0.0}", "non-integer number -0.0"),
    (
        b"{\"action\":\"x\",\"ver\":\"1\"}",
        "ver: expected an integer, found a string at byte 20",
    ),
    (
        b"{\"action\":\"x\",\"ver\":true}",
        "ver: expected an integer, found a boolean",
    ),
    (
        b"{\"action\":\"x\",\"ver\":[1]}",
        "ver: expected an integer, found an array",
    ),
    (
        b"{\"action\":\"x\",\"ver\":{}}",
        "ver: expected an integer, found an object",
    ),
    (b"{\"action\":\"x\",\"ver\":nul}", "invalid literal at byte 20"),
    (
        b"{\"action\":\"x\",\"seq\":9223372036854775808}",
        "seq: integer 9223372036854775808 out of range at byte 20",
    ),
    (b"{\"action\":\"x\",\"seq\":-9223372036854775809}", "out of range"),
    (
        b"{\"action\":\"x\",\"seq\":99999999999999999999999999999999}",
        "out of range",
    ),
    (b"{\"action\":\"x\",\"seq\":01}", "seq: invalid number at byte 22"),
    (b"{\"action\":\"x\",\"seq\":-}", "seq: invalid number"),
    (b"{\"action\":\"x\",\"seq\":1e999}", "non-integer number 1e999"),
    (
        b"{\"action\":\"x\",\"from\":1.5}",
        "from: expected a string or an integer, found the number 1.5 at byte 21",
    ),
    (
        b"{\"action\":\"x\",\"from\":99999999999999999999}",
        "found the number 99999999999999999999",
    ),
    (
        b"{\"action\":\"x\",\"to\":true}",
        "to: expected a string, an integer or null, found a boolean at byte 19",
    ),
    (
        b"{\"action\":\"x\",\"to\":{}}",
        "to: expected a string, an integer or null, found an object",
    ),
    (b"{\"action\":\"x\",\"from\":1e400}", "found the number 1e400"),
    (
        b"{\"action\":\"x\",\"ticket\":1}",
        "ticket: expected a string or null, found a number",
    ),
    (
        b"{\"action\":\"x\",\"msg\":1}",
        "msg: expected a string or null, found a number",
    ),
    (
        b"{\"action\":\"x\",\"sign\":[]}",
        "sign: expected a string or null, found an array",
    ),
    (
        b"{\"action\":\"x\",\"extra\":[]}",
        "extra: expected an object or null, found an array at byte 22",
    ),
    (
        b"{\"action\":\"x\",\"extra\":\"a\"}",
        "extra: expected an object or null, found a string",
    ),
    (
        b"{\"action\":\"x\",\"extra\":{\"a\":1}}",
        "extra: expected a string or null, found a number at byte 27",
    ),
    (
        b"{\"action\":\"x\",\"extra\":{\"a\":\"1\",}}",
        "extra: expected a key, found '}'",
    ),
    (
        b"{\"action\":\"x\",\"extra\":{\"a\" \"1\"}}",
        "expected `:`, found '\"'",
    ),
    (
        b"{\"action\":\"x\",\"extra\":{\"a\":\"1\"",
        "extra: expected `,` or `}`, found the end of input",
    ),
    (b"{\"action\":\"x\",\"data\":}", "data: expected value at byte 21"),
    (b"{\"action\":\"x\",\"data\":[1,]}", "data: expected value at byte 24"),
    (
        b"{\"action\":\"x\",\"data\":\n[1,\n ]}",
        "data: expected value at byte 27",
    ),
    (
        b"{\"action\":\"x\",\"data\":{'a':1}}",
        "data: key must be a string at byte 22",
    ),
    (b"{\"action\":\"x\",\"data\":NaN}", "data: expected value"),
    (b"{\"action\":\"x\",\"data\":1x}", "data: trailing characters"),
    (
        b"{\"action\":\"x\",\"data\":[1]",
        "expected `,` or `}`, found the end of input at byte 24",
    ),
    (
        b"{\"action\":\"x\",\"data\":",
        "data: expected a value, found the end of input at byte 21",
    ),
    (
        b"{\"action\":\"x\",\"zz\":[1,}",
        "an unknown key's value: expected value at byte 22",
    ),
    (b"{\"action\":\"x\",\"to\":\"a\\q\"}", "invalid escape at byte 22"),
    (
        b"{\"action\":\"x\",\"to\":\"a\\u12g4\"}",
        "invalid \\u escape at byte 23",
    ),
    (
        b"{\"action\":\"x\",\"to\":\"a\nb\"}",
        "control character in string at byte 21",
    ),
    (b"{\"action\":\"x\",\"to\":\"ab}", "unterminated string"),
    (b"{\"a\\ction\":\"x\"}", "invalid escape at byte 4"),
    (b"{action:\"x\"}", "expected a key, found 'a' at byte 1"),
    (b"{\"action\" \"x\"}", "expected `:`, found '\"' at byte 10"),
    (b"{\"action\":\"x\",}", "expected a key, found '}' at byte 14"),
    (
        b"{\"action\":\"x\" \"seq\":1}",
        "expected `,` or `}`, found '\"' at byte 14",
    ),
    (
        b"\xef\xbb\xbf{\"action\":\"x\"}",
        "expected a JSON object envelope, found '\\u{feff}'",
    ),
    (b"{\"action\":\"\xff\"}", "invalid UTF-8 at byte 11"),
    (b"{\"action\":\"x\",\"data\":\"\xc3\"}", "invalid UTF-8 at byte 22"),
    (b"{\"action\":\"x\",\"zz\":\"\xed\xa0\x80\"}", "invalid UTF-8"),
];
