//! `duecall classify`: the classifier from the command line (a thin driver).
//!
//! Owns argument handling, finding the prompts file and printing one JSON
//! object per utterance. The lead wires [`ClassifyArgs`] into the clap CLI.
//! May read the clock (for a default "today") and files; decides nothing.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{Local, NaiveDate, NaiveTime};

use super::{Classifier, IntentError, Lexicon};

/// Arguments of `duecall classify`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClassifyArgs {
    /// Language of the lexicon (prompts/<lang>.toml).
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// The day dates are resolved against (default: today, local clock).
    #[arg(long)]
    pub today: Option<NaiveDate>,
    /// Local time of day for "in an hour" (default: now, local clock).
    #[arg(long)]
    pub time: Option<NaiveTime>,
    /// Confidence below which a reply is unknown.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// A prompts directory or a .toml file (default: ./prompts/, else the built-in copy).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// The utterance; without it, one utterance per stdin line.
    pub text: Option<String>,
}

const BUILTIN_EN: &str = include_str!("../../prompts/en.toml");
const BUILTIN_ZH: &str = include_str!("../../prompts/zh.toml");

/// Loads the lexicon for `lang`: from `prompts` (a directory or a file), else
/// `./prompts/<lang>.toml`, else the copy compiled into the binary.
pub fn load_lexicon(lang: &str, prompts: Option<&Path>) -> Result<Lexicon, IntentError> {
    if let Some(p) = prompts {
        let file = if p.is_dir() {
            p.join(format!("{lang}.toml"))
        } else {
            p.to_path_buf()
        };
        return Lexicon::load(&file);
    }
    let local = Path::new("prompts").join(format!("{lang}.toml"));
    if local.is_file() {
        return Lexicon::load(&local);
    }
    match lang {
        "en" => Lexicon::from_toml_str(BUILTIN_EN, "en"),
        "zh" => Lexicon::from_toml_str(BUILTIN_ZH, "zh"),
        other => Err(IntentError::Key {
            key: "--lang".into(),
            problem: format!("no prompts/{other}.toml here and no built-in lexicon for \"{other}\" (built in: en, zh)"),
        }),
    }
}

/// Runs `duecall classify`: prints `{"text","intent","confidence","reason","slots"}`
/// per utterance, one JSON object per line.
pub fn run_classify(
    args: &ClassifyArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), IntentError> {
    let lexicon = load_lexicon(&args.lang, args.prompts.as_deref())?;
    let classifier = Classifier::new(lexicon).with_threshold(args.threshold);
    let now = Local::now();
    let today = args.today.unwrap_or_else(|| now.date_naive());
    let time = args
        .time
        .or_else(|| args.today.is_none().then(|| now.time()));
    let one = |text: &str, out: &mut dyn Write| -> Result<(), IntentError> {
        let intent = classifier.classify(text, today, time);
        let obj = serde_json::json!({
            "text": text,
            "intent": intent.kind,
            "confidence": (intent.confidence * 1000.0).round() / 1000.0,
            "reason": intent.reason,
            "slots": intent.slots,
        });
        writeln!(out, "{obj}")?;
        Ok(())
    };
    match &args.text {
        Some(t) => one(t, out)?,
        None => {
            for line in input.lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                one(line.trim_end(), out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: Option<&str>, lang: &str) -> ClassifyArgs {
        ClassifyArgs {
            lang: lang.into(),
            today: NaiveDate::from_ymd_opt(2024, 5, 15),
            time: NaiveTime::from_hms_opt(10, 0, 0),
            threshold: 0.5,
            prompts: None,
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn one_text_prints_one_json_object() {
        let mut out = Vec::new();
        run_classify(
            &args(Some("I'll pay next Friday"), "en"),
            &mut &b""[..],
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["intent"], "promise_to_pay");
        assert_eq!(v["slots"]["date"], "2024-05-24");
        assert_eq!(v["text"], "I'll pay next Friday");
    }

    #[test]
    fn stdin_lines_print_one_object_each() {
        let mut out = Vec::new();
        let input = "我已经还了\n\n打错了\n";
        run_classify(&args(None, "zh"), &mut input.as_bytes(), &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["intent"], "already_paid");
        assert_eq!(lines[1]["intent"], "wrong_number");
    }

    #[test]
    fn unknown_language_names_the_flag() {
        let e = load_lexicon("xx", None).unwrap_err();
        assert!(e.to_string().starts_with("--lang:"), "{e}");
    }

    #[test]
    fn prompts_file_that_does_not_exist_is_named() {
        let e = load_lexicon("en", Some(Path::new("/nonexistent/en.toml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/en.toml"), "{e}");
    }
}
