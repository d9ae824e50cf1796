//! What a simulated debtor's lines mean, read once with duecall's own intent
//! classifier before any call: which of them mean an intent duecall confirms
//! before acting on, and with which question ([`PromptId::confirming`]).
//! A caller knows what it meant, so it can answer "Just to be sure: ...?" by it
//! ([`super::persona::ConfirmHabit::Meant`]).
//!
//! Owns: that reading of the debtors' own text. Never hears audio, and never
//! decides anything for duecall.

use std::collections::HashMap;

use crate::dialogue::prompt::PromptId;
use crate::intent::cli::load_lexicon;
use crate::intent::eval::eval_today;
use crate::intent::{Classifier, IntentError};

use super::cue::is_mandarin;
use super::persona::{Persona, Step};

/// The script lines of `personas` that mean an intent duecall confirms when
/// it hears it unsure (`stop_calling`, `hardship`, ...), each with the
/// question that confirms that intent (`confirm_stop_calling`, ...).
pub fn confirmable_lines<'a>(
    personas: impl IntoIterator<Item = &'a Persona>,
) -> Result<HashMap<String, PromptId>, IntentError> {
    let mut en: Option<Classifier> = None;
    let mut zh: Option<Classifier> = None;
    let mut out = HashMap::new();
    for p in personas {
        let slot = if is_mandarin(&p.voice) {
            &mut zh
        } else {
            &mut en
        };
        if slot.is_none() {
            let lang = if is_mandarin(&p.voice) { "zh" } else { "en" };
            *slot = Some(Classifier::new(load_lexicon(lang, None)?));
        }
        let Some(classifier) = slot.as_ref() else {
            continue;
        };
        for step in &p.steps {
            if let Step::Say(line) = step {
                let kind = classifier.classify(line, eval_today(), None).kind;
                if let Some(question) = PromptId::confirming(kind) {
                    out.insert(line.clone(), question);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::persona::PersonaBook;

    #[test]
    fn consequential_lines_are_confirmable_and_answers_to_other_questions_are_not() {
        let book = PersonaBook::builtin();
        let lines = confirmable_lines(book.iter()).unwrap();
        for (yes, question) in [
            (
                "I already paid that last week.",
                PromptId::ConfirmAlreadyPaid,
            ),
            (
                "I lost my job and I cannot pay right now.",
                PromptId::ConfirmHardship,
            ),
        ] {
            assert_eq!(
                lines.get(yes),
                Some(&question),
                "{yes:?} means a consequential intent, confirmed by its own question"
            );
        }
        for no in [
            "Hello?",
            "Yes, speaking.",
            "Yes, it's me.",
            "I can pay on Friday.",
        ] {
            assert!(
                !lines.contains_key(no),
                "{no:?} is not a consequential reply"
            );
        }
        assert_eq!(
            lines.get("我失业了，现在还不上。"),
            Some(&PromptId::ConfirmHardship),
            "Mandarin hardship"
        );
        assert!(!lines.contains_key("是我。"), "Mandarin identity");
    }
}
