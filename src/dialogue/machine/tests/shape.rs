use super::*;

#[test]
fn outcome_serialises_with_the_documented_turn_keys() {
    let mut h = H::new();
    h.reach_reminder();
    h.reply("I already paid");
    h.finish_all();
    let v = serde_json::to_value(h.c.outcome()).unwrap();
    let turn = &v["turns"][1];
    for k in [
        "prompt",
        "played_ms",
        "finished",
        "heard",
        "intent",
        "confidence",
        "start_ms",
        "end_ms",
    ] {
        assert!(turn.get(k).is_some(), "turn key {k}: {turn}");
    }
    assert_eq!(turn["intent"], "identity_confirmed");
    assert_eq!(v["route"]["kind"], "pause");
    assert_eq!(v["amd"]["verdict"], "human");
    assert_eq!(v["identity_confirmed"], true);
}

#[test]
fn texts_to_prepare_cover_the_reminder_but_not_call_time_values() {
    let h = H::new();
    let texts = h.c.texts_to_prepare();
    assert!(texts
        .iter()
        .any(|(id, t)| id.as_str() == "reminder" && t.contains("fifty cents")));
    assert!(!texts
        .iter()
        .any(|(id, _)| id.as_str() == "confirm_promise" || id.as_str() == "callback_confirm"));
}
