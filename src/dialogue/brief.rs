//! The case brief: one or two sentences a collector reads before anything
//! else on an escalation (the queue, the case page, the transfer webhook):
//! why the case is theirs, whether the right person was reached, and the
//! last words the agent heard with what it took them to mean. Pure: the
//! conversation's own record in, English text out. It never decides
//! anything: the reason and the turns are the conversation's.

use crate::intent::IntentKind;

use super::outcome::Turn;

/// Why a case reached a collector, in words, by its escalation reason;
/// `None` for a reason this table does not know (the brief then names it).
pub fn reason_in_words(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "hardship" => "The debtor says they cannot pay now.",
        "dispute" => {
            "The debtor disputes the debt: robot calls are held until a person releases the hold."
        }
        "request_agent" => "The debtor asked to speak to a person.",
        "promise-without-date" => "The debtor promised to pay but gave no date.",
        "promise-date-in-past" => "The debtor promised to pay on a date that has already passed.",
        "promise-too-far" => {
            "The debtor promised to pay, but later than the campaign accepts without a person."
        }
        "promise-unconfirmed" => {
            "The debtor promised to pay but did not confirm the date the agent read back."
        }
        "stop-unconfirmed" => {
            "The caller may have asked to stop the calls and did not confirm it: robot calls stopped, a person should check."
        }
        "wrong-number-unconfirmed" => {
            "The caller may have said this is a wrong number and did not confirm it: robot calls stopped, a person should check."
        }
        "transfer-failed" => "A live transfer to a collector failed: call the debtor back.",
        "no-agent-uri" => "A live transfer was due but no collector line is configured.",
        "hung-up-during-transfer" => "The debtor hung up while being transferred to a collector.",
        "unknown" => "The agent could not understand the replies.",
        "paid-unverified" | "verify-payment" => {
            "The debtor says they already paid: the payment needs checking."
        }
        _ => return None,
    })
}

/// The brief of a case escalated for `reason` on a call whose turns were
/// `turns`: why (in words), whether the right person was confirmed, and
/// the last words heard with their meaning and how sure the agent was.
pub fn case_brief(reason: &str, identity_confirmed: bool, turns: &[Turn]) -> String {
    let mut s = match reason_in_words(reason) {
        Some(w) => w.to_string(),
        None => format!("Escalated: {reason}."),
    };
    s.push_str(if identity_confirmed {
        " Right person confirmed."
    } else {
        " Right person not confirmed."
    });
    match turns
        .iter()
        .rev()
        .find_map(|t| t.heard.as_ref().map(|h| (t, h)))
    {
        Some((t, heard)) => {
            let meaning = match t.intent {
                Some(IntentKind::Unknown) | None => "not understood".to_string(),
                Some(k) => k.as_str().replace('_', " "),
            };
            let sure = t
                .confidence
                .map(|c| format!(", {:.0} % sure", (c * 100.0).clamp(0.0, 100.0)))
                .unwrap_or_default();
            s.push_str(&format!(
                " Last words heard: \"{heard}\" ({meaning}{sure})."
            ));
        }
        None => s.push_str(" Nothing the caller said was heard."),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::prompt::PromptId;

    fn heard(text: &str, intent: IntentKind, conf: f32) -> Turn {
        let mut t = Turn::started(PromptId::Reminder, 1000);
        t.heard = Some(text.into());
        t.intent = Some(intent);
        t.confidence = Some(conf);
        t
    }

    #[test]
    fn a_hardship_case_says_why_who_and_the_last_words_heard() {
        let turns = vec![
            heard("yes speaking", IntentKind::IdentityConfirmed, 0.9),
            heard("i lost my job i can't pay", IntentKind::Hardship, 0.82),
        ];
        assert_eq!(
            case_brief("hardship", true, &turns),
            "The debtor says they cannot pay now. Right person confirmed. \
             Last words heard: \"i lost my job i can't pay\" (hardship, 82 % sure)."
        );
    }

    #[test]
    fn a_case_with_nothing_heard_and_an_unlisted_reason_still_reads_as_sentences() {
        let turns = vec![Turn::started(PromptId::Reminder, 0)];
        assert_eq!(
            case_brief("max-call-length", false, &turns),
            "Escalated: max-call-length. Right person not confirmed. Nothing the caller said was heard."
        );
    }

    #[test]
    fn words_not_understood_are_called_so_not_given_an_intent() {
        let turns = vec![heard("hold on the tv", IntentKind::Unknown, 0.3)];
        let b = case_brief("unknown", true, &turns);
        assert!(b.contains("(not understood, 30 % sure)"), "{b}");
        assert!(b.starts_with("The agent could not understand"), "{b}");
    }

    #[test]
    fn every_reason_the_conversation_escalates_with_has_words() {
        for r in [
            "hardship",
            "dispute",
            "request_agent",
            "promise-without-date",
            "promise-date-in-past",
            "promise-too-far",
            "promise-unconfirmed",
            "stop-unconfirmed",
            "wrong-number-unconfirmed",
            "transfer-failed",
            "no-agent-uri",
            "hung-up-during-transfer",
            "unknown",
        ] {
            assert!(reason_in_words(r).is_some(), "{r}");
        }
    }
}
