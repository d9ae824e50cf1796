//! The id of one attempt: the word every table and error that names an
//! attempt shares (its own file, so none of them depends on `attempts`).

use serde::{Deserialize, Serialize};

/// The id of one attempt (one dial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptId(pub i64);

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
