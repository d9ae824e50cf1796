//! The names of an attempt's files (recording `.wav`, outcome `.json`): one
//! place, so the agent that writes them and crash repair that looks for them
//! always agree. Pure: builds names, touches no file.

use chrono::{DateTime, Utc};

/// Longest account-id part of a file name: long ids are cut (the attempt id
/// and the time stamp keep names unique) so a name never overflows the
/// file system's 255-byte limit.
const MAX_ID_CHARS: usize = 64;

/// `account_id` made safe for a file name: ASCII letters, digits, `-` and
/// `_` kept, anything else `_`, at most 64 characters.
fn file_safe(account_id: &str) -> String {
    account_id
        .chars()
        .take(MAX_ID_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What every file of attempt `attempt` of `account_id` starts with:
/// `<account>-<attempt>-`.
pub fn attempt_file_prefix(account_id: &str, attempt: i64) -> String {
    format!("{}-{attempt}-", file_safe(account_id))
}

/// The file stem of an attempt placed at `at`: `<account>-<attempt>-<stamp>`
/// (`<account>-<stamp>` for a call outside a campaign).
pub fn attempt_file_stem(account_id: &str, attempt: Option<i64>, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    match attempt {
        Some(a) => format!("{}{stamp}", attempt_file_prefix(account_id, a)),
        None => format!("{}-{stamp}", file_safe(account_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempts_files_start_with_its_prefix_whatever_the_account_id() {
        let at: DateTime<Utc> = "2026-11-23T18:00:00Z".parse().unwrap();
        for id in ["A-1", "acme/42 ü", &"x".repeat(300), "../../etc"] {
            let stem = attempt_file_stem(id, Some(7), at);
            assert!(stem.starts_with(&attempt_file_prefix(id, 7)), "{stem}");
            assert!(stem.ends_with("-7-20261123T180000Z"), "{stem}");
            assert!(stem.len() < 120, "{stem}");
            assert!(!stem.contains('/') && !stem.contains(".."), "{stem}");
        }
        assert_eq!(attempt_file_stem("A 1", None, at), "A_1-20261123T180000Z");
    }
}
