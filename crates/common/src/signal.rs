//! Stopping on Ctrl-C or SIGTERM.

use tokio_util::sync::CancellationToken;

/// Waits for Ctrl-C or (on Unix) SIGTERM, logs `"shutdown signal received; {then}"` and cancels
/// `shutdown`. Spawned by each program's `main`.
pub async fn stop_on_signal(shutdown: CancellationToken, then: &'static str) {
    received().await;
    tracing::info!("shutdown signal received; {then}");
    shutdown.cancel();
}

/// Completes on Ctrl-C or SIGTERM; on Ctrl-C alone where SIGTERM cannot be listened for.
async fn received() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
