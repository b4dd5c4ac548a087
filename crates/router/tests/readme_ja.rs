//! README.ja.md must not drift from README.md: every route, option and environment variable that
//! README.md's tables name must appear, in backticks, somewhere in README.ja.md too.

#![allow(clippy::expect_used)]

use std::collections::BTreeSet;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");

/// The text inside backticks on `line`.
fn code_spans(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// The routes (`/...`), options (`--...`) and environment variables named in one code span,
/// normalised: `GET /api/tasks[/{id}]` names `/api/tasks` and `/api/tasks/{id}`;
/// `/api/logs?tail=N` names `/api/logs`; `/api/users*` names `/api/users`.
fn names_in(span: &str) -> Vec<String> {
    let mut names = Vec::new();
    for word in span.split_whitespace() {
        let word = word.trim_end_matches([',', '.', ';', ':', ')']);
        if word.starts_with('/') {
            let path = word.split('?').next().unwrap_or(word);
            let path = path.trim_end_matches('*');
            let path = path
                .strip_suffix('/')
                .filter(|p| !p.is_empty())
                .unwrap_or(path);
            match path.split_once('[') {
                Some((base, optional)) => {
                    names.push(base.to_owned());
                    names.push(format!("{base}{}", optional.trim_end_matches(']')));
                }
                None => names.push(path.to_owned()),
            }
        } else if word.starts_with("--") {
            names.push(word.split('=').next().unwrap_or(word).to_owned());
        } else if word.starts_with("LLM_ROUTER_")
            || word.starts_with("LLM_NODE_")
            || word == "LOAD_BALANCER_MODE"
        {
            names.push(word.to_owned());
        }
    }
    names
}

/// What README.md's tables (lines starting with `|`) name.
fn names_in_tables(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|line| line.trim_start().starts_with('|'))
        .flat_map(code_spans)
        .flat_map(names_in)
        .collect()
}

/// What any code span of the translation names.
fn names_anywhere(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .flat_map(code_spans)
        .flat_map(names_in)
        .collect()
}

/// The names in `english`'s tables that `japanese` never mentions.
fn missing(english: &str, japanese: &str) -> Vec<String> {
    let translated = names_anywhere(japanese);
    names_in_tables(english)
        .into_iter()
        .filter(|name| !translated.contains(name))
        .collect()
}

#[test]
fn readme_ja_names_every_route_option_and_variable_of_readme_tables() {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{ROOT}{name}")).expect("the README files are readable")
    };
    let missing = missing(&read("README.md"), &read("README.ja.md"));
    assert!(
        missing.is_empty(),
        "README.ja.md lacks these, named in README.md's tables (translate the rows or lines that \
         name them):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn a_route_missing_from_the_translation_is_reported() {
    let english = "\
Prose is not checked: `GET /api/prose-only`.

| route | what |
|---|---|
| `GET /api/agents`, `POST /api/agents/{id}/drain` | the fleet |
| `GET /api/tasks[/{id}]`, `GET /api/logs?tail=N`, `/api/keys*` | more |
| `--listen` | `LLM_ROUTER_LISTEN` |
";
    let japanese = "\
| ルート | 内容 |
|---|---|
| `GET /api/agents` | ノード一覧 |
| `GET /api/tasks[/{id}]`, `GET /api/logs?tail=N`, `/api/keys*` | その他 |

`--listen`（`LLM_ROUTER_LISTEN`）で待ち受けアドレスを指定します。
";
    assert_eq!(missing(english, japanese), ["/api/agents/{id}/drain"]);
    assert_eq!(
        missing(english, ""),
        [
            "--listen",
            "/api/agents",
            "/api/agents/{id}/drain",
            "/api/keys",
            "/api/logs",
            "/api/tasks",
            "/api/tasks/{id}",
            "LLM_ROUTER_LISTEN",
        ]
    );
}
