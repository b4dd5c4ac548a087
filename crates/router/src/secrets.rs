//! Random tokens, their digests, and comparisons that take the same time wherever inputs differ.

use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};

/// SHA-256 of a token: what is stored and looked up instead of the token itself. Tokens are 256
/// random bits, so a fast hash is enough (passwords, chosen by people, get argon2).
pub type Digest = [u8; 32];

/// Prefix of inference API keys (`sk-` as OpenAI's, so tools that check the shape accept them).
pub const API_KEY_PREFIX: &str = "sk-llmr-";
/// Prefix of session tokens given by `POST /api/auth/login`.
pub const SESSION_PREFIX: &str = "llms_";

/// A fresh token: `prefix` followed by 256 random bits in hex.
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_distinct() {
        let a = new_token(API_KEY_PREFIX);
        let b = new_token(API_KEY_PREFIX);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a), digest(&a.clone()));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }
}
