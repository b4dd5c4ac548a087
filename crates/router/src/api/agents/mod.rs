//! The node-facing API (registration, heartbeats) and the fleet API (list, inspect, remove).

pub mod address;
pub mod fleet;
pub mod heartbeat;
pub mod register;
mod report;
