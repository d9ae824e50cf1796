//! Personas of the simulated debtors: how a callee answers (ring, busy, no
//! answer, reject), what it does with a REFER, and its script of steps (say a
//! line, press digits, wait for duecall's next prompt, barge into a prompt,
//! play a tone, hang up). Owns the built-in set and the TOML format that
//! extends it. Pure data and parsing: never renders audio, never touches a
//! socket.

use std::collections::BTreeMap;
use std::path::Path;

use super::SimError;

/// How the callee answers the INVITE.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 180 Ringing, then 200 OK after `ring_ms`.
    Ring {
        /// Ringing time before the answer.
        ring_ms: u64,
    },
    /// A final non-2xx status after `after_ms` (486 busy, 603 decline, 480, ...).
    Reject {
        /// SIP status code (400-699).
        code: u16,
        /// Delay before the response.
        after_ms: u64,
    },
    /// 180 Ringing until the caller gives up (CANCEL, answered 487).
    NoAnswer,
}

/// What the callee's phone does with a REFER (blind transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferPolicy {
    /// 202 Accepted, then NOTIFY with sipfrag `SIP/2.0 200 OK`
    /// (subscription terminated); the phone would now call the target.
    Accept,
    /// Refuse the REFER with this status (e.g. 603).
    Reject(u16),
}

/// One step of a persona's script. Steps run in order; after the last one
/// the callee stays on the line, silent, until the caller hangs up.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Speak a line (rendered with the persona's espeak-ng voice); the step
    /// ends when the line has been played out.
    Say(String),
    /// Press DTMF digits (RFC 4733).
    Dtmf(String),
    /// Stay silent this long (ms).
    Silence(u64),
    /// Wait until duecall's next prompt has ended (speech, then the
    /// configured end silence), plus the reply gap.
    WaitPrompt,
    /// Wait until duecall's next prompt has been playing this long (ms): for
    /// barge-in and hang-ups in the middle of a prompt.
    IntoPrompt(u64),
    /// Play a steady sine tone (an answering machine's beep).
    Tone {
        /// Frequency in Hz.
        hz: f32,
        /// Length in ms.
        ms: u64,
    },
    /// Send BYE.
    Hangup,
}

/// How a persona answers duecall's "Just to be sure: ...?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmHabit {
    /// As a caller does: yes when the question asked is the one for the
    /// consequential intent its last line meant (it tells which question by
    /// its whole sound, [`super::cue::PromptCues::which_confirm`]), no when
    /// it meant something else ("please call me after six" is not "you are
    /// having trouble paying?", "I lost my job" is not "you have already
    /// paid?") or could not tell which question it was.
    Meant,
    /// Always yes.
    Yes,
    /// Always no.
    No,
}

/// How a persona answers the prompts its script does not plan for, as a
/// caller does: a confirmation question ("Just to be sure: ...?") gets a
/// yes or a no, a re-ask ("Sorry, I did not catch that") gets the last
/// reply again. Such a prompt does not use up a `WaitPrompt` step: the
/// script goes on at the prompt after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Habits {
    /// How it answers a confirmation question; None: the script answers
    /// whatever prompt comes next (as `stop_unsure_*` do).
    pub confirm: Option<ConfirmHabit>,
    /// How many times in a row it says its last reply again when re-asked
    /// (0: never).
    pub repeats: u8,
}

impl Habits {
    /// A caller: answers "just to be sure" by what it meant, repeats itself
    /// up to twice when not understood.
    pub const CALLER: Habits = Habits {
        confirm: Some(ConfirmHabit::Meant),
        repeats: 2,
    };
    /// Only the script: every prompt is answered by the next step.
    pub const SCRIPTED: Habits = Habits {
        confirm: None,
        repeats: 0,
    };
}

impl Default for Habits {
    fn default() -> Self {
        Habits::CALLER
    }
}

/// "Yes." or "No." in the language of an espeak-ng voice.
pub fn yes_no_line(voice: &str, yes: bool) -> &'static str {
    match (super::cue::is_mandarin(voice), yes) {
        (true, true) => "对。",
        (true, false) => "不是。",
        (false, true) => "Yes.",
        (false, false) => "No.",
    }
}

