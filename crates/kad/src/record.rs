//! Records: the key-value pairs of GET_VALUE / PUT_VALUE.

use std::time::Instant;

use lp2p_core::PeerId;

/// A value stored in the DHT under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key (opaque bytes; namespaced keys look like `/pk/<peer id bytes>`).
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Who first published it (rust-libp2p carries this in field 666).
    pub publisher: Option<PeerId>,
    /// When it expires (`None`: it does not). On the wire this is rust-libp2p's remaining
    /// TTL (field 777).
    pub expires: Option<Instant>,
}

impl Record {
    /// A record without publisher or expiry.
    pub fn new(key: Vec<u8>, value: Vec<u8>) -> Record {
        Record {
            key,
            value,
            publisher: None,
            expires: None,
        }
    }

    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}
