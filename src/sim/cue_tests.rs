use super::*;

use crate::media::g711::{decode, encode, Codec};

/// duecall's `[say.*]` prompts of a language, placeholders filled.
fn prompts(lang: &str) -> (String, u32, Vec<(String, String)>) {
    prompts_named(lang, if lang == "zh" { "李明" } else { "Jordan Lee" })
}

/// duecall's `[say.*]` prompts of a language, every placeholder filled with `name`.
fn prompts_named(lang: &str, name: &str) -> (String, u32, Vec<(String, String)>) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("prompts/{lang}.toml"));
    let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let meta = doc["meta"].as_table().unwrap();
    let voice = meta["voice"].as_str().unwrap().to_string();
    let speed = meta["speed"].as_integer().unwrap() as u32;
    let fill = |t: &str| {
        let mut out = String::new();
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let j = rest[i..].find('}').map_or(rest.len(), |j| i + j + 1);
            out.push_str(name);
            rest = &rest[j..];
        }
        out.push_str(rest);
        out
    };
    let say = doc["say"].as_table().unwrap();
    let texts = say
        .iter()
        .map(|(id, v)| (id.clone(), fill(v["text"].as_str().unwrap())))
        .collect();
    (voice, speed, texts)
}

/// What the kind of each prompt id should be heard as.
fn expected(id: &str) -> PromptKind {
    if id.starts_with("confirm_") && id != "confirm_promise" {
        PromptKind::Confirm(None)
    } else if id.starts_with("reask_") {
        PromptKind::Reask
    } else {
        PromptKind::Other
    }
}

#[test]
fn every_confirm_and_reask_prompt_opens_with_its_cue_words() {
    for (lang, voice) in [("en", "en-us"), ("zh", "cmn-latn-pinyin")] {
        let (_, _, texts) = prompts(lang);
        for (id, text) in &texts {
            let want = expected(id);
            let opens: Vec<PromptKind> = cue_texts(voice)
                .iter()
                .filter(|(_, cue)| text.starts_with(cue))
                .map(|(k, _)| *k)
                .collect();
            let want: Vec<PromptKind> = [want]
                .into_iter()
                .filter(|k| *k != PromptKind::Other)
                .collect();
            assert_eq!(opens, want, "{lang} {id}: {text:?}");
        }
    }
}

