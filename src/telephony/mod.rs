//! (telephony: filled in by its issue)
