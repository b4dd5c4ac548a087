//! Waiting for a condition with a deadline, never a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often [`wait_for`] checks.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` every 100 ms until it returns `Some`, or fails naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_every(what, timeout, POLL, check).await
}

/// [`wait_for`], checking every `every`: for a test that measures how soon something happens,
/// or one that should not sleep longer than the condition takes.
pub async fn wait_for_every<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}
