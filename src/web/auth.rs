//! Who is asking, and may they: API tokens (`Authorization: Bearer`),
//! console sessions (cookie + CSRF token), argon2 password hashes, and the
//! role each route needs.
//!
//! Rules are types: a handler that takes `Authed<A>` cannot run unless the
//! caller's role is in `A::ROLES` (401 without credentials, 403 with the
//! wrong role), and the `authenticate` layer in front of every protected
//! route rejects anonymous calls before any handler runs. A state-changing
//! request that rides on a session cookie must carry the session's CSRF
//! token. Secrets are compared by their SHA-256 (tokens, session ids) or by
//! argon2 (passwords); none is ever stored or logged in clear.

use std::marker::PhantomData;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::error::WebError;
use super::state::AppState;
use crate::store::audit::Actor;
use crate::store::users::Role;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "duecall_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// What every token starts with (so scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "dct_";

/// Lowercase hex of SHA-256.
pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes as 64 hex characters.
pub fn random_hex() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A new API token: `dct_` + 64 hex characters (256 random bits).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex())
}

/// Hashes a password with argon2id (PHC string, random salt).
pub fn hash_password(password: &str) -> Result<String, WebError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash nobody's password matches, verified against for unknown users so
/// that a login takes as long whether or not the name exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_hex()).unwrap_or_default())
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token.
    Token,
    /// A console session, with its CSRF token.
    Session {
        /// The token state-changing requests must echo.
        csrf: String,
        /// The session id's hash (to end it).
        id_hash: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// For the audit log.
    pub actor: Actor,
    /// What they may do.
    pub role: Role,
    /// How they authenticated.
    pub credential: Credential,
}

impl Principal {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What a route needs: the roles allowed and, for the 403 message, what
/// the route does.
pub trait Access: Send + Sync + 'static {
    /// Roles allowed.
    const ROLES: &'static [Role];
    /// What the route does ("read calls", "work escalations").
    const ACTION: &'static str;
}

macro_rules! access {
    ($(#[$doc:meta])* $name:ident, [$($role:ident),+], $action:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl Access for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),+];
            const ACTION: &'static str = $action;
        }
    };
}

access!(
    /// Attempts, transcripts and recordings: everyone who works with calls.
    ReadCalls, [Admin, Collector, Qa], "read calls"
);
access!(
    /// Escalations, holds, accounts: collectors (and admins).
    WorkCases, [Admin, Collector], "work escalations and holds"
);
access!(
    /// QA labels and their export: QA (and admins).
    Review, [Admin, Qa], "review and label calls"
);
access!(
    /// The campaign dashboard: QA and admins.
    SeeStats, [Admin, Qa], "see campaign statistics"
);
access!(
    /// Users, tokens, campaigns, imports, the audit log: admins only.
    Administer, [Admin], "administer the service"
);
access!(
    /// Anyone authenticated (who am I, metrics with a token).
    AnyRole, [Admin, Collector, Qa], "use the service"
);

/// The caller, allowed by `A`. Take it as a handler argument.
#[derive(Debug)]
pub struct Authed<A: Access> {
    /// Who.
    pub who: Principal,
    _access: PhantomData<A>,
}

impl<S: Send + Sync, A: Access> FromRequestParts<S> for Authed<A> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(WebError::Unauthorized)?;
        if !A::ROLES.contains(&who.role) {
            return Err(WebError::Forbidden {
                role: who.role,
                action: A::ACTION,
            });
        }
        Ok(Authed {
            who,
            _access: PhantomData,
        })
    }
}

/// The value of one cookie in the `Cookie` header(s).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, WebError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| WebError::BadCredentials("Authorization header is not ASCII".into()))?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
        return Err(WebError::BadCredentials(
            "Authorization must be `Bearer <token>`".into(),
        ));
    }
    Ok(Some(rest.trim()))
}

/// Finds the caller from a bearer token or the session cookie. A token
/// that is present but unknown is an error (401), never anonymous.
pub async fn principal_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, WebError> {
    let now = state.now();
    if let Some(token) = bearer(headers)? {
        let hash = sha256_hex(token);
        let t = state
            .db
            .run(move |s| s.token_by_hash(&hash, now))
            .await?
            .ok_or_else(|| WebError::BadCredentials("unknown or revoked API token".into()))?;
        return Ok(Some(Principal {
            actor: Actor::token(&t.name, t.role.as_str()),
            role: t.role,
            credential: Credential::Token,
        }));
    }
    if let Some(sid) = cookie(headers, SESSION_COOKIE) {
        let id_hash = sha256_hex(sid);
        let h = id_hash.clone();
        // An expired or ended session is simply no session: the console
        // sends the visitor to the login page.
        if let Some(s) = state.db.run(move |st| st.session(&h, now)).await? {
            return Ok(Some(Principal {
                actor: Actor::user(&s.user.name, s.user.role.as_str()),
                role: s.user.role,
                credential: Credential::Session {
                    csrf: s.csrf,
                    id_hash,
                },
            }));
        }
    }
    Ok(None)
}

fn safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks a session-borne state-changing request's CSRF token.
fn check_csrf(p: &Principal, method: &Method, headers: &HeaderMap) -> Result<(), WebError> {
    if safe_method(method) {
        return Ok(());
    }
    if let Credential::Session { csrf, .. } = &p.credential {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
            return Err(WebError::Csrf);
        }
    }
    Ok(())
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The layer in front of every protected API route: resolves the caller,
/// rejects anonymous requests (401) and session requests without their
/// CSRF token (403), and hands the `Principal` to the handler's `Authed`.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, WebError> {
    let p = principal_of(&state, req.headers())
        .await?
        .ok_or(WebError::Unauthorized)?;
    check_csrf(&p, req.method(), req.headers())?;
    req.extensions_mut().insert(p);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("x", decoy_hash()));
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(sha256_hex("abc").len(), 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; duecall_session=abc".parse().unwrap());
        h.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn bearer_needs_its_scheme_and_a_token() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h).unwrap(), None);
        h.insert(header::AUTHORIZATION, "Bearer dct_x".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), Some("dct_x"));
        h.insert(header::AUTHORIZATION, "Basic Zm9vOmJhcg==".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer(&h).is_err());
    }

    #[test]
    fn csrf_is_required_only_for_session_writes() {
        let session = Principal {
            actor: Actor::user("a", "collector"),
            role: Role::Collector,
            credential: Credential::Session {
                csrf: "tok".into(),
                id_hash: "h".into(),
            },
        };
        let token = Principal {
            credential: Credential::Token,
            ..session.clone()
        };
        let mut h = HeaderMap::new();
        assert!(check_csrf(&session, &Method::GET, &h).is_ok());
        assert!(check_csrf(&session, &Method::POST, &h).is_err());
        assert!(check_csrf(&token, &Method::POST, &h).is_ok());
        h.insert(CSRF_HEADER, "tok".parse().unwrap());
        assert!(check_csrf(&session, &Method::POST, &h).is_ok());
        h.insert(CSRF_HEADER, "tol".parse().unwrap());
        assert!(check_csrf(&session, &Method::DELETE, &h).is_err());
    }
}
