//! The bounds of a [`Peerstore`](crate::Peerstore).

/// Default for [`PeerstoreConfig::with_max_peers`].
///
/// Why 10 000: a node taking part in a DHT meets thousands of peers within hours, and keeping
/// their addresses lets it redial them; a typical record (a handful of addresses, twenty-odd
/// protocols, an agent version) takes a few KiB, so this costs tens of MiB at most in
/// practice while stopping a flood of fresh peer ids (which cost nothing to make) from growing
/// the store without limit. Beyond it the least recently seen peer is evicted.
pub const MAX_PEERS: usize = 10_000;

/// Default for [`PeerstoreConfig::with_max_addrs_per_peer`].
///
/// Why 64: a node listens on a few transports (TCP, QUIC, WebTransport, WebSocket) over IPv4
/// and IPv6 and may add a few relay circuits, rarely more than 20 addresses in all; 64 leaves
/// headroom while a hostile peer advertising thousands of addresses costs us at most 64.
pub const MAX_ADDRS_PER_PEER: usize = 64;

/// Default for [`PeerstoreConfig::with_max_addr_len`] (bytes of the binary multiaddr).
///
/// Why 512: the longest useful address, a relay circuit over a 253-byte DNS name with two
/// peer ids, is about 350 bytes; anything longer is junk and bounds the memory per address.
pub const MAX_ADDR_LEN: usize = 512;

/// Default for [`PeerstoreConfig::with_max_protocols_per_peer`].
///
/// Why 128: real nodes speak a few dozen protocols (identify, ping, kad, several gossipsub
/// and bitswap versions, relay, dcutr, autonat, ...); 128 is also go-libp2p's protocol-book
/// limit, so a peer that fits there fits here.
pub const MAX_PROTOCOLS_PER_PEER: usize = 128;

/// Default for [`PeerstoreConfig::with_max_protocol_len`] (bytes).
///
/// Why 1024: multistream-select caps a message at 1024 bytes (go-libp2p and
/// lp2p-multiselect), so a longer protocol id could never be negotiated anyway.
pub const MAX_PROTOCOL_LEN: usize = 1024;

/// Default for [`PeerstoreConfig::with_max_metadata_entries_per_peer`].
///
/// Why 32: identify stores two entries (agent and protocol version) and other protocols a
/// few more; 32 leaves room for applications without letting one peer hold many.
pub const MAX_METADATA_ENTRIES_PER_PEER: usize = 32;

/// Default for [`PeerstoreConfig::with_max_metadata_bytes_per_peer`] (keys and values summed).
///
/// Why 8 KiB: agent and protocol versions are well under 256 bytes in practice and a whole
/// identify message is capped at a few KiB (4 KiB in rust-libp2p), so 8 KiB holds all of it
/// with room for applications' entries.
pub const MAX_METADATA_BYTES_PER_PEER: usize = 8 * 1024;

/// The numeric bounds, copied into the store.
// The field names mirror the constants and the config methods, `max_` included.
#[allow(clippy::struct_field_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_peers: usize,
    pub(crate) max_addrs_per_peer: usize,
    pub(crate) max_addr_len: usize,
    pub(crate) max_protocols_per_peer: usize,
    pub(crate) max_protocol_len: usize,
    pub(crate) max_metadata_entries_per_peer: usize,
    pub(crate) max_metadata_bytes_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_peers: MAX_PEERS,
            max_addrs_per_peer: MAX_ADDRS_PER_PEER,
            max_addr_len: MAX_ADDR_LEN,
            max_protocols_per_peer: MAX_PROTOCOLS_PER_PEER,
            max_protocol_len: MAX_PROTOCOL_LEN,
            max_metadata_entries_per_peer: MAX_METADATA_ENTRIES_PER_PEER,
            max_metadata_bytes_per_peer: MAX_METADATA_BYTES_PER_PEER,
        }
    }
}

/// Configuration of a [`Peerstore`](crate::Peerstore): its bounds. (Its clock is the runtime
/// given to [`Peerstore::new`](crate::Peerstore::new).)
///
/// Every bound defaults to the constant of the same name (see each constant for why that
/// value). A bound of zero stores nothing of that kind, except `max_peers`, which is at
/// least one.
///
/// ```
/// use lp2p_peerstore::{PeerstoreConfig, MAX_PEERS};
/// let config = PeerstoreConfig::default().with_max_peers(1_000).with_max_addrs_per_peer(16);
/// assert_eq!(config.max_peers(), 1_000);
/// assert_eq!(PeerstoreConfig::default().max_peers(), MAX_PEERS);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerstoreConfig {
    pub(crate) limits: Limits,
}

