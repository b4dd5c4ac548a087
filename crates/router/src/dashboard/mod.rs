//! The live dashboard: static files at `/dashboard`, and the event feed at `/ws/dashboard`.
//!
//! The sockets subscribe to the [`live`](crate::live) feed; the hub task diffs the registry for
//! node frames and sends the header figures every second. Frames are serialized once and only
//! while a socket listens, so a router nobody watches pays one lock per request for the live
//! figures and nothing else.

mod assets;
mod hub;
mod ws;

pub use assets::{file, index};
pub use hub::run_hub;
pub use ws::dashboard_ws;
