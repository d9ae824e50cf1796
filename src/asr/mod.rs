//! Offline speech recognition (filled in by the speech issue).
