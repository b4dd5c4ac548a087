//! Files only the service's own user may read: the database (password hashes, key digests,
//! request history) and the logs.

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, those it creates with mode 0700 (an existing directory
/// keeps its mode: it may be shared on purpose).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes `file` readable and writable by its owner only (0600), if it exists.
pub fn restrict_file(file: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_restricted_files_are_private() {
        let base = std::env::temp_dir().join(format!("llm-router-fs-{}", std::process::id()));
        let dir = base.join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&base.join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("x.db");
        std::fs::write(&file, b"x").unwrap();
        restrict_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        restrict_file(&dir.join("absent")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
