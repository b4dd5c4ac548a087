//! Ollama ⇄ OpenAI translation, in one place: Ollama requests become OpenAI requests for nodes
//! whose runtime speaks OpenAI (llama-server), and their answers — streamed SSE through a stateful
//! transformer, or whole JSON — become Ollama answers. Nodes whose runtime is Ollama itself are
//! sent the client's request unchanged and their NDJSON is passed through.

pub mod clock;
mod messages;
mod options;
#[cfg(test)]
mod props;
pub mod relay;
pub mod render;
pub mod request;
pub mod response;
mod sse;
mod stats;
pub mod transcoder;

pub use render::Output;
pub use request::Translated;
pub use transcoder::{LineSource, Passthrough, Transcoder};

/// The Ollama answer the client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `/api/chat`: a `message` per line.
    Chat,
    /// `/api/generate`: a `response` per line.
    Generate,
}

/// The OpenAI endpoint a translated request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }
}