impl PeerstoreConfig {
    /// The maximum number of peers kept (default [`MAX_PEERS`], at least 1). A new peer beyond
    /// it evicts the least recently seen peer, sparing connected peers and peers with a
    /// permanent address while others remain.
    #[must_use]
    pub fn with_max_peers(mut self, max: usize) -> Self {
        self.limits.max_peers = max.max(1);
        self
    }

    /// The maximum number of addresses kept per peer (default [`MAX_ADDRS_PER_PEER`]).
    #[must_use]
    pub fn with_max_addrs_per_peer(mut self, max: usize) -> Self {
        self.limits.max_addrs_per_peer = max;
        self
    }

    /// The longest address accepted, in bytes of its binary form (default [`MAX_ADDR_LEN`]).
    #[must_use]
    pub fn with_max_addr_len(mut self, max: usize) -> Self {
        self.limits.max_addr_len = max;
        self
    }

    /// The maximum number of protocols kept per peer (default [`MAX_PROTOCOLS_PER_PEER`]).
    #[must_use]
    pub fn with_max_protocols_per_peer(mut self, max: usize) -> Self {
        self.limits.max_protocols_per_peer = max;
        self
    }

    /// The longest protocol id accepted, in bytes (default [`MAX_PROTOCOL_LEN`]).
    #[must_use]
    pub fn with_max_protocol_len(mut self, max: usize) -> Self {
        self.limits.max_protocol_len = max;
        self
    }

    /// The maximum number of metadata entries per peer, agent and protocol version included
    /// (default [`MAX_METADATA_ENTRIES_PER_PEER`]).
    #[must_use]
    pub fn with_max_metadata_entries_per_peer(mut self, max: usize) -> Self {
        self.limits.max_metadata_entries_per_peer = max;
        self
    }

    /// The maximum total size of a peer's metadata, keys and values summed
    /// (default [`MAX_METADATA_BYTES_PER_PEER`]).
    #[must_use]
    pub fn with_max_metadata_bytes_per_peer(mut self, max: usize) -> Self {
        self.limits.max_metadata_bytes_per_peer = max;
        self
    }

    /// The maximum number of peers kept.
    pub fn max_peers(&self) -> usize {
        self.limits.max_peers
    }

    /// The maximum number of addresses kept per peer.
    pub fn max_addrs_per_peer(&self) -> usize {
        self.limits.max_addrs_per_peer
    }

    /// The longest address accepted, in bytes.
    pub fn max_addr_len(&self) -> usize {
        self.limits.max_addr_len
    }

    /// The maximum number of protocols kept per peer.
    pub fn max_protocols_per_peer(&self) -> usize {
        self.limits.max_protocols_per_peer
    }

    /// The longest protocol id accepted, in bytes.
    pub fn max_protocol_len(&self) -> usize {
        self.limits.max_protocol_len
    }

    /// The maximum number of metadata entries per peer.
    pub fn max_metadata_entries_per_peer(&self) -> usize {
        self.limits.max_metadata_entries_per_peer
    }

    /// The maximum total size of a peer's metadata, in bytes.
    pub fn max_metadata_bytes_per_peer(&self) -> usize {
        self.limits.max_metadata_bytes_per_peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_constants() {
        let c = PeerstoreConfig::default();
        assert_eq!(c.max_peers(), MAX_PEERS);
        assert_eq!(c.max_addrs_per_peer(), MAX_ADDRS_PER_PEER);
        assert_eq!(c.max_addr_len(), MAX_ADDR_LEN);
        assert_eq!(c.max_protocols_per_peer(), MAX_PROTOCOLS_PER_PEER);
        assert_eq!(c.max_protocol_len(), MAX_PROTOCOL_LEN);
        assert_eq!(
            c.max_metadata_entries_per_peer(),
            MAX_METADATA_ENTRIES_PER_PEER
        );
        assert_eq!(c.max_metadata_bytes_per_peer(), MAX_METADATA_BYTES_PER_PEER);
    }

    #[test]
    fn max_peers_is_at_least_one() {
        assert_eq!(PeerstoreConfig::default().with_max_peers(0).max_peers(), 1);
    }

    #[test]
    fn debug_shows_the_bounds() {
        let shown = format!("{:?}", PeerstoreConfig::default());
        assert!(shown.contains("max_peers: 10000"), "{shown}");
    }
}
