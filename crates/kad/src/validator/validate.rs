//! The [`Validator`] trait and the [`InvalidRecord`] error it returns.

/// Why a record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid record: {0}")]
pub struct InvalidRecord(pub String);

impl InvalidRecord {
    /// An error saying `what`.
    pub fn new(what: impl Into<String>) -> InvalidRecord {
        InvalidRecord(what.into())
    }
}

/// Validates and selects the values of one kind of key.
pub trait Validator: Send + Sync + 'static {
    /// Whether `value` is valid under `key`. Pure: no I/O, the same answer every time (up to
    /// expiry).
    fn validate(&self, key: &[u8], value: &[u8]) -> Result<(), InvalidRecord>;

    /// The index of the best of `values` (all valid, at least one). Must be stable: the same
    /// inputs give the same answer.
    fn select(&self, key: &[u8], values: &[&[u8]]) -> usize;
}
