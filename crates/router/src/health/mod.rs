//! Node health: the pure status machine ([`status`]) and the task that applies time to it
//! ([`monitor`]).

mod monitor;
mod status;

pub use monitor::run_monitor;
pub use status::{HealthEvent, HealthPolicy, next_status};
