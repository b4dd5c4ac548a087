//! The router's layering, checked from its own source: every `crate::<module>` reference must point
//! to the same layer or one below, and the top-level modules must not import each other in a cycle.
//!
//! | layer | modules                                                        |
//! |-------|----------------------------------------------------------------|
//! | edge  | `api`, `dashboard`, `app`, `state`, `config`                   |
//! | path  | `dispatch`, `proxy`, `error` (the HTTP error the edge and the relay render) |
//! | domain| `auth`, `tasks`, `history`, `catalog`, `health`, `live`, `stats`, `metrics`, `affinity`, `aliases`, `quota` |
//! | base  | `store`, `registry`, `secrets`                                 |
//!
//! A new module must be given a layer here (the test fails until it is).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["store", "registry", "secrets"]),
    (
        "domain",
        &[
            "auth", "tasks", "history", "catalog", "health", "live", "stats", "metrics",
            "affinity", "aliases", "quota",
        ],
    ),
    ("path", &["dispatch", "proxy", "error"]),
    ("edge", &["api", "dashboard", "app", "state", "config"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/auth/keys.rs` → `auth`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// Every top-level module a file refers to as `crate::x` or inside `use crate::{x, y::z}`.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Doc comments may name modules above their own layer to explain the layering.
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d}`: the first segment of each item at depth 0.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_first_segment(&item, &mut out);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            push_first_segment(&item, &mut out);
        } else {
            push_first_segment(rest, &mut out);
        }
    }
    out
}

fn push_first_segment(path: &str, out: &mut BTreeSet<String>) {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // `crate::Type` (re-exports at the root, e.g. `crate::LOG_FILE_PREFIX`) belongs to `lib`.
    if !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
        out.insert(name);
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own_and_there_is_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            problems.push(format!("module `{module}` has no layer in tests/layers.rs"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(&text) {
            if target == module {
                continue;
            }
            match layer_of(&target) {
                Some(layer) if layer > own => problems.push(format!(
                    "{} ({} layer) imports `crate::{target}` ({} layer, above it)",
                    file.strip_prefix(&src).unwrap().display(),
                    LAYERS[own].0,
                    LAYERS[layer].0,
                )),
                Some(_) => {
                    graph.entry(module.clone()).or_default().insert(target);
                }
                None => problems.push(format!(
                    "{} imports `crate::{target}`, which has no layer in tests/layers.rs",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n  {}",
        problems.join("\n  ")
    );
}

/// A cycle in `graph`, as the modules along it (first repeated at the end).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let text = "use crate::auth::{KeyScope, Staff};\nuse crate::{live::Feed, store::{A, B}};\n// crate::api in a comment\nlet x = crate::stats::Figures::of(v);";
    let found: Vec<String> = references(text).into_iter().collect();
    assert_eq!(found, ["auth", "live", "stats", "store"]);
}

#[test]
fn a_cycle_is_found() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    graph.remove("c");
    assert_eq!(find_cycle(&graph), None);
}
