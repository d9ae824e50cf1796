//! Campaigns: who is called next (the pure `scheduler`). The tokio runner that
//! drives it is added by its own issue.

pub mod scheduler;
