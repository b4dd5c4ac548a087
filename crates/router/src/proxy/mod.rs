//! Forwarding inference requests to nodes and relaying their answers.

mod forward;
mod relay;

pub use forward::forward;
pub use relay::relay;
