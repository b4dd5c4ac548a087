//! The live dashboard: static files at `/dashboard`, and the event feed at `/ws/dashboard`.
//!
//! Producers call [`Events`] (requests as they are recorded, download tasks as they progress);
//! the hub task diffs the registry for node frames and sends the header figures every second.
//! Frames are serialized once and only while a socket listens, so a router nobody watches pays
//! one lock per request for the live figures and nothing else.

mod assets;
pub mod events;
mod hub;
mod ws;

pub use assets::{file, index};
pub use events::{Events, Frame, LiveStats};
pub use hub::{live_stats, run_hub};
pub use ws::dashboard_ws;
