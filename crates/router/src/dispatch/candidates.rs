//! Step 1 of dispatch: the candidates for a request.
//!
//! The candidates for a model are the nodes the registry's [`Snapshot`] lists as ready for it:
//! online, not draining, with the model loaded, each with its slot counter for the model. The
//! snapshot indexes them when it is published, so a request reads them without a lock; that index
//! lives with the snapshot (`registry/snapshot.rs`). Here is what a request makes of it.

use super::queue::AcquireError;
use crate::registry::{Candidate, Snapshot, Unavailable};

/// What the fleet offers a request for a model right now.
#[derive(Debug)]
pub(super) enum Outlook<'a> {
    /// Nodes have the model ready (possibly all busy).
    Candidates(&'a [Candidate]),
    /// Nodes know the model and may soon serve it (loading, initializing, suspect): worth waiting.
    Soon,
    /// Nobody can serve it: the request fails with this.
    Never(AcquireError),
}

/// The candidates for `model` in `snapshot`, or why there are none.
pub(super) fn outlook<'a>(snapshot: &'a Snapshot, model: &str) -> Outlook<'a> {
    match snapshot.candidates(model) {
        Ok(candidates) => Outlook::Candidates(candidates),
        Err(Unavailable::NotReadyYet) => Outlook::Soon,
        Err(Unavailable::UnknownModel) => Outlook::Never(AcquireError::UnknownModel),
        Err(Unavailable::AllOffline) => Outlook::Never(AcquireError::NoNode),
    }
}