/// A simulated debtor.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// Name, also the Request-URI user part that selects it (`sip:paid@...`).
    pub name: String,
    /// espeak-ng voice for its lines (`en-us`, `cmn`).
    pub voice: String,
    /// How it answers.
    pub answer: Answer,
    /// What its phone does with a REFER.
    pub refer: ReferPolicy,
    /// Its script, run after the answer.
    pub steps: Vec<Step>,
    /// What it does with confirmations and re-asks its script does not plan for.
    pub habits: Habits,
}

impl Persona {
    fn person(name: &str, voice: &str, steps: Vec<Step>) -> Persona {
        Persona {
            name: name.into(),
            voice: voice.into(),
            answer: Answer::Ring { ring_ms: 1000 },
            refer: ReferPolicy::Accept,
            steps,
            habits: Habits::CALLER,
        }
    }

    /// The lines it may answer a confirmation question with (yes, no, or
    /// both when it answers by what it meant).
    pub fn confirm_lines(&self) -> Vec<&'static str> {
        let v = &self.voice;
        match self.habits.confirm {
            None => vec![],
            Some(ConfirmHabit::Yes) => vec![yes_no_line(v, true)],
            Some(ConfirmHabit::No) => vec![yes_no_line(v, false)],
            Some(ConfirmHabit::Meant) => vec![yes_no_line(v, true), yes_no_line(v, false)],
        }
    }

    /// Every line this persona says (to render before any call): its
    /// script's, then its answers to confirmations.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Say(t) => Some(t.as_str()),
                _ => None,
            })
            .chain(self.confirm_lines())
    }
}

fn say(t: &str) -> Step {
    Step::Say(t.to_string())
}

/// The greeting a person gives on picking up: short, then silence, so
/// answering-machine detection hears a person.
fn hello(text: &str) -> [Step; 2] {
    [Step::Silence(300), say(text)]
}

/// The set of personas a [`super::SimCallee`] serves, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaBook {
    personas: BTreeMap<String, Persona>,
}

impl Default for PersonaBook {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PersonaBook {
    /// An empty book.
    pub fn empty() -> Self {
        PersonaBook {
            personas: BTreeMap::new(),
        }
    }

