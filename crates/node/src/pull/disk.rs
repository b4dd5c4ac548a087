//! Free-space checks and the mapping of "disk full" write errors.

use std::io;
use std::path::Path;

use super::PullError;

/// Bytes available to this (unprivileged) user on the filesystem holding `dir`.
pub(crate) fn available_space(dir: &Path, overridden: Option<u64>) -> Result<u64, PullError> {
    match overridden {
        Some(bytes) => Ok(bytes),
        None => fs4::available_space(dir)
            .map_err(|e| PullError::io(format!("free space of {}", dir.display()), e)),
    }
}

/// Fails with [`PullError::DiskFull`] when `needed` more bytes do not fit in `dir`.
pub(crate) fn ensure_space(
    dir: &Path,
    needed: u64,
    overridden: Option<u64>,
) -> Result<(), PullError> {
    let available = available_space(dir, overridden)?;
    if needed > available {
        return Err(PullError::DiskFull { needed, available });
    }
    Ok(())
}

/// ENOSPC or EDQUOT.
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_beyond_available_is_disk_full() {
        let dir = Path::new(".");
        assert!(ensure_space(dir, 10, Some(10)).is_ok());
        assert!(matches!(
            ensure_space(dir, 11, Some(10)),
            Err(PullError::DiskFull {
                needed: 11,
                available: 10
            })
        ));
        assert!(available_space(dir, None).is_ok());
    }
}
