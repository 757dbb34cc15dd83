//! The record and provider stores: bounded by count and bytes, with expiry.

mod providers;
mod records;

pub use providers::{ProviderRecord, ProviderStore};
pub use records::RecordStore;

/// Why a store refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The value is over the size limit.
    #[error("value of {size} bytes is over the limit of {max}")]
    ValueTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The store holds as many entries (or bytes) as it may.
    #[error("the {0} store is full")]
    Full(&'static str),
    /// The key already holds as many providers as it may.
    #[error("the key has the most providers it may hold")]
    KeyFull,
    /// The providing peer has as many provider records as one peer may hold.
    #[error("the peer has the most provider records one peer may hold")]
    PeerFull,
}
