//! The llama-server flags a `/pull` may carry. They are appended to a command line the node builds
//! (`--host 127.0.0.1 --port N --model F --alias M`), and llama-server takes the last value of a
//! flag given twice, so a pull could otherwise move the runtime off loopback (`--host 0.0.0.0`),
//! give it a key, make it write files or serve another model. Only flags that tune how the model
//! runs are allowed, each with a value of the right shape; everything else refuses the pull.
//!
//! The node's own configuration (`--models`, the TOML file) is the operator's and is not checked.

/// What a flag's value must look like.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// A flag without a value.
    Flag,
    /// An integer, possibly negative (`-1` means "all" or "off" to several flags).
    Int,
    /// A decimal number.
    Float,
    /// Comma-separated decimal numbers (`--tensor-split 3,1`).
    Floats,
    /// One of these words.
    Word(&'static [&'static str]),
    /// An integer or one of these words (`--n-gpu-layers auto`).
    IntOr(&'static [&'static str]),
    /// One of these words, or nothing (`-fa` alone in older llama-servers, `-fa on` now).
    MaybeWord(&'static [&'static str]),
    /// A built-in name: letters, digits, `.`, `_`, `-`; never a path.
    Name,
}

const CACHE_TYPES: &[&str] = &[
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
];

/// The allowed flags, every spelling of one flag together.
const ALLOWED: &[(&[&str], Value)] = &[
    // Context, batching and threads.
    (&["-c", "--ctx-size"], Value::Int),
    (&["-np", "--parallel"], Value::Int),
    (&["-t", "--threads"], Value::Int),
    (&["-tb", "--threads-batch"], Value::Int),
    (&["-b", "--batch-size"], Value::Int),
    (&["-ub", "--ubatch-size"], Value::Int),
    (&["-n", "--n-predict", "--predict"], Value::Int),
    (
        &["-cb", "--cont-batching", "-nocb", "--no-cont-batching"],
        Value::Flag,
    ),
    (&["--context-shift", "--no-context-shift"], Value::Flag),
    // Offloading and memory.
    (
        &["-ngl", "--n-gpu-layers", "--gpu-layers"],
        Value::IntOr(&["auto", "all"]),
    ),
    (
        &["-sm", "--split-mode"],
        Value::Word(&["none", "layer", "row"]),
    ),
    (&["-mg", "--main-gpu"], Value::Int),
    (&["-ts", "--tensor-split"], Value::Floats),
    (&["-cmoe", "--cpu-moe"], Value::Flag),
    (&["-ncmoe", "--n-cpu-moe"], Value::Int),
    (&["--mlock", "--no-mmap"], Value::Flag),
    (
        &["-fa", "--flash-attn"],
        Value::MaybeWord(&["on", "off", "auto"]),
    ),
    (
        &["-ctk", "--cache-type-k", "-ctv", "--cache-type-v"],
        Value::Word(CACHE_TYPES),
    ),
    (&["--swa-full", "-kvu", "--kv-unified"], Value::Flag),
    (&["-cram", "--cache-ram", "--cache-reuse"], Value::Int),
    // RoPE and YaRN context extension.
    (
        &["--rope-scaling"],
        Value::Word(&["none", "linear", "yarn"]),
    ),
    (
        &[
            "--rope-scale",
            "--rope-freq-base",
            "--rope-freq-scale",
            "--yarn-ext-factor",
            "--yarn-attn-factor",
            "--yarn-beta-slow",
            "--yarn-beta-fast",
        ],
        Value::Float,
    ),
    (&["--yarn-orig-ctx"], Value::Int),
    // Chat templates and reasoning.
    (&["--jinja", "--no-jinja"], Value::Flag),
    (&["--chat-template"], Value::Name),
    (
        &["--reasoning-format"],
        Value::Word(&["none", "auto", "deepseek", "deepseek-legacy"]),
    ),
    (&["--reasoning-budget"], Value::Int),
    // Embeddings and reranking.
    (
        &["--embedding", "--embeddings", "--reranking", "--rerank"],
        Value::Flag,
    ),
    (
        &["--pooling"],
        Value::Word(&["none", "mean", "cls", "last", "rank"]),
    ),
    // Sampling defaults (a request's own settings win).
    (
        &[
            "--temp",
            "--top-p",
            "--min-p",
            "--repeat-penalty",
            "--presence-penalty",
            "--frequency-penalty",
        ],
        Value::Float,
    ),
    (&["--top-k", "--repeat-last-n", "-s", "--seed"], Value::Int),
];

