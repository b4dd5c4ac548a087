//! Node health: the pure status machine ([`status`]), the task that applies time to it
//! ([`monitor`]) and the active prober of suspect nodes ([`probe`]).

mod monitor;
mod probe;
mod status;

pub use monitor::run_monitor;
pub use probe::run_prober;
pub use status::{HealthEvent, HealthPolicy, next_status};
