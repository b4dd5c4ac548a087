//! What a model's extra llama-server arguments (the operator's `args`, or a pull's) already say.
//! The node's own flags give way to them: a flag the user gave is not added a second time, and
//! estimates read the user's value. llama-server takes the last value of a flag given twice.

/// Whether one of `names` (spellings of one flag) is among `args`, alone or as `--name=value`.
pub fn has(args: &[String], names: &[&str]) -> bool {
    args.iter().any(|a| is_flag(a, names).is_some())
}

/// The value of the last of `names` among `args` (`--name value` or `--name=value`).
pub fn value<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut found = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match is_flag(arg, names) {
            Some(Some(inline)) => found = Some(inline),
            Some(None) => found = rest.next().map(String::as_str).or(found),
            None => {}
        }
    }
    found
}

/// `Some(inline value)` when `arg` is one of `names`; the inner `None` when the value follows.
fn is_flag<'a>(arg: &'a str, names: &[&str]) -> Option<Option<&'a str>> {
    names.iter().find_map(|name| {
        let rest = arg.strip_prefix(name)?;
        if rest.is_empty() {
            Some(None)
        } else {
            rest.strip_prefix('=').map(Some)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_flag_is_found_in_any_spelling_and_its_last_value_wins() {
        let given = args(&["--jinja", "-cram", "100", "--cache-ram=200", "--swa-full"]);
        assert!(has(&given, &["--swa-full"]));
        assert!(has(&given, &["-cram", "--cache-ram"]));
        assert!(!has(&given, &["--ctx-size"]));
        assert_eq!(value(&given, &["-cram", "--cache-ram"]), Some("200"));
        assert_eq!(
            value(&args(&["-c", "512"]), &["-c", "--ctx-size"]),
            Some("512")
        );
        // A prefix of a longer flag is not the flag.
        assert!(!has(&args(&["--cache-ram-x"]), &["--cache-ram"]));
        assert!(!has(&args(&["-ctk", "q8_0"]), &["-c"]));
        // A flag without its value says nothing.
        assert_eq!(value(&args(&["-c"]), &["-c"]), None);
    }
}
