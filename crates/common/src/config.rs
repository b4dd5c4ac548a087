//! Settings read from a TOML file and merged under the command line's (flag/env > file > default).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Reads a TOML settings file into `T`.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// Merges two settings structs whose fields are all `Option`s: every field unset in `high` is
/// taken from `low`. Every field is listed, so the compiler refuses a field that is forgotten.
///
/// `fill_unset!(Settings, flags, file, [listen, node_timeout, ...])`
#[macro_export]
macro_rules! fill_unset {
    ($settings:ident, $high:expr, $low:expr, [$($field:ident),+ $(,)?]) => {{
        let (high, low) = ($high, $low);
        $settings {
            $($field: high.$field.or(low.$field),)+
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        port: Option<u16>,
        name: Option<String>,
        dir: Option<PathBuf>,
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "llm-router-common-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn set_fields_win_and_unset_ones_come_from_below() {
        let flags = Settings {
            port: Some(1),
            ..Settings::default()
        };
        let file = Settings {
            port: Some(2),
            name: Some("file".into()),
            dir: None,
        };
        let merged = fill_unset!(Settings, flags, file, [port, name, dir]);
        assert_eq!(
            merged,
            Settings {
                port: Some(1),
                name: Some("file".into()),
                dir: None,
            }
        );
    }

    #[test]
    fn a_file_is_read_and_its_errors_name_the_path() {
        let good = temp_file("good", "port = 7\nname = \"n\"\n");
        let settings: Settings = from_file(&good).unwrap();
        assert_eq!(settings.port, Some(7));
        std::fs::remove_file(&good).unwrap();

        let bad = temp_file("bad", "prot = 7\n");
        let error = from_file::<Settings>(&bad).unwrap_err();
        assert!(matches!(error, ConfigError::Parse { .. }), "{error}");
        assert!(
            error.to_string().contains(&*bad.to_string_lossy()),
            "{error}"
        );
        std::fs::remove_file(&bad).unwrap();

        let missing = std::env::temp_dir().join("llm-router-common-no-such-file.toml");
        let error = from_file::<Settings>(&missing).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    }
}