    /// The built-in debtors (English, and Mandarin ones prefixed `zh_`).
    pub fn builtin() -> Self {
        use Step::*;
        let mut b = Self::empty();
        let en = "en-us";
        let zh = "cmn-latn-pinyin";
        let p = |name: &str, voice: &str, steps: Vec<Step>| Persona::person(name, voice, steps);
        let seq = |greeting: &str, rest: Vec<Step>| {
            let mut v: Vec<Step> = hello(greeting).to_vec();
            v.extend(rest);
            v
        };
        b.insert(p(
            "paid",
            en,
            seq(
                "Hello?",
                vec![
                    WaitPrompt,
                    say("Yes, speaking."),
                    WaitPrompt,
                    say("I already paid that last week."),
                ],
            ),
        ));
        b.insert(p(
            "promise",
            en,
            seq(
                "Hello?",
                vec![
                    WaitPrompt,
                    say("Yes, this is me."),
                    WaitPrompt,
                    say("I can pay on Friday."),
                    WaitPrompt,
                    say("Yes, that's right."),
                ],
            ),
        ));
        b.insert(p(
            "hardship",
            en,
            seq(
                "Hello?",
                vec![
                    WaitPrompt,
                    say("Yes."),
                    WaitPrompt,
                    say("I lost my job and I cannot pay right now."),
                ],
            ),
        ));
        b.insert(p(
            "wrong_number",
            en,
            seq(
                "Hello?",
                vec![WaitPrompt, say("Sorry, you have the wrong number.")],
            ),
        ));
        b.insert(p(
            "stop",
            en,
            seq(
                "Hello?",
                vec![WaitPrompt, say("Yes."), WaitPrompt, say("Stop calling me.")],
            ),
        ));
        b.insert(p("silent", en, vec![]));
        b.insert(Persona {
            answer: Answer::NoAnswer,
            ..p("no_answer", en, vec![])
        });
        b.insert(Persona {
            answer: Answer::Reject {
                code: 486,
                after_ms: 300,
            },
            ..p("busy", en, vec![])
        });
        b.insert(p(
            "voicemail",
            en,
            vec![
                Silence(200),
                say("Hi, you've reached Maria, I can't take your call right now, please leave a message after the tone."),
                Silence(300),
                Tone { hz: 1000.0, ms: 600 },
            ],
        ));
        b.insert(p(
            "dtmf",
            en,
            seq(
                "Hello?",
                vec![WaitPrompt, Dtmf("1".into()), WaitPrompt, Dtmf("2".into())],
            ),
        ));
        b.insert(p(
            "hangup_mid_prompt",
            en,
            seq("Hello?", vec![IntoPrompt(2000), Hangup]),
        ));
        b.insert(p(
            "barge_in",
            en,
            seq(
                "Hello?",
                vec![
                    WaitPrompt,
                    say("Yes, it's me."),
                    IntoPrompt(1200),
                    say("I already paid it, I already paid it last week."),
                ],
            ),
        ));
        // duecall queues its disclosure and reminder back to back; the gap
        // between them (~300 ms of espeak-ng trailing silence) is no longer
        // than a sentence pause, so the VAD hears one prompt. 8 s in lands
        // in the reminder after the usual ~6.5 s disclosure.
        b.insert(p(
            "barge_in_reminder",
            en,
            seq(
                "Hello?",
                vec![
                    WaitPrompt,
                    say("Yes, it's me."),
                    IntoPrompt(8000),
                    say("I already paid it, I already paid it last week."),
                ],
            ),
        ));
        b.insert(p(
            "zh_paid",
            zh,
            seq(
                "喂？",
                vec![
                    WaitPrompt,
                    say("是我。"),
                    WaitPrompt,
                    say("我上周已经还了。"),
                ],
            ),
        ));
        b.insert(p(
            "zh_promise",
            zh,
            seq(
                "喂？",
                vec![
                    WaitPrompt,
                    say("对，是我。"),
                    WaitPrompt,
                    say("我星期五还。"),
                    WaitPrompt,
                    say("对。"),
                ],
            ),
        ));
        b.insert(p(
            "zh_hardship",
            zh,
            seq(
                "喂？",
                vec![
                    WaitPrompt,
                    say("是我。"),
                    WaitPrompt,
                    say("我失业了，现在还不上。"),
                ],
            ),
        ));
        b.insert(p(
            "zh_wrong_number",
            zh,
            seq("喂？", vec![WaitPrompt, say("你打错了。")]),
        ));
        b.insert(p(
            "zh_stop",
            zh,
            seq(
                "喂？",
                vec![WaitPrompt, say("是我。"), WaitPrompt, say("别再打电话了。")],
            ),
        ));
        b
    }

    /// Adds or replaces a persona.
    pub fn insert(&mut self, p: Persona) {
        self.personas.insert(p.name.clone(), p);
    }

    /// The persona called `name`.
    pub fn get(&self, name: &str) -> Option<&Persona> {
        self.personas.get(name)
    }

    /// The persona a Request-URI user part selects: the exact name, else the
    /// part before the first `-` (`paid-acct42` is `paid`), so many accounts
    /// can dial one persona under distinct URIs.
    pub fn select(&self, user: &str) -> Option<&Persona> {
        self.get(user)
            .or_else(|| user.split_once('-').and_then(|(p, _)| self.get(p)))
    }

    /// Persona names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.personas.keys().map(|s| s.as_str())
    }

    /// All personas.
    pub fn iter(&self) -> impl Iterator<Item = &Persona> {
        self.personas.values()
    }

    /// Adds the personas of a TOML file (see [`PersonaBook::extend_from_toml`]).
    pub fn load_file(&mut self, path: &Path) -> Result<usize, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Personas {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.extend_from_toml(&text, &path.display().to_string())
    }

