//! `scripts/package.sh` makes .deb packages that hold what they say: unpacked (`dpkg-deb -x`),
//! the llm-node package's binary and runtime run, its configuration points at the packaged
//! runtime, the llm-router package carries a join bundle that matches its SHA256SUMS, and both
//! systemd units pass `systemd-analyze verify` (their paths moved under the unpacked tree).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use llm_router_e2e::join::Bundle;
use llm_router_testkit::TempDir;
use llm_router_testkit::processes::Runtime;

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Unpacks `deb` into `into`; its control fields.
fn unpack(deb: &Path, into: &Path) -> String {
    run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), into.to_str().unwrap()],
        None,
    );
    run("dpkg-deb", &["-f", deb.to_str().unwrap()], None)
}

/// `systemd-analyze verify` of `unit` (a path inside `root`) with its absolute paths moved under
/// `root`: it passes with nothing to say.
fn verify_unit(root: &Path, unit: &str) {
    let text = std::fs::read_to_string(root.join(unit.trim_start_matches('/'))).unwrap();
    let root_str = root.to_str().unwrap();
    let moved = text
        .replace("=/usr/", &format!("={root_str}/usr/"))
        .replace("=/etc/", &format!("={root_str}/etc/"));
    let copy = root.join(Path::new(unit).file_name().unwrap());
    std::fs::write(&copy, moved).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{unit}: {stderr}"
    );
}

#[test]
fn the_deb_packages_hold_runnable_binaries_the_runtime_and_valid_units() {
    let runtime = Runtime::from_env().unwrap();
    let bundle = Bundle::package(&runtime, true).unwrap();
    let deb = |name: &str| {
        bundle
            .debs
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("{name}_"))
            })
            .unwrap_or_else(|| panic!("no {name} .deb in {:?}", bundle.debs))
            .clone()
    };
    let dir = TempDir::new("debs").unwrap();

    // llm-node: the binary, the runtime with its libraries, the configuration, the unit.
    let node = dir.path().join("node");
    let fields = unpack(&deb("llm-node"), &node);
    assert!(fields.contains("Package: llm-node"), "{fields}");
    assert!(fields.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))));
    let version = run(
        node.join("usr/bin/llm-node").to_str().unwrap(),
        &["--version"],
        None,
    );
    assert!(version.contains("(commit "), "{version}");
    let llama = node.join("usr/lib/llm-router/runtime/bin/llama-server");
    let out = Command::new(&llama).arg("--version").output().unwrap();
    assert!(out.status.success(), "the packaged llama-server runs");
    let env = std::fs::read_to_string(node.join("etc/llm-router/node.env")).unwrap();
    assert!(
        env.contains("LLM_NODE_LLAMA_SERVER=/usr/lib/llm-router/runtime/bin/llama-server"),
        "{env}"
    );
    let unit = std::fs::read_to_string(node.join("lib/systemd/system/llm-node.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/llm-node",
        "EnvironmentFile=/etc/llm-router/node.env",
        "User=llm-node",
        "StateDirectory=llm-node",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(line), "{line} in {unit}");
    }
    assert!(!unit.contains('@'), "every placeholder filled: {unit}");
    verify_unit(&node, "/lib/systemd/system/llm-node.service");

    // llm-router: the binary, the join bundle it serves (intact), the unit.
    let router = dir.path().join("router");
    let fields = unpack(&deb("llm-router"), &router);
    assert!(fields.contains("Package: llm-router"), "{fields}");
    run(
        router.join("usr/bin/llm-router").to_str().unwrap(),
        &["--version"],
        None,
    );
    let served = router.join("usr/share/llm-router/bundle");
    run(
        "sha256sum",
        &["--check", "--quiet", "SHA256SUMS"],
        Some(&served),
    );
    let unit =
        std::fs::read_to_string(router.join("lib/systemd/system/llm-router.service")).unwrap();
    assert!(
        unit.contains("LLM_ROUTER_BUNDLE_DIR=/usr/share/llm-router/bundle"),
        "{unit}"
    );
    assert!(!unit.contains('@'), "every placeholder filled: {unit}");
    verify_unit(&router, "/lib/systemd/system/llm-router.service");
}
