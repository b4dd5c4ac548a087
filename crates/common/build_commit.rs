// Shared by the build scripts of `llm-node` and `llm-router` (`include!`d, not a module).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LLM_ROUTER_COMMIT");
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        let head = std::path::Path::new(&head);
        // Relative to the package directory, where build scripts run.
        if head.is_file() {
            println!("cargo:rerun-if-changed={}", head.display());
        }
    }
    let commit = std::env::var("LLM_ROUTER_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LLM_ROUTER_COMMIT={commit}");
}
