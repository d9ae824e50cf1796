//! (asr: filled in by its issue)
