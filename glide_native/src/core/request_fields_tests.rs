use std::borrow::Cow;

use super::*;

fn plain(receiver: i64, cli_mid: &str, content: &str, kind: i64, send_at: i64) -> Option<Chat<'static>> {
    Some(Chat {
        receiver,
        cli_mid: Cow::Owned(cli_mid.to_owned()),
        content: Cow::Owned(content.to_owned()),
        kind,
        send_at,
    })
}

#[test]
fn reads_the_plain_chat() {
    let data = r#"{"cliMid":"c1","content":"hi \"you\"","type":2,"sendAt":1690000000123}"#;
    assert_eq!(chat("42", data), plain(42, "c1", "hi \"you\"", 2, 1690000000123));
    assert_eq!(chat("", r#"{"to":"7","content":"x"}"#), plain(7, "", "x", 1, 0));
    assert_eq!(
        chat("", r#"{"to":7,"content":"x","cliMid":null,"type":null,"sendAt":null}"#),
        plain(7, "", "x", 1, 0)
    );
    // The envelope's `to` wins over data's, whatever data's is.
    assert_eq!(chat("9", r#"{"to":{},"content":"x"}"#), plain(9, "", "x", 1, 0));
    // Later duplicates win, as in Python's json.
    assert_eq!(chat("9", r#"{"content":1,"content":"b"}"#), plain(9, "", "b", 1, 0));
    assert_eq!(chat("9", r#"{"content":"a","content":1}"#), None);
    // Unknown keys and nested values are skipped.
    assert_eq!(
        chat("9", r#"{"x":[1,{"a":[]}],"content":"a","y":{"to":1}}"#),
        plain(9, "", "a", 1, 0)
    );
    // Numbers past 64 bits are still numbers to Python (an exact int): no reason to decline.
    assert_eq!(
        chat("9", r#"{"content":"a","x":123456789012345678901234567890}"#),
        plain(9, "", "a", 1, 0)
    );
    let long = "é".repeat(MAX_CLI_MID);
    assert_eq!(
        chat("9", &format!(r#"{{"content":"a","cliMid":"{long}"}}"#)),
        plain(9, &long, "a", 1, 0)
    );
    // The one non-ASCII character Python lowercases to ASCII is the Kelvin sign (to `k`): no field has a `k`.
    assert_eq!(
        chat("9", "{\"content\":\"a\",\"\u{212a}\":1,\"T\u{212a}PE\":0}"),
        plain(9, "", "a", 1, 0)
    );
    assert_eq!(
        chat("9223372036854775807", r#"{"content":""}"#),
        plain(i64::MAX, "", "", 1, 0)
    );
}

#[test]
fn borrows_unescaped_text() {
    let got = chat("1", r#"{"content":"plain","cliMid":"a\u0062"}"#).unwrap();
    assert!(matches!(got.content, Cow::Borrowed("plain")));
    assert!(matches!(got.cli_mid, Cow::Owned(ref s) if s == "ab"));
}

#[test]
fn leaves_everything_else_to_the_general_path() {
    let none = [
        ("1", "[]"),
        ("1", "null"),
        ("1", r#""text""#),
        ("1", r#"{"content":"a"} x"#),
        ("1", r#"{"content":"a""#),
        ("1", r#"{"content":"\ud800"}"#),
        ("1", r#"{"Content":"a"}"#),
        ("1", r#"{"content":"a","CONTENT":"b"}"#),
        ("1", r#"{"content":"a","cliMID":"b"}"#),
        ("1", r#"{"content":"a","sendat":1}"#),
        ("1", r#"{"content":1}"#),
        ("1", r#"{"content":null}"#),
        ("1", r#"{}"#),
        ("1", r#"{"content":"a","cliMid":5}"#),
        ("1", r#"{"content":"a","type":1.0}"#),
        ("1", r#"{"content":"a","type":true}"#),
        ("1", r#"{"content":"a","type":"1"}"#),
        ("1", r#"{"content":"a","type":9223372036854775808}"#),
        ("1", r#"{"content":"a","sendAt":1e3}"#),
        ("1", r#"{"content":"a","sendAt":[]}"#),
        ("0", r#"{"content":"a"}"#),
        ("-1", r#"{"content":"a"}"#),
        ("+1", r#"{"content":"a"}"#),
        ("1 ", r#"{"content":"a"}"#),
        ("١", r#"{"content":"a"}"#),
        ("9223372036854775808", r#"{"content":"a"}"#),
        ("00000000000000000001", r#"{"content":"a"}"#),
        ("", r#"{"content":"a"}"#),
        ("", r#"{"content":"a","to":null}"#),
        ("", r#"{"content":"a","to":0}"#),
        ("", r#"{"content":"a","to":-5}"#),
        ("", r#"{"content":"a","to":true}"#),
        ("", r#"{"content":"a","to":"x"}"#),
        ("", r#"{"content":"a","to":1.5}"#),
        // Text Python's reading of data refuses, in a value the fields do not use: the general path says so.
        ("1", r#"{"content":"a","x":"\ud800"}"#),
        ("1", r#"{"content":"a","x":{"y":["\udc00"]}}"#),
        ("1", r#"{"content":"a","x":{"\ud800":1}}"#),
        ("1", r#"{"content":"a","x":1e400}"#),
        ("1", r#"{"content":"a","x":[-1e999]}"#),
    ];
    for (to, data) in none {
        assert_eq!(chat(to, data), None, "{to:?} {data}");
    }
    let too_long = "x".repeat(MAX_CLI_MID + 1);
    assert_eq!(chat("1", &format!(r#"{{"content":"a","cliMid":"{too_long}"}}"#)), None);
}

#[test]
fn reads_the_plain_mid_ref() {
    assert_eq!(mid_ref(r#"{"mid":5,"from":"1"}"#), Some((5, Cow::Borrowed(""))));
    assert_eq!(mid_ref(r#"{"mid":5,"cliMid":"c"}"#), Some((5, Cow::Borrowed("c"))));
    assert_eq!(mid_ref(r#"{"mid":5,"cliMid":7}"#), Some((5, Cow::Borrowed(""))));
    assert_eq!(
        mid_ref(r#"{"mid":1,"mid":9223372036854775807}"#),
        Some((i64::MAX, Cow::Borrowed("")))
    );
    for data in [
        r#"{"mid":0}"#,
        r#"{"mid":-1}"#,
        r#"{"mid":"5"}"#,
        r#"{"mid":5.0}"#,
        r#"{"mid":null}"#,
        r#"{"cliMid":"c"}"#,
        r#"{"content":"{\"mid\":5}"}"#,
        r#"{"mid":5,"MID":6}"#,
        r#"{"mid":5,"climid":"c"}"#,
        r#"{"mid":9223372036854775808}"#,
        r#"[5]"#,
        r#"{"mid":5,"x":"\ud800"}"#,
        r#"{"mid":5,"x":[1e400]}"#,
    ] {
        assert_eq!(mid_ref(data), None, "{data}");
    }
}
