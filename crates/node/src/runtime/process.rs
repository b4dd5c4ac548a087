//! Child-process plumbing: runtimes die with the node, and are stopped gently first.
//!
//! This is the crate's only `unsafe`: two libc calls (`prctl`, `kill`) that std does not wrap.
#![allow(unsafe_code)]

use std::time::Duration;

use tokio::process::{Child, Command};

/// Makes the child receive SIGKILL if the node dies, even by SIGKILL, so no runtime is orphaned.
pub fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only calls `prctl` and
    // `getppid`, both async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.kill_on_drop(true);
}

/// Asks the child to stop (SIGTERM), then kills it if it is still running after `grace`.
pub async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: `kill` with a pid of our own live child (not yet reaped: `id()` is Some) and a
        // valid signal number has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(pid, "runtime ignored SIGTERM; killing it");
    }
    let _ = child.kill().await;
}
