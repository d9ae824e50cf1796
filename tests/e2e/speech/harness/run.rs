//! Running clips through the speech path as calls run it: 20 ms frames, the
//! VAD gate, the recognizer with the turn's grammar, the intent classifier.
//!
//! Owns: [`decode_clip`] and [`evaluate`]. Never changes what the
//! recognizer or classifier do: it drives the same public APIs the call
//! driver uses.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveTime;
use duecall::asr::jsgf::ReplyGrammar;
use duecall::asr::sphinx::{LEAD_RULE, TAIL_RULE};
use duecall::asr::turns::{turn_grammar_with, words, GrammarMode};
use duecall::asr::{AsrError, Recognizer, Transcript, FRAME_SAMPLES, SAMPLE_RATE};
use duecall::dialogue::script::Script;
use duecall::intent::eval::eval_today;
use duecall::intent::{Classifier, Lexicon};
use duecall::media::vad::{SpeechGate, VadConfig, VadEvent};

use super::render::{render, variant};
use super::report::{norm_tokens, word_edits, ClipResult, SpeechReport};
use super::sets::Utterance;

/// Feeds `pcm` in 20 ms frames through a VAD gate into `rec` (which has
/// its grammar set) and returns the transcript of the first utterance the
/// VAD finds (the dialogue ends the turn there), empty when none, and how
/// many samples reached the recognizer.
pub fn decode_clip(
    rec: &mut dyn Recognizer,
    vad: &VadConfig,
    pcm: &[i16],
) -> Result<(Transcript, usize), AsrError> {
    let mut gate = SpeechGate::new(vad.clone());
    let mut out = Vec::with_capacity(4 * FRAME_SAMPLES);
    let mut fed = 0;
    for frame in pcm.chunks(FRAME_SAMPLES) {
        out.clear();
        let ev = gate.process(frame, &mut out);
        if !out.is_empty() {
            fed += out.len();
            rec.accept(&out)?;
        }
        if matches!(ev, Some(VadEvent::SpeechEnd { .. })) {
            return Ok((rec.finish()?, fed));
        }
    }
    let _ = gate.force_end();
    Ok((rec.finish()?, fed))
}

/// Runs the clips `(utterance index, k)` through the pipeline: one decoder
/// reused across clips (as a pooled decoder is across calls), the grammar
/// of each clip's turn, the VAD gate (`None`: the whole clip is fed, to
/// measure what the gate costs), the classifier at its default threshold.
/// Renders missing clips into `cache` first.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    rec: &mut dyn Recognizer,
    known: &dyn Fn(&str) -> bool,
    script: &Script,
    lexicon: &Lexicon,
    utterances: &[Utterance],
    clips: &[(usize, u32)],
    mode: GrammarMode,
    replies: Option<&ReplyGrammar>,
    vad: Option<&VadConfig>,
    cache: &Path,
) -> Result<SpeechReport, AsrError> {
    let listen = &script.listen;
    let classifier = Classifier::new(lexicon.clone());
    let now = NaiveTime::from_hms_opt(10, 0, 0);
    let mut grammars: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut grammar_info = BTreeMap::new();
    for u in utterances {
        if !grammars.contains_key(&u.turn) {
            if !listen.contains_key(&u.turn) {
                return Err(AsrError::BadPhrase {
                    phrase: u.text.clone(),
                    reason: format!("no [listen.{}] in the prompts", u.turn),
                });
            }
            let expects = script
                .expects
                .get(&u.turn)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let (g, dropped) =
                turn_grammar_with(listen, lexicon, replies, &u.turn, expects, mode, known);
            grammar_info.insert(u.turn.clone(), (g.len(), dropped));
            grammars.insert(u.turn.clone(), g);
        }
    }
    let mut out = Vec::with_capacity(clips.len());
    let mut active: Option<&str> = None;
    for &(i, k) in clips {
        let u = utterances.get(i).ok_or_else(|| AsrError::BadPhrase {
            phrase: String::new(),
            reason: format!("no utterance {i}"),
        })?;
        let mut v = variant(&u.text, k);
        // SPEECH_SNR: one SNR for every clip (diagnosis: is it the noise?).
        if let Some(snr) = std::env::var("SPEECH_SNR")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            v.snr_db = snr;
        }
        let pcm = render(&u.text, &v, cache)?;
        if active != Some(u.turn.as_str()) {
            rec.set_phrases(&grammars[&u.turn])?;
            active = Some(u.turn.as_str());
        }
        let t0 = Instant::now();
        let t = match vad {
            Some(cfg) => decode_clip(rec, cfg, &pcm)?.0,
            None => {
                for f in pcm.chunks(FRAME_SAMPLES) {
                    rec.accept(f)?;
                }
                rec.finish()?
            }
        };
        let decode_s = t0.elapsed().as_secs_f64();
        let got = classifier.classify(&t.text, eval_today(), now).kind;
        let text_intent = classifier.classify(&u.text, eval_today(), now).kind;
        let (r, h) = (norm_tokens(&u.text, lexicon), norm_tokens(&t.text, lexicon));
        out.push(ClipResult {
            utt: i,
            variant: v,
            expected: u.intent,
            heard: t.text,
            got,
            text_intent,
            exact: r == h,
            in_grammar: match replies.filter(|_| mode.with_replies()) {
                Some(g) => {
                    g.accepts_turn(&grammars[&u.turn], LEAD_RULE, TAIL_RULE, &words(&u.text))
                }
                None => grammars[&u.turn].contains(&words(&u.text).join(" ")),
            },
            edits: word_edits(&r, &h),
            ref_words: r.len(),
            audio_s: pcm.len() as f64 / SAMPLE_RATE as f64,
            decode_s,
        });
    }
    Ok(SpeechReport {
        mode,
        utterances: utterances.to_vec(),
        clips: out,
        grammar: grammar_info,
    })
}
