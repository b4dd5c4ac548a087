//! Conversions between the store's unsigned figures and SQLite's signed integers, shared by every
//! table module.

/// A `u64` as SQLite stores it; saturates at `i64::MAX`.
pub(super) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer back as `u64`; a negative value reads as 0.
pub(super) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