/// Longest part of a refused argument quoted back (the rest is cut, marked `…`).
const QUOTE: usize = 64;

/// Why pulled runtime arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("runtime flag '{0}' is not allowed in a pull (only flags that tune the model are)")]
    NotAllowed(String),
    #[error("runtime flag '{flag}' needs a value")]
    MissingValue { flag: String },
    #[error("runtime flag '{flag}' does not take '{value}' (expected {expected})")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("chat template '{0}' is not a built-in template name")]
    ChatTemplate(String),
}

/// Checks the runtime arguments of a `/pull`: every flag allowed, every value of its shape.
pub fn check(args: &[String]) -> Result<(), ArgError> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(kind) = kind_of(arg) else {
            return Err(ArgError::NotAllowed(quoted(arg)));
        };
        match kind {
            Value::Flag => continue,
            Value::MaybeWord(words) => {
                // Takes the next argument only when it is one of its words.
                if rest
                    .as_slice()
                    .first()
                    .is_some_and(|v| words.contains(&v.as_str()))
                {
                    rest.next();
                }
                continue;
            }
            _ => {}
        }
        let Some(value) = rest.next() else {
            return Err(ArgError::MissingValue { flag: quoted(arg) });
        };
        if let Err(expected) = check_value(kind, value) {
            return Err(ArgError::BadValue {
                flag: quoted(arg),
                value: quoted(value),
                expected,
            });
        }
    }
    Ok(())
}

/// Checks the `chat_template` of a `/pull` (given to llama-server as `--chat-template`).
pub fn check_chat_template(name: &str) -> Result<(), ArgError> {
    if is_name(name) {
        Ok(())
    } else {
        Err(ArgError::ChatTemplate(quoted(name)))
    }
}

fn kind_of(flag: &str) -> Option<Value> {
    ALLOWED
        .iter()
        .find(|(names, _)| names.contains(&flag))
        .map(|(_, kind)| *kind)
}

/// `Err` says what was expected.
fn check_value(kind: Value, value: &str) -> Result<(), &'static str> {
    let ok = match kind {
        Value::Flag | Value::MaybeWord(_) => true,
        Value::Int => is_int(value),
        Value::Float => is_float(value),
        Value::Floats => !value.is_empty() && value.split(',').all(is_float),
        Value::Word(words) => words.contains(&value),
        Value::IntOr(words) => is_int(value) || words.contains(&value),
        Value::Name => is_name(value),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        Value::Int => "an integer",
        Value::Float | Value::Floats => "a number",
        Value::Word(_) | Value::MaybeWord(_) => "one of the flag's words",
        Value::IntOr(_) => "an integer or one of the flag's words",
        Value::Name => "a built-in name",
        Value::Flag => "no value",
    })
}

