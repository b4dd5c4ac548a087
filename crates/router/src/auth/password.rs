//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), off the async
//! runtime's threads, a bounded number at a time ([`Checker`]).

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand_core::OsRng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;

/// Shortest password accepted for a user.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Password hashes computed at once (each takes 19 MiB and a blocking thread).
pub const CONCURRENT_CHECKS: usize = 4;
/// Password checks that may wait for one of those; beyond, a check is refused at once.
pub const WAITING_CHECKS: usize = 16;

/// Runs argon2 at most [`CONCURRENT_CHECKS`] at a time, with at most [`WAITING_CHECKS`] more
/// waiting their turn; any other check is refused at once with [`AuthError::Busy`], so a flood of
/// logins never queues unbounded work (nor memory) behind it.
///
/// The few waiting places let a burst the login limiter admits (five attempts from one address)
/// be checked in full instead of failing on a race for the running places.
#[derive(Debug)]
pub struct Checker {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new(CONCURRENT_CHECKS, WAITING_CHECKS)
    }
}

impl Checker {
    pub fn new(running: usize, waiting: usize) -> Checker {
        Checker {
            admitted: Arc::new(Semaphore::new(running + waiting)),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    /// Whether `password` matches `phc`; `Err(Busy)` when too many checks are under way.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AuthError> {
        let turn = self.turn().await?;
        blocking(turn, move || Ok(matches(&password, &phc))).await
    }

    /// The PHC string of `password`; `Err(Busy)` when too many checks are under way.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let turn = self.turn().await?;
        blocking(turn, move || phc_of(&password)).await
    }

    /// A place among the admitted checks (at once, or `Busy`), then a running one (waited for).
    async fn turn(&self) -> Result<Turn, AuthError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| AuthError::Busy)?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Busy)?;
        Ok(Turn {
            _admitted: admitted,
            _running: running,
        })
    }
}

/// Both places of one check; moved into the blocking task, so they are held until argon2 ends
/// even when the request that asked is dropped.
struct Turn {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

/// The PHC string (`$argon2id$...`) of `password`, without a [`Checker`] (start-up only).
pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || phc_of(&password))
        .await
        .map_err(|e| AuthError::Hashing(format!("password worker failed: {e}")))?
}

fn phc_of(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(format!("cannot hash a password: {e}")))
}

/// A malformed stored hash never matches.
fn matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Checks a new password's length; `Err` says what is wrong.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    turn: Turn,
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        work()
    })
    .await
    .map_err(|e| AuthError::Hashing(format!("password worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let checker = Checker::default();
        let phc = checker.hash("correct horse".to_owned()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(
            checker
                .verify("correct horse".to_owned(), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !checker
                .verify("correct hors".to_owned(), phc)
                .await
                .unwrap()
        );
        assert!(
            !checker
                .verify("x".to_owned(), "not a hash".to_owned())
                .await
                .unwrap()
        );
        assert!(
            hash("x".to_owned())
                .await
                .unwrap()
                .starts_with("$argon2id$")
        );
    }

    #[tokio::test]
    async fn beyond_the_running_and_waiting_places_a_check_is_refused_at_once() {
        let checker = Checker::new(1, 1);
        let running = checker.turn().await.unwrap();
        // The second waits for the running place; the third finds no place at all.
        let waiting = tokio::spawn({
            let admitted = Arc::clone(&checker.admitted);
            let running = Arc::clone(&checker.running);
            async move {
                let checker = Checker { admitted, running };
                checker.turn().await.map(drop)
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while checker.admitted.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert!(matches!(
            checker.verify("x".to_owned(), "y".to_owned()).await,
            Err(AuthError::Busy)
        ));
        drop(running);
        waiting.await.unwrap().unwrap();
        assert!(
            !checker
                .verify("x".to_owned(), "y".to_owned())
                .await
                .unwrap()
        );
    }
}
