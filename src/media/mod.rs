//! Media: codecs, jitter buffer, DTMF (RFC 4733 and in-band tones), voice
//! activity, special information tones (SIT), resampling, WAV reading and
//! the two-channel recorder. Pure sample/packet processing: never opens a
//! socket, never reads the clock.

pub mod cn;
pub mod codec;
pub mod g711;
pub mod jitter;
pub mod opus;
pub mod recorder;
pub mod resample;
pub mod rfc4733;
pub mod sit;
pub mod tone;
pub mod tts;
pub mod vad;
pub mod wav;