fn is_int(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    (1..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Plain decimal notation only: no `inf`, `nan` or hex.
fn is_float(v: &str) -> bool {
    (1..=24).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && v.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A built-in name (`chatml`, `gemma`, `llama3`): never a path, never another flag.
fn is_name(v: &str) -> bool {
    (1..=QUOTE).contains(&v.len())
        && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `arg` as quoted in an error: at most [`QUOTE`] characters, the cut marked.
fn quoted(arg: &str) -> String {
    match arg.char_indices().nth(QUOTE) {
        Some((end, _)) => format!("{}…", &arg[..end]),
        None => arg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    fn refused(list: &[&str]) -> ArgError {
        check(&args(list)).expect_err(&format!("{list:?} should be refused"))
    }

    #[test]
    fn flags_that_tune_the_model_are_allowed() {
        for list in [
            &[][..],
            &["--jinja"],
            &["--jinja", "-fa", "on"],
            &["-fa"],
            &["-fa", "--jinja"],
            &["--threads", "1", "--parallel", "2"],
            &["--cache-type-k", "q8_0", "-ctv", "q4_0"],
            &["-c", "8192", "-np", "4", "-b", "512", "-ub", "256"],
            &["-ngl", "99"],
            &["--n-gpu-layers", "auto"],
            &[
                "--rope-scaling",
                "yarn",
                "--rope-scale",
                "4",
                "--yarn-orig-ctx",
                "32768",
            ],
            &["--rope-freq-base", "1e6", "--rope-freq-scale", "0.25"],
            &["--swa-full", "--cache-ram", "-1", "-kvu"],
            &["--no-jinja", "--chat-template", "chatml"],
            &["--embeddings", "--pooling", "cls"],
            &[
                "--temp", "0.7", "--top-k", "40", "--top-p", "0.95", "--seed", "-1",
            ],
            &["-ts", "3,1", "-sm", "layer", "-mg", "0"],
            &["--reasoning-format", "none", "--reasoning-budget", "-1"],
            &["--n-cpu-moe", "12", "--no-mmap"],
        ] {
            assert_eq!(check(&args(list)), Ok(()), "{list:?}");
        }
    }

    #[test]
    fn flags_that_move_the_listener_or_reach_files_are_refused_by_name() {
        for (list, flag) in [
            (&["--host", "0.0.0.0"][..], "--host"),
            (&["--port", "80"], "--port"),
            (&["--api-key", "k"], "--api-key"),
            (&["--api-key-file", "/tmp/k"], "--api-key-file"),
            (&["--path", "/"], "--path"),
            (&["--ssl-key-file", "/etc/ssl/key.pem"], "--ssl-key-file"),
            (&["--ssl-cert-file", "c"], "--ssl-cert-file"),
            (&["-m", "/etc/passwd"], "-m"),
            (&["--model", "/other.gguf"], "--model"),
            (&["--alias", "other"], "--alias"),
            (&["--log-file", "/tmp/x"], "--log-file"),
            (&["--slot-save-path", "/tmp"], "--slot-save-path"),
            (
                &["--chat-template-file", "/etc/shadow"],
                "--chat-template-file",
            ),
            (&["--lora", "x.gguf"], "--lora"),
            (&["-hf", "org/model"], "-hf"),
            (&["--webui"], "--webui"),
            // Prompt caching is what cache-aware routing counts on.
            (&["--no-cache-prompt"], "--no-cache-prompt"),
            (&["--no-such-flag"], "--no-such-flag"),
            // Spellings llama-server would read as the same flag are refused too.
            (&["--ctx-size=4096"], "--ctx-size=4096"),
            (&["--ctx_size", "4096"], "--ctx_size"),
            (&["--HOST", "0.0.0.0"], "--HOST"),
            // A stray value is not a flag.
            (&["0.0.0.0"], "0.0.0.0"),
            (&["--jinja", "--host", "0.0.0.0"], "--host"),
        ] {
            let error = refused(list);
            assert_eq!(error, ArgError::NotAllowed(flag.to_owned()), "{list:?}");
            assert!(error.to_string().contains(flag), "{error}");
        }
    }

    #[test]
    fn values_must_have_their_flag_shape() {
        for list in [
            &["--ctx-size", "--host"][..],
            &["--ctx-size", "4k"],
            &["-c", ""],
            &["-ngl", "some"],
            &["--temp", "nan"],
            &["--temp", "inf"],
            &["--temp", "0x10"],
            &["--cache-type-k", "q8_0;rm"],
            &["--pooling", "/etc"],
            &["-ts", "3,,1"],
            &["--chat-template", "/etc/passwd"],
            &["--chat-template", "../templates/x"],
            &["--chat-template", "-m"],
            &["--chat-template", "{% for m in messages %}"],
        ] {
            assert!(
                matches!(refused(list), ArgError::BadValue { .. }),
                "{list:?}"
            );
        }
        assert_eq!(
            refused(&["--jinja", "--ctx-size"]),
            ArgError::MissingValue {
                flag: "--ctx-size".into()
            }
        );
    }

    #[test]
    fn a_chat_template_is_a_built_in_name() {
        for name in [
            "gemma",
            "chatml",
            "llama3",
            "deepseek3",
            "phi-4",
            "granite_v3.1",
        ] {
            assert_eq!(check_chat_template(name), Ok(()), "{name}");
        }
        for name in ["", "/etc/passwd", "../x", ".hidden", "-m", "a b", "{{ x }}"] {
            assert!(check_chat_template(name).is_err(), "{name:?}");
        }
        assert!(check_chat_template(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_long_refused_argument_is_quoted_cut() {
        let long = format!("--{}", "x".repeat(10_000));
        let error = refused(&[long.as_str()]);
        let message = error.to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    proptest! {
        #[test]
        fn arbitrary_args_never_panic_and_never_pass_a_listener_flag(
            list in proptest::collection::vec(
                prop_oneof![
                    Just("--host".to_owned()),
                    Just("--port".to_owned()),
                    Just("-fa".to_owned()),
                    Just("--ctx-size".to_owned()),
                    Just("on".to_owned()),
                    Just("4096".to_owned()),
                    "\\PC{0,12}",
                ],
                0..8,
            )
        ) {
            if check(&list).is_ok() {
                // A flag never hides in a value position of an accepted list.
                prop_assert!(!list.iter().any(|a| a == "--host" || a == "--port"));
            }
        }
    }
}
