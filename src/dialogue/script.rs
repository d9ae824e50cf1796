//! The call script: `prompts/<lang>.toml` `[meta]`, `[say.<id>]` and
//! `[listen.<turn>]` loaded and checked up front, with errors that name the
//! key: every `PromptId` and `Listen` present, no unknown id. Owns prompt rendering (placeholders filled from the account). It never
//! reads the `[intent]` lexicon (the classifier owns it) and never decides
//! what to say when: that is the machine's job.

use std::collections::BTreeMap;
use std::path::Path;

use super::prompt::{Listen, PromptId};
use crate::account::Language;
use crate::intent::IntentKind;

/// Every placeholder a `say` text may use.
pub const PLACEHOLDERS: [&str; 8] = [
    "company",
    "name",
    "amount",
    "due_date",
    "callback_number",
    "agent_hours",
    "promise_date",
    "callback_time",
];

/// Placeholders that carry the debt: a text using one must be flagged
/// `mentions_debt = true` (checked at load).
pub const DEBT_PLACEHOLDERS: [&str; 3] = ["amount", "due_date", "promise_date"];

/// Placeholders known before the call (from `[meta]`): a text with only these
/// is "fixed" and can be rendered to audio once, ahead of any call.
pub const FIXED_PLACEHOLDERS: [&str; 3] = ["company", "callback_number", "agent_hours"];

/// The `listen` table whose phrases are fillers, not a turn.
pub const BACKCHANNEL: &str = "backchannel";

/// A script that cannot be used, naming the key to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML.
    #[error("{origin}: not valid TOML: {message}")]
    Toml {
        /// File name or other origin.
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A required key is absent.
    #[error("{origin}: missing key `{key}`")]
    Missing {
        /// File name or other origin.
        origin: String,
        /// Dotted key path.
        key: String,
    },
    /// A key has the wrong type or an invalid value.
    #[error("{origin}: key `{key}`: {problem}")]
    Invalid {
        /// File name or other origin.
        origin: String,
        /// Dotted key path.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// `[meta]`: who speaks, in which voice, and the fixed values prompts quote.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Script language.
    pub language: Language,
    /// The company on whose behalf the agent calls.
    pub company: String,
    /// espeak-ng voice (`en-us`, `cmn`).
    pub voice: String,
    /// espeak-ng words per minute.
    pub speed: u32,
    /// The number the debtor can call back.
    pub callback_number: String,
    /// When people answer that number ("between 9 AM and 6 PM, Monday to Friday").
    pub agent_hours: String,
}

/// One sentence the agent says.
#[derive(Debug, Clone, PartialEq)]
pub struct SayPrompt {
    /// The id (`[say.<id>]`), also the audio file name.
    pub id: PromptId,
    /// Text with `{placeholder}`s.
    pub text: String,
    /// May the caller's speech cut it off? False for disclosures.
    pub interruptible: bool,
    /// Says anything about the debt: never played before the right person is confirmed.
    pub mentions_debt: bool,
}

impl SayPrompt {
    /// Placeholders used in the text, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        placeholders_in(&self.text)
    }

    /// True when the text needs only `[meta]` values, so it can be rendered
    /// to audio once for every call.
    pub fn is_fixed(&self) -> bool {
        self.placeholders()
            .iter()
            .all(|p| FIXED_PLACEHOLDERS.contains(&p.as_str()))
    }
}

/// Values to fill into prompts; any left `None` renders as an empty string
/// (the machine fills every value a prompt it plays can need).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    /// The debtor's name.
    pub name: Option<String>,
    /// The amount in words.
    pub amount: Option<String>,
    /// The due date in words.
    pub due_date: Option<String>,
    /// The promised date in words.
    pub promise_date: Option<String>,
    /// The callback moment in words.
    pub callback_time: Option<String>,
}

impl Vars {
    /// The account's values in `lang`'s words: its name, its amount and its
    /// due date as seen on `today`. The promise and callback are left for
    /// the conversation to fill when they are known.
    pub fn for_account(
        account: &crate::account::Account,
        lang: Language,
        today: chrono::NaiveDate,
    ) -> Vars {
        Vars {
            name: Some(account.name.clone()),
            amount: Some(super::speak::amount_words(
                account.amount,
                account.currency.as_deref(),
                lang,
            )),
            due_date: Some(super::speak::date_words(account.due_date, lang, today)),
            promise_date: None,
            callback_time: None,
        }
    }
}