    /// Adds the personas of a TOML document; returns how many. Format:
    ///
    /// ```toml
    /// [persona.callback]
    /// voice = "en-us"          # espeak-ng voice, default en-us
    /// answer = "ring"          # ring | busy | no_answer | reject
    /// ring_ms = 1000           # ring: ringing before the answer
    /// code = 603               # reject: the status (busy: 486)
    /// after_ms = 300           # busy/reject: delay before the response
    /// refer = "accept"         # accept | reject (603) | a status code
    /// confirm = "meant"        # answer to "Just to be sure: ...?": meant | yes | no | script
    /// repeat = 2               # times it repeats its last reply when re-asked (0: never)
    /// steps = [
    ///   { say = "Hello?" }, "wait_prompt", { say = "Call me tomorrow." },
    ///   { dtmf = "1" }, { silence_ms = 500 }, { into_prompt_ms = 1200 },
    ///   { tone_hz = 1000, tone_ms = 600 }, "hangup",
    /// ]
    /// ```
    pub fn extend_from_toml(&mut self, text: &str, source_name: &str) -> Result<usize, SimError> {
        let err = |message: String| SimError::Personas {
            source_name: source_name.to_string(),
            message,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(e.to_string()))?;
        let Some(personas) = doc.get("persona") else {
            return Err(err("no [persona.<name>] table".into()));
        };
        let personas = personas
            .as_table()
            .ok_or_else(|| err("`persona` must be a table of [persona.<name>]".into()))?;
        let mut n = 0;
        for (name, v) in personas {
            let t = v
                .as_table()
                .ok_or_else(|| err(format!("persona.{name} must be a table")))?;
            let p = parse_persona(name, t).map_err(|m| err(format!("persona.{name}: {m}")))?;
            self.insert(p);
            n += 1;
        }
        Ok(n)
    }
}

fn get_u64(t: &toml::Table, key: &str) -> Result<Option<u64>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_integer()
            .filter(|i| *i >= 0)
            .map(|i| Some(i as u64))
            .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
    }
}

fn parse_persona(name: &str, t: &toml::Table) -> Result<Persona, String> {
    const KEYS: [&str; 9] = [
        "voice", "answer", "ring_ms", "code", "after_ms", "refer", "steps", "confirm", "repeat",
    ];
    if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key `{k}` (expected one of {})",
            KEYS.join(", ")
        ));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(
            "a persona name may hold only letters, digits and `_` (it is a SIP URI user part)"
                .into(),
        );
    }
    let voice = match t.get("voice") {
        None => "en-us".to_string(),
        Some(v) => v.as_str().ok_or("`voice` must be a string")?.to_string(),
    };
    let ring_ms = get_u64(t, "ring_ms")?.unwrap_or(1000);
    let after_ms = get_u64(t, "after_ms")?.unwrap_or(300);
    let code = get_u64(t, "code")?;
    let answer = match t
        .get("answer")
        .map(|v| v.as_str().ok_or("`answer` must be a string"))
        .transpose()?
    {
        None | Some("ring") => Answer::Ring { ring_ms },
        Some("busy") => Answer::Reject {
            code: code.unwrap_or(486) as u16,
            after_ms,
        },
        Some("no_answer") => Answer::NoAnswer,
        Some("reject") => Answer::Reject {
            code: code.unwrap_or(603) as u16,
            after_ms,
        },
        Some(other) => {
            return Err(format!(
                "`answer = \"{other}\"`: expected ring, busy, no_answer or reject"
            ))
        }
    };
    if let Answer::Reject { code, .. } = answer {
        if !(400..=699).contains(&code) {
            return Err(format!(
                "`code = {code}`: a rejection needs a status 400-699"
            ));
        }
    }
    let refer = match t.get("refer") {
        None => ReferPolicy::Accept,
        Some(toml::Value::String(s)) if s == "accept" => ReferPolicy::Accept,
        Some(toml::Value::String(s)) if s == "reject" => ReferPolicy::Reject(603),
        Some(toml::Value::Integer(c)) if (400..=699).contains(c) => ReferPolicy::Reject(*c as u16),
        Some(v) => {
            return Err(format!(
                "`refer = {v}`: expected \"accept\", \"reject\" or a status 400-699"
            ))
        }
    };
    let confirm = match t
        .get("confirm")
        .map(|v| v.as_str().ok_or("`confirm` must be a string"))
        .transpose()?
    {
        None | Some("meant") => Some(ConfirmHabit::Meant),
        Some("yes") => Some(ConfirmHabit::Yes),
        Some("no") => Some(ConfirmHabit::No),
        Some("script") => None,
        Some(other) => {
            return Err(format!(
                "`confirm = \"{other}\"`: expected meant, yes, no or script"
            ))
        }
    };
    let repeats = match get_u64(t, "repeat")? {
        None => Habits::CALLER.repeats,
        Some(n) if n <= 5 => n as u8,
        Some(n) => return Err(format!("`repeat = {n}`: at most 5")),
    };
    let mut steps = Vec::new();
    if let Some(v) = t.get("steps") {
        let arr = v.as_array().ok_or("`steps` must be an array")?;
        for (i, s) in arr.iter().enumerate() {
            steps.push(parse_step(s).map_err(|m| format!("steps[{i}]: {m}"))?);
        }
    }
    Ok(Persona {
        name: name.to_string(),
        voice,
        answer,
        refer,
        steps,
        habits: Habits { confirm, repeats },
    })
}

