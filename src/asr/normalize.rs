//! Text normalisation of a free-text recogniser's output (Whisper writes
//! like a person types) into the spoken form the grammar engines produce and
//! the intent lexicon is written in.
//!
//! Owns: English (lower case; digits, ordinals, amounts, percentages and
//! clock times spelled out: "$200" -> "two hundred dollars", "the 20th" ->
//! "the twentieth", "3:30 p.m." -> "three thirty p m"; punctuation dropped
//! except sentence breaks, kept as " , " so the classifier still sees
//! clauses) and Mandarin (traditional characters to simplified with the
//! OpenCC table in `zh_t2s.tsv`, spaces removed). Never classifies.

use std::collections::HashMap;
use std::sync::OnceLock;

// The words for 0-19: the one table prompts and replies already share.
use crate::account::EN_NUMBER_WORDS as ONES;
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// `n` in English words ("one thousand two hundred fifty").
pub fn number_words(n: u64) -> String {
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        if n >= 100 {
            out.push(ONES[(n / 100) as usize].to_string());
            out.push("hundred".into());
        }
        let r = n % 100;
        if r >= 20 {
            out.push(TENS[(r / 10) as usize].to_string());
            if !r.is_multiple_of(10) {
                out.push(ONES[(r % 10) as usize].to_string());
            }
        } else if r > 0 || n == 0 {
            out.push(ONES[r as usize].to_string());
        }
    }
    let mut out = Vec::new();
    let mut rest = n;
    for (scale, name) in [
        (1_000_000_000u64, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        if rest >= scale {
            below_thousand(rest / scale, &mut out);
            out.push(name.into());
            rest %= scale;
        }
    }
    if rest > 0 || out.is_empty() {
        below_thousand(rest, &mut out);
    }
    out.join(" ")
}

/// `n` as an English ordinal in words ("twentieth", "twenty first").
pub fn ordinal_words(n: u64) -> String {
    let words = number_words(n);
    let (head, last) = match words.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l.to_string()),
        None => (String::new(), words.clone()),
    };
    let ord = match last.as_str() {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        l if l.ends_with('y') => format!("{}ieth", &l[..l.len() - 1]),
        l => format!("{l}th"),
    };
    format!("{head}{ord}")
}

/// Normalises recogniser text for `lang` (see the module comment).
pub fn normalize(text: &str, lang: &str) -> String {
    if lang.to_ascii_lowercase().starts_with("zh") {
        normalize_zh(text)
    } else {
        normalize_en(text)
    }
}

/// English: see the module comment.
pub fn normalize_en(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut clause_break = false;
    let push_break = |out: &mut Vec<String>, brk: &mut bool| {
        if *brk && !out.is_empty() && out.last().map(String::as_str) != Some(",") {
            out.push(",".into());
        }
        *brk = false;
    };
    // Split on whitespace, then peel punctuation off each piece.
    for raw in text.split_whitespace() {
        let piece: String = raw
            .chars()
            .map(|c| match c {
                '\u{2019}' | '\u{2018}' | '`' => '\'',
                '\u{2013}' | '\u{2014}' => '-',
                c => c,
            })
            .collect();
        let mut core = piece.as_str();
        let mut trailing_break = false;
        while let Some(c) = core.chars().last() {
            if matches!(c, '.' | ',' | '?' | '!' | ';' | ':') {
                trailing_break = true;
                core = &core[..core.len() - c.len_utf8()];
            } else if matches!(c, '"' | ')' | ']' | '\'' | '…') {
                core = &core[..core.len() - c.len_utf8()];
            } else {
                break;
            }
        }
        let core = core.trim_start_matches(['"', '(', '[', '\'', '¿', '¡']);
        if !core.is_empty() {
            push_break(&mut out, &mut clause_break);
            for sub in core.split(['-', '/']).filter(|s| !s.is_empty()) {
                out.extend(spoken_token(sub));
            }
        }
        if trailing_break && !is_abbreviation(core) {
            clause_break = true;
        }
    }
    while out.last().map(String::as_str) == Some(",") {
        out.pop();
    }
    out.join(" ")
}

/// Abbreviations whose full stop is not a sentence break ("p.m.", "Mr.").
fn is_abbreviation(core: &str) -> bool {
    let l = core.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "a.m" | "p.m" | "mr" | "mrs" | "ms" | "dr" | "st" | "vs"
    )
}

