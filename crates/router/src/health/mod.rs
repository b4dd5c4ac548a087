//! Node health over time: the task that applies the clock to the registry's status machine
//! ([`monitor`]) and the active prober of suspect nodes ([`probe`]). The status machine itself is
//! the registry's ([`crate::registry::next_status`]): health drives the registry, never the reverse.

mod monitor;
mod probe;

pub use monitor::run_monitor;
pub use probe::run_prober;
