//! Running pulls by model, so that a second pull of a model joins the first instead of
//! downloading the same file again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Downloader, Progress, PullError, PullSpec, Pulled};

/// What a running (or just finished) pull has to say.
#[derive(Debug, Clone, Default)]
pub(crate) struct PullState {
    /// The latest report; `None` until the first one.
    pub progress: Option<Progress>,
    /// Set once, when the pull ends.
    pub outcome: Option<Result<Pulled, PullError>>,
}

/// The running pulls. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Pulls {
    downloader: Arc<Downloader>,
    cancel: CancellationToken,
    running: Arc<Mutex<Running>>,
}

#[derive(Default)]
struct Running {
    next_id: u64,
    by_model: HashMap<String, PullHandle>,
}

/// A caller's view of one pull. Clones (and joiners) watch the same download.
#[derive(Debug, Clone)]
pub struct PullHandle {
    id: u64,
    joined: bool,
    state: watch::Receiver<PullState>,
}

impl Pulls {
    /// Pulls made through `downloader`; cancelling `cancel` (shutdown) cancels them all.
    pub fn new(downloader: Downloader, cancel: CancellationToken) -> Self {
        Self {
            downloader: Arc::new(downloader),
            cancel,
            running: Arc::default(),
        }
    }

    /// Starts pulling `spec` as `model`, or joins the pull of `model` already running (whose spec
    /// then applies; see [`PullHandle::joined`]). Spawns on the current tokio runtime.
    pub fn pull(&self, model: &str, spec: PullSpec) -> PullHandle {
        let total = spec.size;
        self.pull_parts(model, vec![spec], total)
    }

    /// Like [`Pulls::pull`], for a model in several files (a split GGUF): downloaded one after
    /// the other, each resumed and verified on its own; progress counts the bytes of all of them
    /// against `total` (the whole model, when known). The outcome names the first file, with the
    /// bytes of all; a failed part fails the pull (parts already in place stay, and a later pull
    /// with digests finds them verified instead of downloading them again).
    pub fn pull_parts(&self, model: &str, specs: Vec<PullSpec>, total: Option<u64>) -> PullHandle {
        let mut running = self.lock();
        if let Some(handle) = running.by_model.get(model) {
            tracing::info!(model, "joining the running pull");
            return PullHandle {
                joined: true,
                ..handle.clone()
            };
        }
        running.next_id += 1;
        let (state_tx, state_rx) = watch::channel(PullState::default());
        let handle = PullHandle {
            id: running.next_id,
            joined: false,
            state: state_rx,
        };
        running.by_model.insert(model.to_owned(), handle.clone());
        drop(running);

        let pulls = self.clone();
        let model = model.to_owned();
        let (id, cancel) = (handle.id, self.cancel.child_token());
        tokio::spawn(async move {
            let report = |progress: &Progress| {
                state_tx.send_modify(|state| state.progress = Some(*progress));
            };
            let outcome = download_all(&pulls.downloader, &specs, total, report, &cancel).await;
            if let Err(error) = &outcome {
                tracing::warn!(model, %error, "pull failed");
            }
            // Unregister first: whoever asks for this model from now on starts a new pull.
            {
                let mut running = pulls.lock();
                if running.by_model.get(&model).is_some_and(|h| h.id == id) {
                    running.by_model.remove(&model);
                }
            }
            state_tx.send_modify(|state| state.outcome = Some(outcome));
        });
        handle
    }

    /// Models being pulled.
    pub fn running(&self) -> Vec<String> {
        self.lock().by_model.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Downloads `specs` in order, reporting progress over all of them.
async fn download_all(
    downloader: &Downloader,
    specs: &[PullSpec],
    total: Option<u64>,
    mut report: impl FnMut(&Progress) + Send,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Pulled, PullError> {
    let mut done = 0u64;
    let mut first: Option<Pulled> = None;
    let mut attempts = 0;
    for (index, spec) in specs.iter().enumerate() {
        let before = done;
        let on_part = |p: &Progress| {
            report(&Progress {
                bytes_done: before.saturating_add(p.bytes_done),
                bytes_total: total.or_else(|| p.bytes_total.map(|t| before.saturating_add(t))),
                ..*p
            });
        };
        let pulled = downloader.download(spec, on_part, cancel).await?;
        if specs.len() > 1 {
            tracing::info!(
                part = index + 1,
                parts = specs.len(),
                file = %pulled.path.display(),
                bytes = pulled.bytes,
                sha256 = %pulled.sha256,
                "part in place"
            );
        }
        done = done.saturating_add(pulled.bytes);
        attempts += pulled.attempts;
        first.get_or_insert(pulled);
    }
    let first = first.ok_or_else(|| PullError::Invalid("nothing to download".to_owned()))?;
    Ok(Pulled {
        bytes: done,
        attempts,
        ..first
    })
}

impl PullHandle {
    /// True when this handle joined a pull another request had started.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// The latest progress report.
    pub fn progress(&self) -> Option<Progress> {
        self.state.borrow().progress
    }

    /// Progress and outcome as they change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<PullState> {
        self.state.clone()
    }

    /// Waits for the pull to end.
    pub async fn wait(&self) -> Result<Pulled, PullError> {
        let mut state = self.state.clone();
        match state.wait_for(|state| state.outcome.is_some()).await {
            Ok(state) => state.outcome.clone().unwrap_or(Err(PullError::Cancelled)),
            // The task ended without an outcome: its runtime is shutting down.
            Err(_) => Err(PullError::Cancelled),
        }
    }
}
