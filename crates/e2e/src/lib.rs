//! What the end-to-end tests (`tests/`) and the first-load benchmark (`benches/first_load.rs`)
//! both start: the dashboard's browser scripts and the 100-node fleet they look at.

pub mod browser;
pub mod fleet;
