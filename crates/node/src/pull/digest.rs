//! SHA-256 helpers: parsing the expected digest and printing the actual one.

use sha2::{Digest, Sha256};

use super::PullError;

/// The expected digest, trimmed and lower-cased; 64 hex digits or [`PullError::Invalid`].
pub(crate) fn parse_sha256(text: &str) -> Result<String, PullError> {
    let digest = text.trim().to_ascii_lowercase();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PullError::Invalid(format!(
            "sha256 must be 64 hex digits, got {text:?}"
        )));
    }
    Ok(digest)
}

/// Lower-case hex of the hasher's digest.
pub(crate) fn finish_hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lower_hex_and_expected_is_normalised() {
        let mut hasher = Sha256::new();
        hasher.update(b"abc");
        let hex = finish_hex(hasher);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            parse_sha256(&format!(" {} ", hex.to_uppercase())).ok(),
            Some(hex)
        );
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }
}
