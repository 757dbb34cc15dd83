//! The crate's error type.

use lp2p_core::PeerId;

use crate::store::StoreError;
use crate::validator::InvalidRecord;
use crate::wire::WireError;

/// What went wrong in the DHT, and with whom.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KadError {
    /// A message from `peer` could not be decoded.
    #[error("bad message from {peer}: {source}")]
    Wire {
        /// The sender.
        peer: PeerId,
        /// Why.
        #[source]
        source: WireError,
    },
    /// A record (ours or `peer`'s) failed validation.
    #[error("record from {peer} refused: {source}")]
    InvalidRecord {
        /// Who sent it (ourselves for a local put).
        peer: PeerId,
        /// Why.
        #[source]
        source: InvalidRecord,
    },
    /// A stored record is better than the one `peer` put.
    #[error("{peer} put a record older than the one stored")]
    OutdatedRecord {
        /// The sender.
        peer: PeerId,
    },
    /// A store refused an entry from `peer`.
    #[error("store refused an entry from {peer}: {source}")]
    Store {
        /// The sender.
        peer: PeerId,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A provider key that is not a multihash.
    #[error("provider key from {peer} is not a multihash")]
    NotMultihash {
        /// The sender.
        peer: PeerId,
    },
    /// An ADD_PROVIDER naming only other peers than its sender.
    #[error("{peer} announced providers other than itself")]
    ForeignProvider {
        /// The sender.
        peer: PeerId,
    },
    /// We are in client mode and answer no requests.
    #[error("client mode: request from {peer} not served")]
    ClientMode {
        /// The sender.
        peer: PeerId,
    },
    /// Too many queries run already.
    #[error("{0} queries are running, the limit")]
    TooManyQueries(usize),
    /// The query ended without a result (no peer found, no record, nowhere to store).
    #[error("{0}")]
    NotFound(String),
    /// The query ran out of time.
    #[error("the query timed out")]
    Timeout,
    /// The service (or the host under it) is closed.
    #[error("the Kademlia service is closed")]
    Closed,
}