/// A loaded, checked script for one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// `[meta]`.
    pub meta: Meta,
    /// `[say.<id>]`, one per `PromptId`, in `PromptId::ALL` order.
    prompts: Vec<SayPrompt>,
    /// `[listen.<turn>]` phrases by turn.
    pub listen: BTreeMap<String, Vec<String>>,
    /// `[listen.<turn>] intents`: the intents a reply to that turn can
    /// carry, by turn; a turn without the key expects every intent. The
    /// recognizer's grammar for the turn takes only these intents' lexicon
    /// phrases: a smaller grammar confuses less (`scripts/eval-speech`).
    pub expects: BTreeMap<String, Vec<IntentKind>>,
    /// `[listen.backchannel]`: fillers that never barge in.
    pub backchannel: Vec<String>,
}

fn placeholders_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

impl Script {
    /// Reads and checks `path` (e.g. `prompts/en.toml`).
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Script::parse(&text, &path.display().to_string())
    }

    /// Parses and checks script text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Script, ScriptError> {
        let o = origin.to_string();
        let root: toml::Table = toml::from_str(text).map_err(|e| ScriptError::Toml {
            origin: o.clone(),
            message: e.to_string(),
        })?;
        let missing = |key: &str| ScriptError::Missing {
            origin: o.clone(),
            key: key.to_string(),
        };
        let invalid = |key: &str, problem: &str| ScriptError::Invalid {
            origin: o.clone(),
            key: key.to_string(),
            problem: problem.to_string(),
        };

        let meta_t = root.get("meta").ok_or_else(|| missing("meta"))?;
        let meta_t = meta_t
            .as_table()
            .ok_or_else(|| invalid("meta", "must be a table"))?;
        let meta_str = |k: &str| -> Result<String, ScriptError> {
            let key = format!("meta.{k}");
            let v = meta_t.get(k).ok_or_else(|| missing(&key))?;
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid(&key, "must be a string"))
        };
        let language = match meta_str("language")?.as_str() {
            "en" => Language::En,
            "zh" => Language::Zh,
            other => {
                return Err(invalid(
                    "meta.language",
                    &format!("`{other}` is not one of en, zh"),
                ))
            }
        };
        let speed = match meta_t.get("speed") {
            None => 160,
            Some(v) => {
                let n = v
                    .as_integer()
                    .ok_or_else(|| invalid("meta.speed", "must be an integer"))?;
                if !(80..=450).contains(&n) {
                    return Err(invalid(
                        "meta.speed",
                        "must be between 80 and 450 words per minute",
                    ));
                }
                n as u32
            }
        };
        let meta = Meta {
            language,
            company: meta_str("company")?,
            voice: meta_str("voice")?,
            speed,
            callback_number: meta_str("callback_number")?,
            agent_hours: meta_str("agent_hours")?,
        };

        let say_t = root.get("say").ok_or_else(|| missing("say"))?;
        let say_t = say_t
            .as_table()
            .ok_or_else(|| invalid("say", "must be a table of [say.<id>] tables"))?;
        let mut say = BTreeMap::new();
        for (name, v) in say_t {
            let key = format!("say.{name}");
            let id = PromptId::parse(name).ok_or_else(|| {
                let known: Vec<&str> = PromptId::ALL.iter().map(|p| p.as_str()).collect();
                invalid(
                    &key,
                    &format!("unknown prompt id (known: {})", known.join(", ")),
                )
            })?;
            let t = v
                .as_table()
                .ok_or_else(|| invalid(&key, "must be a table"))?;
            let text_key = format!("{key}.text");
            let text = t
                .get("text")
                .ok_or_else(|| missing(&text_key))?
                .as_str()
                .ok_or_else(|| invalid(&text_key, "must be a string"))?
                .to_string();
            if text.trim().is_empty() {
                return Err(invalid(&text_key, "is empty"));
            }
            let flag = |name: &str, default: bool| -> Result<bool, ScriptError> {
                match t.get(name) {
                    None => Ok(default),
                    Some(b) => b
                        .as_bool()
                        .ok_or_else(|| invalid(&format!("{key}.{name}"), "must be true or false")),
                }
            };
            let interruptible = flag("interruptible", true)?;
            let mentions_debt = flag("mentions_debt", false)?;
            for k in t.keys() {
                if !matches!(k.as_str(), "text" | "interruptible" | "mentions_debt") {
                    return Err(invalid(
                        &format!("{key}.{k}"),
                        "unknown key (text, interruptible, mentions_debt)",
                    ));
                }
            }
            let prompt = SayPrompt {
                id,
                text,
                interruptible,
                mentions_debt,
            };
            if prompt.text.matches('{').count() != prompt.text.matches('}').count() {
                return Err(invalid(&text_key, "unbalanced { }"));
            }
            for p in prompt.placeholders() {
                if !PLACEHOLDERS.contains(&p.as_str()) {
                    return Err(invalid(
                        &text_key,
                        &format!(
                            "unknown placeholder {{{p}}} (known: {})",
                            PLACEHOLDERS.join(", ")
                        ),
                    ));
                }
                if DEBT_PLACEHOLDERS.contains(&p.as_str()) && !prompt.mentions_debt {
                    return Err(invalid(
                        &format!("{key}.mentions_debt"),
                        &format!("must be true: the text says {{{p}}}"),
                    ));
                }
            }
            if id.is_disclosure() && prompt.interruptible {
                return Err(invalid(
                    &format!("{key}.interruptible"),
                    "must be false: this is a disclosure",
                ));
            }
            say.insert(id, prompt);
        }
        let mut prompts = Vec::with_capacity(PromptId::ALL.len());
        for &id in PromptId::ALL {
            let p = say
                .remove(&id)
                .ok_or_else(|| missing(&format!("say.{id}")))?;
            prompts.push(p);
        }

        let listen_t = root.get("listen").ok_or_else(|| missing("listen"))?;
        let listen_t = listen_t
            .as_table()
            .ok_or_else(|| invalid("listen", "must be a table of [listen.<turn>] tables"))?;
        let mut listen = BTreeMap::new();
        let mut expects = BTreeMap::new();
        for (turn, v) in listen_t {
            let key = format!("listen.{turn}.phrases");
            let t = v
                .as_table()
                .ok_or_else(|| invalid(&format!("listen.{turn}"), "must be a table"))?;
            let arr = t.get("phrases").ok_or_else(|| missing(&key))?;
            let arr = arr
                .as_array()
                .ok_or_else(|| invalid(&key, "must be an array of strings"))?;
            let mut phrases = Vec::with_capacity(arr.len());
            for (i, p) in arr.iter().enumerate() {
                let s = p
                    .as_str()
                    .ok_or_else(|| invalid(&format!("{key}[{i}]"), "must be a string"))?;
                phrases.push(s.to_string());
            }
            listen.insert(turn.clone(), phrases);
            if let Some(v) = t.get("intents") {
                let key = format!("listen.{turn}.intents");
                let arr = v
                    .as_array()
                    .ok_or_else(|| invalid(&key, "must be an array of intent names"))?;
                let mut kinds = Vec::with_capacity(arr.len());
                for (i, k) in arr.iter().enumerate() {
                    let kind = k.as_str().and_then(IntentKind::parse).ok_or_else(|| {
                        invalid(
                            &format!("{key}[{i}]"),
                            "must be an intent name such as \"already_paid\" (ARCHITECTURE.md lists them)",
                        )
                    })?;
                    kinds.push(kind);
                }
                expects.insert(turn.clone(), kinds);
            }
        }
        for turn in Listen::ALL {
            if !listen.contains_key(turn.as_str()) {
                return Err(missing(&format!("listen.{turn}")));
            }
        }
        let backchannel = listen.remove(BACKCHANNEL).unwrap_or_default();
        Ok(Script {
            meta,
            prompts,
            listen,
            expects,
            backchannel,
        })
    }

    /// The prompt with this id (every id exists after `parse`).
    pub fn prompt(&self, id: PromptId) -> &SayPrompt {
        &self.prompts[id as usize]
    }

    /// Every prompt, in `PromptId::ALL` order.
    pub fn prompts(&self) -> &[SayPrompt] {
        &self.prompts
    }

    /// The prompt's text with placeholders filled.
    pub fn render(&self, id: PromptId, vars: &Vars) -> String {
        self.fill(&self.prompt(id).text, vars)
    }

    /// The phrases `[listen.<turn>]` expects after this question.
    pub fn phrases(&self, turn: Listen) -> &[String] {
        self.listen
            .get(turn.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn fill(&self, text: &str, vars: &Vars) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let value = match &after[..close] {
                "company" => Some(self.meta.company.clone()),
                "callback_number" => Some(super::speak::phone_words(&self.meta.callback_number)),
                "agent_hours" => Some(self.meta.agent_hours.clone()),
                "name" => vars.name.clone(),
                "amount" => vars.amount.clone(),
                "due_date" => vars.due_date.clone(),
                "promise_date" => vars.promise_date.clone(),
                "callback_time" => vars.callback_time.clone(),
                _ => None,
            };
            out.push_str(value.as_deref().unwrap_or(""));
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Fixed prompts (only `[meta]` placeholders) rendered: what
    /// `scripts/render-prompts` turns into `audio/<lang>/tts/<id>.wav`.
    pub fn fixed_texts(&self) -> Vec<(PromptId, String)> {
        self.prompts
            .iter()
            .filter(|p| p.is_fixed())
            .map(|p| (p.id, self.fill(&p.text, &Vars::default())))
            .collect()
    }

    /// True when `text` is nothing but fillers from `[listen.backchannel]`
    /// (case and punctuation ignored; empty text counts as a filler).
    pub fn is_backchannel(&self, text: &str) -> bool {
        let norm = normalize(text);
        if norm.is_empty() {
            return true;
        }
        let fillers: Vec<String> = self.backchannel.iter().map(|f| normalize(f)).collect();
        match self.meta.language {
            Language::En => {
                // Greedy over words: every word (or two-word filler) must be a filler.
                let words: Vec<&str> = norm.split_whitespace().collect();
                let mut i = 0;
                while i < words.len() {
                    if i + 1 < words.len()
                        && fillers
                            .iter()
                            .any(|f| *f == format!("{} {}", words[i], words[i + 1]))
                    {
                        i += 2;
                    } else if fillers.iter().any(|f| f == words[i]) {
                        i += 1;
                    } else {
                        return false;
                    }
                }
                true
            }
            Language::Zh => {
                // No spaces in Mandarin: strip fillers, longest first, until nothing is left.
                let mut sorted = fillers.clone();
                sorted.sort_by_key(|f| std::cmp::Reverse(f.chars().count()));
                let mut rest: String = norm.chars().filter(|c| !c.is_whitespace()).collect();
                'outer: while !rest.is_empty() {
                    for f in &sorted {
                        if !f.is_empty() && rest.starts_with(f.as_str()) {
                            rest = rest[f.len()..].to_string();
                            continue 'outer;
                        }
                    }
                    return false;
                }
                true
            }
        }
    }
}