/// Needs espeak-ng. Every prompt of en and zh, rendered as duecall renders
/// it, after 300 ms of silence and through G.711: the confirmations and
/// re-asks are told apart from each other and from every other prompt
/// (the sim's cues are rendered at its own speed, 165, as in a call).
#[test]
fn the_debtor_tells_confirmations_and_reasks_from_every_other_prompt() {
    let dir = std::env::temp_dir().join(format!("duecall-cues-{}", std::process::id()));
    let mut wrong = Vec::new();
    let mut report = String::new();
    for (lang, sim_voice) in [("en", "en-us"), ("zh", "cmn-latn-pinyin")] {
        let (voice, speed, texts) = prompts(lang);
        let rendered: Vec<(PromptKind, Vec<i16>)> = cue_texts(sim_voice)
            .iter()
            .map(|(k, t)| {
                (
                    *k,
                    crate::sim::audio::render_line(&dir, sim_voice, 165, t).unwrap(),
                )
            })
            .collect();
        let cues = PromptCues::new(rendered.iter().map(|(k, p)| (*k, &p[..])));
        assert_eq!(cues.cues.len(), 3);
        let audio = crate::media::tts::PromptAudio::new(&dir, lang, &dir, &voice, speed);
        for (id, text) in &texts {
            let (pcm, _) = audio.load(id, text, false).unwrap();
            let line = on_the_line(&pcm, 0, cues.needed_samples());
            let got = cues.classify(&line);
            let scores = cues.scores(&line);
            report.push_str(&format!("{lang} {id}: {got:?} {scores:?}\n"));
            // Opens like a re-ask ("没能听清" / "没有听清") and is a closing:
            // a repeated reply to it changes nothing.
            let harmless = lang == "zh" && id == "unsure_stop_close" && got == PromptKind::Reask;
            if got != expected(id) && !harmless {
                wrong.push(format!("{lang} {id}: heard {got:?}, scores {scores:?}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{wrong:#?}\n{report}");
}

#[test]
fn silence_and_short_audio_are_other() {
    let cue: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.05).sin() * (i % 900) as f32) as i16)
        .collect();
    let cues = PromptCues::new([(PromptKind::Confirm(None), &cue[..])]);
    assert_eq!(cues.classify(&[]), PromptKind::Other);
    assert_eq!(cues.classify(&[0; 16000]), PromptKind::Other);
    let mut heard = vec![0i16; 1600];
    heard.extend_from_slice(&cue);
    assert_eq!(
        cues.classify(&heard),
        PromptKind::Confirm(None),
        "the cue itself, 200 ms in"
    );
    assert!(PromptCues::new([]).is_empty());
}

#[test]
fn a_debtor_in_any_voice_knows_the_cues_in_the_voice_duecall_speaks() {
    for lang in ["en", "zh"] {
        let (voice, _, _) = prompts(lang);
        let debtors: &[&str] = if lang == "zh" {
            &["cmn-latn-pinyin", "cmn-latn-pinyin+f3"]
        } else {
            &["en-us", "en-us+f3", "en-gb-x-rp", "flite:slt"]
        };
        for d in debtors {
            assert_eq!(cue_voice(d), voice, "{d}");
            assert_eq!(cue_speed(d), prompts(lang).1, "{d}");
        }
    }
}

/// The `[say.*]` texts of a language as written (placeholders kept).
fn raw_texts(lang: &str) -> Vec<(String, String)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("prompts/{lang}.toml"));
    let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["say"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(id, v)| (id.clone(), v["text"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn the_confirmation_questions_the_debtor_knows_are_the_scripts_own() {
    for (lang, voice) in [("en", "en-us"), ("zh", "cmn-latn-pinyin")] {
        let texts = raw_texts(lang);
        let script: Vec<(&str, &str)> = texts
            .iter()
            .filter(|(id, _)| id.starts_with("confirm_") && id != "confirm_promise")
            .map(|(id, t)| (id.as_str(), t.as_str()))
            .collect();
        let known: Vec<(&str, &str)> = confirm_texts(voice)
            .iter()
            .map(|(id, t)| (id.as_str(), *t))
            .collect();
        let mut script = script;
        let mut known = known;
        script.sort();
        known.sort();
        assert_eq!(known, script, "{lang}");
        for (_, t) in &known {
            assert!(t.matches('{').count() <= 1, "{lang}: one slot at most: {t}");
        }
        for kind in crate::intent::IntentKind::ALL {
            if let Some(id) = PromptId::confirming(*kind) {
                assert!(known.iter().any(|(k, _)| *k == id.as_str()), "{lang} {id}");
            }
        }
    }
}

/// Needs espeak-ng. Every prompt of en and zh rendered as duecall renders
/// it (with two different names in the slots, which the debtor does not
/// know), after 300 ms of silence, followed by the tracker's end silence,
/// through G.711: each confirmation question is identified as itself with
/// a margin over the next best, and no other prompt is taken for a
/// confirmation. Prints every confirmation's scores and the smallest margin.
#[test]
fn the_debtor_tells_which_confirmation_it_was_asked() {
    let dir = std::env::temp_dir().join(format!("duecall-which-{}", std::process::id()));
    let mut wrong = Vec::new();
    let mut report = String::new();
    let mut worst = (f32::MAX, String::new());
    for (lang, sim_voice, names) in [
        ("en", "en-us", ["Jordan Lee", "Maria Lopez"]),
        ("zh", "cmn-latn-pinyin", ["李明", "王秀英"]),
    ] {
        let at = |speed: u32, t: &str| {
            crate::sim::audio::render_line(&dir, sim_voice, speed, t).unwrap()
        };
        let rendered: Vec<(PromptKind, Vec<i16>)> = cue_texts(sim_voice)
            .iter()
            .map(|(k, t)| (*k, at(165, t)))
            .collect();
        let render = |t: &str| at(cue_speed(sim_voice), t);
        let parts: Vec<(PromptId, Vec<i16>, Option<Vec<i16>>)> = confirm_parts(sim_voice)
            .into_iter()
            .map(|(id, head, tail)| {
                let tail = tail.map(|t| if t.is_empty() { Vec::new() } else { render(t) });
                (id, render(head), tail)
            })
            .collect();
        let cues = PromptCues::new(rendered.iter().map(|(k, p)| (*k, &p[..])))
            .with_confirms(parts.iter().map(|(id, h, t)| (*id, &h[..], t.as_deref())));
        assert_eq!(cues.confirms.len(), 7, "{lang}");
        for name in names {
            let (voice, speed, texts) = prompts_named(lang, name);
            let audio = crate::media::tts::PromptAudio::new(&dir, lang, &dir, &voice, speed);
            for (id, text) in &texts {
                let (pcm, _) = audio.load(id, text, false).unwrap();
                let line = on_the_line(&pcm, 4800, cues.needed_samples());
                let got = cues.classify(&line);
                let want = match expected(id) {
                    PromptKind::Confirm(_) => PromptKind::Confirm(PromptId::parse(id)),
                    k => k,
                };
                // Known gap (session 15): zh `confirm_not_available` and
                // `confirm_wrong_number` differ by too little after the name
                // slot (margins 0.008-0.035); the debtor cannot tell which
                // and says no (a caller confirms only what it meant). Taking
                // one for the other would still fail here.
                let cannot_tell = lang == "zh"
                    && *id == "confirm_not_available"
                    && got == PromptKind::Confirm(None);
                let harmless = cannot_tell
                    || (lang == "zh" && id == "unsure_stop_close" && got == PromptKind::Reask);
                if got != want && !harmless {
                    wrong.push(format!(
                        "{lang} {name} {id}: heard {got:?}, scores {:?}",
                        cues.confirm_scores(&line)
                    ));
                }
                if let PromptKind::Confirm(Some(_)) = want {
                    let mut s = cues.confirm_scores(&line);
                    s.sort_by(|a, b| b.1.total_cmp(&a.1));
                    let margin = s[0].1 - s[1].1;
                    report.push_str(&format!(
                        "{lang} {name} {id}: best {} {:.3}, next {} {:.3}, margin {margin:.3}\n",
                        s[0].0, s[0].1, s[1].0, s[1].1
                    ));
                    if margin < worst.0 && !cannot_tell {
                        worst = (margin, format!("{lang} {name} {id}"));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{report}smallest margin: {:.3} ({})", worst.0, worst.1);
    assert!(wrong.is_empty(), "{wrong:#?}\n{report}");
    assert!(worst.0 >= WHICH_MARGIN, "{report}");
}

/// A prompt as the debtor hears it: as the agent plays it (one frame of
/// leading silence kept) after 300 ms of silence, `after` samples of
/// silence behind it, cut to `needed` samples, through G.711 u-law.
fn on_the_line(pcm: &[i16], after: usize, needed: usize) -> Vec<i16> {
    let first = pcm
        .iter()
        .position(|s| (*s as i32).abs() > 300)
        .unwrap_or(0);
    let mut heard = vec![0i16; 2400];
    heard.extend_from_slice(&pcm[first.saturating_sub(160)..]);
    heard.extend(std::iter::repeat_n(0i16, after));
    heard.truncate(needed);
    let mut bytes = Vec::new();
    encode(Codec::Pcmu, &heard, &mut bytes);
    let mut line = Vec::new();
    decode(Codec::Pcmu, &bytes, &mut line);
    line
}
