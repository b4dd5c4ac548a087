//! The environment a runtime starts with: not the node's, which holds its enrolment and API
//! tokens (`LLM_NODE_*`), but the few variables a runtime needs to find its libraries, its GPUs,
//! its locale and (Ollama) its models and proxy. The backend then adds its own (`OLLAMA_HOST`...).

use std::ffi::{OsStr, OsString};
use std::path::Path;

use tokio::process::Command;

/// Variables passed as they are.
const PASSED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GPU_DEVICE_ORDINAL",
    // Ollama pulls its models over HTTPS, maybe through a proxy.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// Families of variables passed: locale, GPU selection (CUDA, ROCm), ggml's own settings and
/// Ollama's (`OLLAMA_MODELS`...). Not `LLAMA_ARG_*`: llama-server's settings come from the node's
/// configuration, and would otherwise include a listen address or an API key.
const PASSED_PREFIXES: &[&str] = &["LC_", "CUDA_", "HIP_", "ROCR_", "HSA_", "GGML_", "OLLAMA_"];

/// Parts of a name that mark a secret: never passed, whatever the family.
const SECRET_MARKS: &[&str] = &["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// A command for `binary` that starts with the scrubbed environment of this process.
pub fn command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    scrub(&mut cmd, std::env::vars_os());
    cmd
}

/// Clears `cmd`'s environment and passes the variables of `vars` that a runtime may see.
fn scrub(cmd: &mut Command, vars: impl IntoIterator<Item = (OsString, OsString)>) {
    cmd.env_clear();
    cmd.envs(vars.into_iter().filter(|(name, _)| passed(name)));
}

/// Whether a runtime gets the variable `name`.
pub fn passed(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    if SECRET_MARKS.iter().any(|mark| upper.contains(mark)) {
        return false;
    }
    PASSED.contains(&name) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE_SECRETS: [(&str, &str); 4] = [
        ("LLM_NODE_ENROLLMENT_TOKEN", "enrol-secret"),
        ("LLM_NODE_API_TOKEN", "api-secret-0123456789"),
        ("LLM_ROUTER_ADMIN_PASSWORD", "admin-secret"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
    ];

    fn node_env() -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = NODE_SECRETS
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        for (k, v) in [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/node"),
            ("LC_ALL", "C.UTF-8"),
            ("CUDA_VISIBLE_DEVICES", "0,1"),
            ("HSA_OVERRIDE_GFX_VERSION", "11.0.0"),
            ("GGML_CUDA_ENABLE_UNIFIED_MEMORY", "1"),
            ("OLLAMA_MODELS", "/srv/ollama"),
            ("OLLAMA_API_KEY", "ollama-secret"),
            ("LLAMA_ARG_HOST", "0.0.0.0"),
            ("HF_TOKEN", "hf-secret"),
            ("RUST_LOG", "debug"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
        ] {
            vars.push((k.into(), v.into()));
        }
        vars
    }

    fn envs(cmd: &Command) -> Vec<(String, String)> {
        cmd.as_std()
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect()
    }

    #[test]
    fn a_runtime_gets_what_it_needs_and_no_secret() {
        let mut cmd = Command::new("/usr/bin/env");
        scrub(&mut cmd, node_env());
        let names: Vec<String> = envs(&cmd).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "CUDA_VISIBLE_DEVICES",
                "GGML_CUDA_ENABLE_UNIFIED_MEMORY",
                "HOME",
                "HSA_OVERRIDE_GFX_VERSION",
                "LC_ALL",
                "OLLAMA_MODELS",
                "PATH",
            ]
        );
        assert!(format!("{:?}", cmd.as_std()).starts_with("env -i "));
    }

    #[test]
    fn the_started_process_sees_none_of_the_node_secrets() {
        let mut cmd = Command::new("env");
        scrub(&mut cmd, node_env());
        let out = cmd.into_std().output().unwrap();
        let seen = String::from_utf8(out.stdout).unwrap();
        assert!(seen.contains("PATH=/usr/bin:/bin\n"), "{seen}");
        assert!(seen.contains("CUDA_VISIBLE_DEVICES=0,1\n"), "{seen}");
        for (name, value) in NODE_SECRETS {
            assert!(!seen.contains(name) && !seen.contains(value), "{seen}");
        }
        assert!(!seen.contains("secret"), "{seen}");
        assert!(!seen.contains("LLAMA_ARG_HOST"), "{seen}");
    }

    #[test]
    fn secret_marks_win_over_passed_families() {
        for name in ["OLLAMA_API_KEY", "GGML_TOKEN", "CUDA_password", "LC_SECRET"] {
            assert!(!passed(OsStr::new(name)), "{name}");
        }
        for name in [
            "PATH",
            "LC_CTYPE",
            "HIP_VISIBLE_DEVICES",
            "ROCR_VISIBLE_DEVICES",
        ] {
            assert!(passed(OsStr::new(name)), "{name}");
        }
    }
}
