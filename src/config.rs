//! Configuration (filled in by the telephony issue).
