//! (campaign: filled in by its issue)
