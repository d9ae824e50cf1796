//! (dialogue: filled in by its issue)