/// Lower case, punctuation (ASCII and CJK) turned into spaces, `-` kept as a space.
fn normalize(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_script(lang: &str) -> Script {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("prompts")
            .join(format!("{lang}.toml"));
        Script::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn shipped_english_and_mandarin_scripts_load_with_every_prompt() {
        for lang in ["en", "zh"] {
            let s = repo_script(lang);
            for &id in PromptId::ALL {
                assert_eq!(s.prompt(id).id, id, "{lang}: {id}");
            }
            assert!(!s.backchannel.is_empty());
            assert!(!s.listen.contains_key(BACKCHANNEL));
        }
    }

    #[test]
    fn shipped_disclosures_are_not_interruptible_and_third_party_prompts_carry_no_debt() {
        for lang in ["en", "zh"] {
            let s = repo_script(lang);
            for &id in PromptId::ALL.iter().filter(|p| p.is_disclosure()) {
                assert!(!s.prompt(id).interruptible, "{lang}: {id}");
            }
            for id in [
                PromptId::Opening,
                PromptId::RightParty,
                PromptId::WhoIsCalling,
                PromptId::WrongNumber,
                PromptId::IdentityDenied,
                PromptId::NotAvailable,
                PromptId::Voicemail,
                PromptId::MenuIdentity,
                PromptId::ReaskIdentity,
                PromptId::IdentityFirst,
                PromptId::ConfirmStopCalling,
                PromptId::ConfirmWrongNumber,
                PromptId::ConfirmNotAvailable,
                PromptId::ConfirmRequestAgent,
                PromptId::ReaskConfirmIntent,
                PromptId::UnsureStopClose,
            ] {
                let p = s.prompt(id);
                assert!(!p.mentions_debt, "{lang}: {id}");
                for word in ["debt", "owe", "amount", "payment", "欠", "还款", "金额"] {
                    assert!(
                        !p.text.to_lowercase().contains(word),
                        "{lang}: {id} says {word}"
                    );
                }
            }
        }
    }

    #[test]
    fn rendering_fills_meta_and_account_values() {
        let s = repo_script("en");
        let vars = Vars {
            name: Some("Maria Lopez".into()),
            ..Vars::default()
        };
        assert_eq!(
            s.render(PromptId::RightParty, &vars),
            "Am I speaking with Maria Lopez?"
        );
        let vm = s.render(PromptId::Voicemail, &vars);
        assert!(
            vm.contains("Northwind Credit") && vm.contains("1, 8 0 0, 5 5 5, 0 1 9 9"),
            "{vm}"
        );
    }

    #[test]
    fn fixed_texts_exclude_prompts_with_account_values() {
        let s = repo_script("en");
        let ids: Vec<PromptId> = s.fixed_texts().into_iter().map(|(id, _)| id).collect();
        assert!(ids.contains(&PromptId::Opening));
        assert!(ids.contains(&PromptId::Closing));
        assert!(!ids.contains(&PromptId::Reminder));
        assert!(!ids.contains(&PromptId::RightParty));
    }

    fn minimal(extra_say: &str) -> String {
        let mut s = String::from(
            "[meta]\nlanguage = \"en\"\ncompany = \"C\"\nvoice = \"en-us\"\ncallback_number = \"1\"\nagent_hours = \"h\"\n",
        );
        for &id in PromptId::ALL {
            let flags = if id.is_disclosure() {
                "\ninterruptible = false"
            } else {
                ""
            };
            if !extra_say.contains(&format!("[say.{id}]")) {
                s.push_str(&format!("[say.{id}]\ntext = \"t\"{flags}\n"));
            }
        }
        s.push_str(extra_say);
        for t in Listen::ALL {
            s.push_str(&format!("[listen.{t}]\nphrases = [\"a\"]\n"));
        }
        s
    }

    fn err_of(text: &str) -> String {
        match Script::parse(text, "x.toml") {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_script_loads() {
        assert!(Script::parse(&minimal(""), "x.toml").is_ok());
    }

    #[test]
    fn a_missing_prompt_is_named() {
        let text = minimal("").replace("[say.closing]\ntext = \"t\"\n", "");
        assert_eq!(err_of(&text), "x.toml: missing key `say.closing`");
    }

    #[test]
    fn an_unknown_prompt_id_is_named_with_the_known_ones() {
        let text = minimal("[say.closng]\ntext = \"Bye\"\n");
        let e = err_of(&text);
        assert!(
            e.contains("`say.closng`: unknown prompt id") && e.contains("closing"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_meta_value_is_named() {
        let text = minimal("").replace("voice = \"en-us\"\n", "");
        assert_eq!(err_of(&text), "x.toml: missing key `meta.voice`");
    }

    #[test]
    fn an_amount_in_an_unflagged_prompt_is_refused() {
        let text = minimal("[say.reminder]\ntext = \"You owe {amount}\"\n");
        assert!(
            err_of(&text).contains("say.reminder.mentions_debt"),
            "{}",
            err_of(&text)
        );
    }

    #[test]
    fn an_unknown_placeholder_is_refused_with_its_key() {
        let text = minimal("[say.reminder]\ntext = \"Hi {nmae}\"\n");
        let e = err_of(&text);
        assert!(
            e.contains("say.reminder.text") && e.contains("{nmae}"),
            "{e}"
        );
    }

    #[test]
    fn an_interruptible_disclosure_is_refused() {
        let text = minimal("[say.opening]\ntext = \"Recorded.\"\ninterruptible = true\n");
        assert!(err_of(&text).contains("say.opening.interruptible"));
    }

    #[test]
    fn wrong_types_name_the_key() {
        let text = minimal("[say.reminder]\ntext = \"t\"\nmentions_debt = \"yes\"\n");
        assert!(err_of(&text).contains("`say.reminder.mentions_debt`: must be true or false"));
        let text = minimal("").replace(
            "[listen.reminder]\nphrases = [\"a\"]",
            "[listen.reminder]\nphrases = [1]",
        );
        assert!(
            err_of(&text).contains("listen.reminder.phrases[0]"),
            "{}",
            err_of(&text)
        );
        assert!(err_of("not toml [").contains("not valid TOML"));
    }

    #[test]
    fn backchannel_detects_fillers_only() {
        let en = repo_script("en");
        assert!(en.is_backchannel("mhm"));
        assert!(en.is_backchannel("Uh huh."));
        assert!(en.is_backchannel("ok, ok"));
        assert!(en.is_backchannel(""));
        assert!(!en.is_backchannel("ok I already paid"));
        assert!(!en.is_backchannel("stop"));
        let zh = repo_script("zh");
        assert!(zh.is_backchannel("嗯嗯"));
        assert!(zh.is_backchannel("嗯，好的"));
        assert!(!zh.is_backchannel("嗯我已经还了"));
    }
}