/// One punctuation-free piece as spoken words.
fn spoken_token(piece: &str) -> Vec<String> {
    let lower = piece.to_lowercase();
    let s = lower.as_str();
    // Amounts: $200, $1,250.50, 200$.
    if let Some(num) = s.strip_prefix('$').or_else(|| s.strip_suffix('$')) {
        if let Some(w) = amount_words(num, "dollars", "dollar", "cents") {
            return w;
        }
    }
    if let Some(num) = s.strip_suffix('%') {
        if let Some(n) = plain_number(num) {
            let mut w = words_of(&number_words(n));
            w.push("percent".into());
            return w;
        }
    }
    // Clock times: 3:30, 10:00.
    if let Some((h, m)) = s.split_once(':') {
        if let (Some(h), Some(m)) = (plain_number(h), plain_number(m)) {
            if h < 24 && m < 60 && !m.to_string().is_empty() {
                let mut w = words_of(&number_words(h));
                match m {
                    0 => {}
                    1..=9 => {
                        w.push("oh".into());
                        w.extend(words_of(&number_words(m)));
                    }
                    _ => w.extend(words_of(&number_words(m))),
                }
                return w;
            }
        }
    }
    // a.m. / p.m. (the dots are gone by now: "a.m" "p.m").
    if s == "a.m" || s == "am." {
        return vec!["a".into(), "m".into()];
    }
    if s == "p.m" || s == "pm." {
        return vec!["p".into(), "m".into()];
    }
    // Ordinals: 1st 2nd 3rd 20th.
    for suf in ["st", "nd", "rd", "th"] {
        if let Some(num) = s.strip_suffix(suf) {
            if let Some(n) = plain_number(num) {
                return words_of(&ordinal_words(n));
            }
        }
    }
    if let Some(n) = plain_number(s) {
        return words_of(&number_words(n));
    }
    // Digits glued to words ("5pm", "30days"): split at the boundary.
    let split_at = s
        .char_indices()
        .find(|(i, c)| *i > 0 && !c.is_ascii_digit() && s[..*i].chars().all(|d| d.is_ascii_digit()))
        .map(|(i, _)| i);
    if let Some(i) = split_at {
        let (num, rest) = s.split_at(i);
        let mut w = spoken_token(num);
        w.extend(spoken_token(rest));
        return w;
    }
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '.')
        .collect();
    let cleaned = cleaned.trim_matches('.').replace('.', " ");
    if cleaned == "ok" {
        return vec!["okay".into()];
    }
    words_of(&cleaned)
}

fn words_of(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// "1,250" / "200" (digits with thousands commas) as a number.
fn plain_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == ',') {
        return None;
    }
    if !s.chars().next()?.is_ascii_digit() {
        return None;
    }
    s.replace(',', "").parse().ok()
}

/// "200" or "1,250.50" with a unit: "two hundred dollars", "... fifty cents".
fn amount_words(num: &str, unit: &str, unit_one: &str, cents: &str) -> Option<Vec<String>> {
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (num, None),
    };
    let n = plain_number(whole)?;
    let mut w = words_of(&number_words(n));
    w.push(if n == 1 { unit_one } else { unit }.to_string());
    if let Some(f) = frac {
        let c: u64 = f.parse().ok()?;
        if c > 0 {
            w.push("and".into());
            w.extend(words_of(&number_words(c)));
            w.push(cents.into());
        }
    }
    Some(w)
}

/// The traditional -> simplified table (OpenCC t2s, characters).
fn t2s() -> &'static HashMap<char, char> {
    static MAP: OnceLock<HashMap<char, char>> = OnceLock::new();
    MAP.get_or_init(|| {
        include_str!("zh_t2s.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (t, s) = l.split_once('\t')?;
                let (mut t, mut s) = (t.chars(), s.chars());
                match (t.next(), t.next(), s.next(), s.next()) {
                    (Some(t), None, Some(s), None) => Some((t, s)),
                    _ => None,
                }
            })
            .collect()
    })
}

/// Simplified form of one character (itself when it has none).
pub fn to_simplified(c: char) -> char {
    t2s().get(&c).copied().unwrap_or(c)
}

/// Mandarin: simplified characters, no spaces between CJK characters.
pub fn normalize_zh(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_cjk = false;
    let chars: Vec<char> = text.trim().chars().map(to_simplified).collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            let next_cjk = chars.get(i + 1).is_some_and(|n| is_cjk(*n));
            if prev_cjk || next_cjk {
                continue;
            }
            if !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        prev_cjk = is_cjk(c);
        out.push(c);
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ordinals_are_spelled() {
        assert_eq!(number_words(0), "zero");
        assert_eq!(number_words(15), "fifteen");
        assert_eq!(number_words(200), "two hundred");
        assert_eq!(number_words(1250), "one thousand two hundred fifty");
        assert_eq!(ordinal_words(1), "first");
        assert_eq!(ordinal_words(20), "twentieth");
        assert_eq!(ordinal_words(21), "twenty first");
        assert_eq!(ordinal_words(12), "twelfth");
        assert_eq!(ordinal_words(30), "thirtieth");
    }

    #[test]
    fn whisper_punctuation_digits_and_amounts_become_spoken_words() {
        assert_eq!(normalize_en("Yes, speaking."), "yes , speaking");
        assert_eq!(
            normalize_en("I'll pay $200 on the 20th."),
            "i'll pay two hundred dollars on the twentieth"
        );
        assert_eq!(
            normalize_en("I paid $1,250.50 yesterday!"),
            "i paid one thousand two hundred fifty dollars and fifty cents yesterday"
        );
        assert_eq!(
            normalize_en("Call me at 3:30 p.m. tomorrow"),
            "call me at three thirty p m tomorrow"
        );
        assert_eq!(normalize_en("5pm"), "five pm");
        assert_eq!(normalize_en("OK. Who's this?"), "okay , who's this");
        assert_eq!(
            normalize_en("It's 100% not mine"),
            "it's one hundred percent not mine"
        );
        assert_eq!(normalize_en("Hmm... well—no"), "hmm , well no");
        assert_eq!(normalize_en("  "), "");
    }

    #[test]
    fn traditional_mandarin_becomes_simplified_without_spaces() {
        assert_eq!(normalize_zh("我已經還錢了"), "我已经还钱了");
        assert_eq!(normalize_zh("請 別再 打電話"), "请别再打电话");
        assert_eq!(normalize_zh("15號"), "15号");
        assert_eq!(to_simplified('說'), '说');
        assert!(t2s().len() > 3000, "{}", t2s().len());
    }
}
