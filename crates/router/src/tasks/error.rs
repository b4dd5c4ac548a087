//! What can go wrong when models are sent to nodes or nodes report on their downloads. The HTTP
//! status of each is decided once, in [`crate::error`].

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(
        "the model '{}' is not in the catalog (GET /api/models/available lists it)",
        llm_router_common::text::capped(.0, llm_router_common::text::MAX_NAME)
    )]
    UnknownModel(String),
    /// The model or the node cannot take part in a pull (no GGUF, split files, an Ollama node).
    #[error("invalid request: {0}")]
    NotPullable(String),
    #[error("node '{0}' is offline")]
    NodeOffline(String),
    #[error("not enough disk space: {0}")]
    InsufficientStorage(String),
    /// The node could not be reached or refused the pull for another reason.
    #[error("the node did not answer: {0}")]
    NodeFailed(String),
    #[error("task {0} does not exist")]
    NotFound(String),
    #[error("forbidden: task {0} belongs to another node")]
    OtherNode(String),
}
