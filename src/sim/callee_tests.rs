use super::*;

#[test]
fn refer_to_headers_are_split_and_decoded() {
    let (t, h) = parse_refer_to(
        "<sip:agent@127.0.0.1:5070?X-Duecall-Case=c%201%262&X-Duecall-Intent=hardship>",
    );
    assert_eq!(t, "sip:agent@127.0.0.1:5070");
    assert_eq!(
        h,
        vec![
            ("X-Duecall-Case".to_string(), "c 1&2".to_string()),
            ("X-Duecall-Intent".to_string(), "hardship".to_string())
        ]
    );
    let (t, h) = parse_refer_to("\"Agent\" <sip:agent@h>;foo=bar");
    assert_eq!((t.as_str(), h.len()), ("sip:agent@h", 0));
    let (t, _) = parse_refer_to("sip:agent@h");
    assert_eq!(t, "sip:agent@h");
}

#[test]
fn percent_decoding_tolerates_broken_escapes() {
    assert_eq!(percent_decode("a%2"), "a%2");
    assert_eq!(percent_decode("%zz%41"), "%zzA");
    assert_eq!(percent_decode("%E4%BD%A0"), "你");
}

#[test]
fn latencies_run_from_each_line_end_to_the_next_prompt_start() {
    let mut r = SimCallRecord::new("c".into(), "u".into());
    r.lines_said = vec![
        SaidLine {
            text: "a".into(),
            at_ms: 0,
            end_ms: 500,
        },
        SaidLine {
            text: "b".into(),
            at_ms: 4000,
            end_ms: 5000,
        },
    ];
    r.prompts = vec![
        PromptHeard {
            start_ms: 800,
            end_ms: Some(3000),
            kind: crate::sim::PromptKind::Other,
        },
        PromptHeard {
            start_ms: 5350,
            end_ms: Some(6000),
            kind: crate::sim::PromptKind::Other,
        },
    ];
    assert_eq!(r.reply_latencies_ms(), vec![300, 350]);
}