fn parse_step(v: &toml::Value) -> Result<Step, String> {
    const EXPECTED: &str = "expected \"wait_prompt\", \"hangup\", or a table with one of say, dtmf, silence_ms, into_prompt_ms, tone_hz (+ tone_ms)";
    match v {
        toml::Value::String(s) => match s.as_str() {
            "wait_prompt" => Ok(Step::WaitPrompt),
            "hangup" => Ok(Step::Hangup),
            other => Err(format!("`{other}`: {EXPECTED}")),
        },
        toml::Value::Table(t) => {
            let keys: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
            let step = match keys.as_slice() {
                ["say"] => Step::Say(
                    t["say"]
                        .as_str()
                        .ok_or("`say` must be a string")?
                        .to_string(),
                ),
                ["dtmf"] => {
                    let d = t["dtmf"].as_str().ok_or("`dtmf` must be a string")?;
                    if d.is_empty()
                        || !d
                            .chars()
                            .all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c))
                    {
                        return Err(format!("`dtmf = \"{d}\"`: digits 0-9, *, #, A-D"));
                    }
                    Step::Dtmf(d.to_ascii_uppercase())
                }
                ["silence_ms"] => Step::Silence(get_u64(t, "silence_ms")?.unwrap_or(0)),
                ["into_prompt_ms"] => Step::IntoPrompt(get_u64(t, "into_prompt_ms")?.unwrap_or(0)),
                ["wait_prompt"] => Step::WaitPrompt,
                ["hangup"] => Step::Hangup,
                ks if ks.contains(&"tone_hz")
                    && ks.iter().all(|k| *k == "tone_hz" || *k == "tone_ms") =>
                {
                    let hz = t["tone_hz"]
                        .as_float()
                        .or_else(|| t["tone_hz"].as_integer().map(|i| i as f64))
                        .ok_or("`tone_hz` must be a number")?;
                    if !(50.0..=3900.0).contains(&hz) {
                        return Err(format!("`tone_hz = {hz}`: 50-3900 Hz fits an 8 kHz line"));
                    }
                    Step::Tone {
                        hz: hz as f32,
                        ms: get_u64(t, "tone_ms")?.unwrap_or(600),
                    }
                }
                _ => return Err(format!("{{{}}}: {EXPECTED}", keys.join(", "))),
            };
            Ok(step)
        }
        other => Err(format!("{other}: {EXPECTED}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_every_persona_the_tests_dial() {
        let b = PersonaBook::builtin();
        let others = [
            "barge_in_reminder",
            "zh_paid",
            "zh_promise",
            "zh_hardship",
            "zh_wrong_number",
            "zh_stop",
        ];
        // The demo's personas: campaign::demo's test (the demo uses the sim).
        for n in others.iter() {
            assert!(b.get(n).is_some(), "missing {n}");
        }
        assert_eq!(
            b.get("busy").unwrap().answer,
            Answer::Reject {
                code: 486,
                after_ms: 300
            }
        );
        assert_eq!(b.get("no_answer").unwrap().answer, Answer::NoAnswer);
        let paid: Vec<&str> = b.get("paid").unwrap().lines().collect();
        assert_eq!(
            paid,
            [
                "Hello?",
                "Yes, speaking.",
                "I already paid that last week.",
                "Yes.",
                "No."
            ],
            "the script's lines, then its answers to a confirmation"
        );
        assert_eq!(
            b.get("zh_hardship").unwrap().confirm_lines(),
            ["对。", "不是。"],
            "a Mandarin debtor confirms in Mandarin"
        );
    }

    #[test]
    fn toml_habits_default_to_a_caller_and_can_leave_it_to_the_script() {
        let mut b = PersonaBook::empty();
        b.extend_from_toml(
            r#"
[persona.plain]
steps = [ { say = "Hello?" } ]
[persona.denies]
confirm = "no"
repeat = 1
[persona.scripted]
confirm = "script"
repeat = 0
"#,
            "test",
        )
        .unwrap();
        assert_eq!(b.get("plain").unwrap().habits, Habits::CALLER);
        assert_eq!(
            b.get("denies").unwrap().habits,
            Habits {
                confirm: Some(ConfirmHabit::No),
                repeats: 1
            }
        );
        assert_eq!(b.get("denies").unwrap().confirm_lines(), ["No."]);
        assert_eq!(b.get("scripted").unwrap().habits, Habits::SCRIPTED);
        assert_eq!(b.get("scripted").unwrap().lines().count(), 0);
        for bad in ["confirm = \"maybe\"", "repeat = 9", "confirm = 1"] {
            let e = b
                .extend_from_toml(&format!("[persona.x]\n{bad}\n"), "f.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("persona.x"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_shipped_scripts_that_answer_confirmations_themselves_say_so() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/sim.toml");
        let mut b = PersonaBook::empty();
        b.load_file(&path).unwrap();
        for n in [
            "stop_unsure_yes",
            "stop_unsure_1",
            "stop_unsure_no",
            "stop_unsure_2",
            "stop_unsure_silent",
        ] {
            assert_eq!(b.get(n).unwrap().habits, Habits::SCRIPTED, "{n}");
        }
        assert_eq!(b.get("dispute").unwrap().habits, Habits::CALLER);
    }

    #[test]
    fn uri_user_with_a_suffix_selects_the_persona_before_the_dash() {
        let b = PersonaBook::builtin();
        assert_eq!(
            b.select("paid-acct42").map(|p| p.name.as_str()),
            Some("paid")
        );
        assert_eq!(
            b.select("wrong_number").map(|p| p.name.as_str()),
            Some("wrong_number")
        );
        assert!(b.select("nobody").is_none());
        assert!(b.select("nobody-paid").is_none());
    }

    #[test]
    fn toml_persona_parses_every_step_kind() {
        let mut b = PersonaBook::empty();
        let n = b
            .extend_from_toml(
                r#"
[persona.callback]
voice = "en-us+f3"
ring_ms = 200
refer = 603
steps = [ { say = "Hello?" }, "wait_prompt", { dtmf = "1#" }, { silence_ms = 500 },
          { into_prompt_ms = 1200 }, { tone_hz = 1000, tone_ms = 400 }, "hangup" ]

[persona.declines]
answer = "reject"
code = 603
"#,
                "test",
            )
            .unwrap();
        assert_eq!(n, 2);
        let p = b.get("callback").unwrap();
        assert_eq!(p.voice, "en-us+f3");
        assert_eq!(p.answer, Answer::Ring { ring_ms: 200 });
        assert_eq!(p.refer, ReferPolicy::Reject(603));
        assert_eq!(
            p.steps,
            vec![
                Step::Say("Hello?".into()),
                Step::WaitPrompt,
                Step::Dtmf("1#".into()),
                Step::Silence(500),
                Step::IntoPrompt(1200),
                Step::Tone {
                    hz: 1000.0,
                    ms: 400
                },
                Step::Hangup
            ]
        );
        assert_eq!(
            b.get("declines").unwrap().answer,
            Answer::Reject {
                code: 603,
                after_ms: 300
            }
        );
    }

    #[test]
    fn the_shipped_example_personas_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/sim.toml");
        let mut b = PersonaBook::builtin();
        let before = b.names().count();
        let n = b.load_file(&path).unwrap();
        assert!(n >= 5);
        assert_eq!(b.names().count(), before + n);
        assert_eq!(b.get("no_refer").unwrap().refer, ReferPolicy::Reject(603));
    }

    #[test]
    fn toml_errors_name_the_persona_and_step() {
        let mut b = PersonaBook::empty();
        let e = b
            .extend_from_toml("[persona.x]\nsteps = [ { shout = \"hi\" } ]\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.toml") && e.contains("persona.x") && e.contains("steps[0]"),
            "{e}"
        );
        let e = b
            .extend_from_toml("[persona.x]\nanswer = \"maybe\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
        let e = b
            .extend_from_toml("[persona.x]\nsteps = [ { dtmf = \"9x\" } ]\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("9x"), "{e}");
        let e = b
            .extend_from_toml("[persona.x]\nanswer = \"reject\"\ncode = 200\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("400-699"), "{e}");
        assert!(b.extend_from_toml("not toml [", "f.toml").is_err());
        assert!(b.extend_from_toml("[persona.\"a b\"]\n", "f.toml").is_err());
    }
}
