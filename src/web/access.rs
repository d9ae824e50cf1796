//! Creating users and tokens, shared by the command line (`duecall user
//! add`, `duecall token create`) and the admin API: the checks on names
//! and passwords, the hashing, and the audit line, in one place.

use chrono::{DateTime, Utc};

use super::auth::{hash_password, new_token, sha256_hex};
use super::error::WebError;
use crate::store::audit::Actor;
use crate::store::tokens::TokenNameTaken;
use crate::store::users::Role;
use crate::store::Store;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD: usize = 1024;

/// Checks a user or token name: 1-64 of letters, digits, `. _ @ -`.
pub fn check_name(field: &str, name: &str) -> Result<(), WebError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WebError::bad(
            field,
            "1-64 characters: letters, digits, '.', '_', '@', '-'",
        ))
    }
}

/// Checks a password's length.
pub fn check_password(password: &str) -> Result<(), WebError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(WebError::bad(
            "password",
            format!("at least {MIN_PASSWORD} characters"),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(WebError::bad(
            "password",
            format!("at most {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// Creates or updates a user (blocking: argon2 and the store). Returns
/// true when the user is new.
pub fn put_user(
    store: &mut Store,
    name: &str,
    role: Role,
    password: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, WebError> {
    check_name("name", name)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    let new = store.put_user(name, role, &hash, now)?;
    store.audit(
        now,
        actor,
        if new { "user.add" } else { "user.update" },
        &format!("user:{name}"),
        &serde_json::json!({"role": role.as_str()}),
    )?;
    Ok(new)
}

/// Creates a token and returns it (the only time it exists in clear).
pub fn create_token(
    store: &mut Store,
    name: &str,
    role: Role,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String, WebError> {
    check_name("name", name)?;
    let token = new_token();
    let prefix: String = token.chars().take(12).collect();
    match store.create_token(name, role, &sha256_hex(&token), &prefix, now)? {
        Ok(_) => {}
        Err(TokenNameTaken::Taken) => {
            return Err(WebError::Conflict(format!(
                "a token named {name:?} exists: revoke it first or choose another name"
            )))
        }
    }
    store.audit(
        now,
        actor,
        "token.create",
        &format!("token:{name}"),
        &serde_json::json!({"role": role.as_str(), "prefix": prefix}),
    )?;
    Ok(token)
}
