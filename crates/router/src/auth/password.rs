//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), off the async
//! runtime's threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand_core::OsRng;

use super::AuthError;

/// Shortest password accepted for a user.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The PHC string (`$argon2id$...`) of `password`.
pub async fn hash(password: String) -> Result<String, AuthError> {
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hashing(format!("cannot hash a password: {e}")))
    })
    .await
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    blocking(move || {
        Ok(PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }))
    })
    .await
    .unwrap_or(false)
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
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AuthError::Hashing(format!("password worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse".to_owned()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse".to_owned(), phc.clone()).await);
        assert!(!verify("correct hors".to_owned(), phc).await);
        assert!(!verify("x".to_owned(), "not a hash".to_owned()).await);
    }
}
