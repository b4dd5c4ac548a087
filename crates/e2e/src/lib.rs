//! What the end-to-end tests (`tests/`) and the first-load benchmark (`benches/first_load.rs`)
//! share: the dashboard's browser scripts, the 100-node fleet they look at, and joining machines
//! (a packaged bundle, the join script, network namespaces standing for machines).

pub mod browser;
pub mod fleet;
pub mod join;
pub mod netns;
