//! The login throttle: failed logins per user name, to slow down guessing
//! (the login form and the API's session login count into it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins per user name, to slow down guessing.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Failed logins allowed in one window.
pub const LOGIN_FAILURES_ALLOWED: u32 = 10;
/// The window, and how long a name stays locked after it.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginThrottle {
    /// `Err(seconds)` while a name is locked.
    pub fn check(&self, user: &str) -> Result<(), u64> {
        let Ok(mut m) = self.failures.lock() else {
            return Ok(());
        };
        if let Some((n, since)) = m.get(user).copied() {
            let age = since.elapsed();
            if age >= LOGIN_WINDOW {
                m.remove(user);
            } else if n >= LOGIN_FAILURES_ALLOWED {
                return Err((LOGIN_WINDOW - age).as_secs().max(1));
            }
        }
        Ok(())
    }

    /// Counts a failure.
    pub fn failed(&self, user: &str) {
        if let Ok(mut m) = self.failures.lock() {
            if m.len() > 100_000 {
                m.retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
            }
            let e = m.entry(user.to_string()).or_insert((0, Instant::now()));
            e.0 += 1;
        }
    }

    /// Forgets failures after a success.
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_locks_a_name_after_too_many_failures() {
        let t = LoginThrottle::default();
        for _ in 0..LOGIN_FAILURES_ALLOWED {
            assert!(t.check("eve").is_ok());
            t.failed("eve");
        }
        assert!(t.check("eve").is_err());
        assert!(t.check("bob").is_ok());
        t.succeeded("eve");
        assert!(t.check("eve").is_ok());
    }
}
