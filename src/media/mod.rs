//! (media: filled in by its issue)
