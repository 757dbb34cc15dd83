//! The shared, thread-safe handle: [`Peerstore`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lp2p_core::multiaddr::multihash::Multihash;
use lp2p_core::{Multiaddr, PeerId, ProtocolId, PublicKey, RuntimeHandle};

use crate::addr_book::normalize;
use crate::config::PeerstoreConfig;
use crate::error::PeerstoreError;
use crate::metadata::{AGENT_VERSION_KEY, PROTOCOL_VERSION_KEY};
use crate::store::{GcStats, Store};

/// The multihash code of the identity hash: a peer id that inlines its public key.
const IDENTITY_MULTIHASH_CODE: u64 = 0x00;

/// The public key inlined in an identity-multihash peer id (Ed25519 and other short keys),
/// or `None` when the peer id is a SHA-256 hash or its digest is not a key of this peer.
///
/// ```
/// use lp2p_core::{Keypair, PeerId};
/// use lp2p_peerstore::public_key_from_peer_id;
/// let key = Keypair::generate_ed25519().public();
/// assert_eq!(public_key_from_peer_id(&key.to_peer_id()), Some(key));
/// assert_eq!(public_key_from_peer_id(&PeerId::random()), None);
/// ```
pub fn public_key_from_peer_id(peer: &PeerId) -> Option<PublicKey> {
    let multihash: &Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH_CODE {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    // A non-canonical encoding could decode to a key whose id differs: refuse it.
    (key.to_peer_id() == *peer).then_some(key)
}

/// A snapshot of what the peerstore knows about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The peer.
    pub id: PeerId,
    /// Its unexpired addresses, in the order they were first stored.
    pub addrs: Vec<Multiaddr>,
    /// Its protocols, in the order they were first stored.
    pub protocols: Vec<ProtocolId>,
    /// Its agent version (from identify), if known.
    pub agent_version: Option<String>,
    /// Its protocol version (from identify), if known.
    pub protocol_version: Option<String>,
    /// Its public key: stored, or inlined in the peer id.
    pub public_key: Option<PublicKey>,
}

struct Shared {
    config: PeerstoreConfig,
    /// The clock: expiry times are read from `runtime.now()`.
    runtime: RuntimeHandle,
    store: Mutex<Store>,
}

/// Everything known about other peers: addresses with TTLs, public keys, protocols and
/// metadata, bounded.
///
/// Thread-safe and cheap to clone: clones share one store (an `Arc` around a mutex whose
/// hold times are a few map operations). Plain library code: no I/O, no tasks; time comes from
/// the runtime's clock ([`RuntimeHandle::now`]), read once per call, so a host's peerstore
/// ages with the host's clock (virtual time in `lp2p-testkit`). See the crate docs for the
/// rules on TTLs, bounds and eviction.
#[derive(Clone)]
pub struct Peerstore {
    shared: Arc<Shared>,
}

impl fmt::Debug for Peerstore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peerstore")
            .field("peers", &self.len())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Peerstore {
    /// An empty peerstore with these bounds, reading time from `runtime`'s clock.
    pub fn new(config: PeerstoreConfig, runtime: RuntimeHandle) -> Self {
        let store = Mutex::new(Store::new(config.limits));
        Peerstore {
            shared: Arc::new(Shared {
                config,
                runtime,
                store,
            }),
        }
    }

    /// An empty peerstore with the default bounds, reading time from `runtime`'s clock.
    pub fn with_runtime(runtime: RuntimeHandle) -> Self {
        Peerstore::new(PeerstoreConfig::default(), runtime)
    }

    /// The configuration this peerstore was built with.
    pub fn config(&self) -> &PeerstoreConfig {
        &self.shared.config
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // Nothing panics while holding the lock; if something ever did, the store is still
        // made of whole records, so carry on rather than poison every later caller.
        self.shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The runtime whose clock the peerstore reads.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.shared.runtime
    }

    fn now(&self) -> Instant {
        self.shared.runtime.now()
    }

    fn normalize_all(
        &self,
        peer: &PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
    ) -> Result<Vec<Multiaddr>, PeerstoreError> {
        let max_len = self.shared.config.max_addr_len();
        addrs
            .into_iter()
            .map(|addr| normalize(peer, addr, max_len))
            .collect::<Result<Vec<_>, _>>()
            .inspect_err(|err| tracing::debug!(%peer, %err, "refused addresses"))
    }

    // ---- address book ----

    /// Adds addresses for `peer`, each valid for `ttl` from now.
    ///
    /// An address already stored keeps the larger of its TTLs and the later of its expiries:
    /// adding never shortens. A zero TTL adds nothing. A trailing `/p2p/<peer>` is stripped;
    /// an address naming another peer, an empty one or one longer than the configured limit
    /// is refused, and then none of the given addresses is stored. When the peer's book is
    /// full, the address closest to expiry makes way for one that outlives it; otherwise the
    /// new address is dropped.
    pub fn add_addrs(
        &self,
        peer: &PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
        ttl: Duration,
    ) -> Result<(), PeerstoreError> {
        let addrs = self.normalize_all(peer, addrs)?;
        let now = self.now();
        self.store().add_addrs(peer, addrs, ttl, now);
        Ok(())
    }

    /// [`add_addrs`](Self::add_addrs) with one address.
    pub fn add_addr(
        &self,
        peer: &PeerId,
        addr: Multiaddr,
        ttl: Duration,
    ) -> Result<(), PeerstoreError> {
        self.add_addrs(peer, [addr], ttl)
    }

    /// Sets the given addresses of `peer` to exactly `ttl` from now, replacing their previous
    /// TTL and expiry (shortening allowed); a zero TTL removes them. The peer's other
    /// addresses are left alone (go-libp2p's `SetAddrs`). Addresses are checked as in
    /// [`add_addrs`](Self::add_addrs), all or nothing.
    pub fn set_addrs(
        &self,
        peer: &PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
        ttl: Duration,
    ) -> Result<(), PeerstoreError> {
        let addrs = self.normalize_all(peer, addrs)?;
        let now = self.now();
        self.store().set_addrs(peer, addrs, ttl, now);
        Ok(())
    }

    /// [`set_addrs`](Self::set_addrs) with one address.
    pub fn set_addr(
        &self,
        peer: &PeerId,
        addr: Multiaddr,
        ttl: Duration,
    ) -> Result<(), PeerstoreError> {
        self.set_addrs(peer, [addr], ttl)
    }

    /// Gives every address of `peer` whose TTL is exactly `old_ttl` the TTL `new_ttl`, valid
    /// from now; a zero `new_ttl` removes them. The swarm calls
    /// `update_addrs(peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL)` when the last
    /// connection to a peer closes.
    pub fn update_addrs(&self, peer: &PeerId, old_ttl: Duration, new_ttl: Duration) {
        let now = self.now();
        self.store().update_addrs(peer, old_ttl, new_ttl, now);
    }

    /// The unexpired addresses of `peer`, in the order they were first stored (without a
    /// `/p2p/` suffix). Expired entries of this peer are collected on the way.
    pub fn addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let now = self.now();
        self.store().addrs(peer, now)
    }

    /// Removes every address of `peer`.
    pub fn clear_addrs(&self, peer: &PeerId) {
        self.store().clear_addrs(peer);
    }

    /// Whether `peer` has an address with [`CONNECTED_ADDR_TTL`](crate::CONNECTED_ADDR_TTL),
    /// which the swarm keeps exactly while a connection to it is open. (Adding never lowers a
    /// TTL, so an address already stored as permanent stays permanent and does not count.)
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.store().is_connected(peer)
    }

    // ---- key book ----

    /// Stores `peer`'s public key after checking that it hashes to `peer`; a key of another
    /// peer is refused with [`PeerstoreError::PublicKeyMismatch`] naming both ids.
    pub fn add_public_key(&self, peer: &PeerId, key: PublicKey) -> Result<(), PeerstoreError> {
        let key_peer = key.to_peer_id();
        if key_peer != *peer {
            tracing::debug!(%peer, %key_peer, "refused a public key of another peer");
            return Err(PeerstoreError::PublicKeyMismatch {
                peer: Box::new(*peer),
                key_peer: Box::new(key_peer),
            });
        }
        self.store().set_public_key(peer, key);
        Ok(())
    }

    /// `peer`'s public key: the stored one, else the one inlined in an identity-multihash
    /// peer id (see [`public_key_from_peer_id`]).
    pub fn public_key(&self, peer: &PeerId) -> Option<PublicKey> {
        let stored = self.store().stored_public_key(peer);
        // Decoded outside the lock.
        stored.or_else(|| public_key_from_peer_id(peer))
    }

    // ---- protocol book ----

    /// Replaces `peer`'s protocols. Refused, changing nothing, if any id is empty or over the
    /// length limit, or if there are more distinct ids than the per-peer limit.
    pub fn set_protocols(
        &self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = impl Into<ProtocolId>>,
    ) -> Result<(), PeerstoreError> {
        self.store()
            .set_protocols(peer, protocols.into_iter().map(Into::into))
    }

    /// Adds to `peer`'s protocols. Refused, changing nothing, as
    /// [`set_protocols`](Self::set_protocols) is, or if the union would exceed the limit.
    pub fn add_protocols(
        &self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = impl Into<ProtocolId>>,
    ) -> Result<(), PeerstoreError> {
        self.store()
            .add_protocols(peer, protocols.into_iter().map(Into::into))
    }

    /// Removes the given protocols from `peer`'s (unknown ones are ignored).
    pub fn remove_protocols<P: AsRef<str>>(&self, peer: &PeerId, protocols: &[P]) {
        self.store().remove_protocols(peer, protocols);
    }

    /// `peer`'s protocols, in the order they were first stored.
    pub fn protocols(&self, peer: &PeerId) -> Vec<ProtocolId> {
        self.store().protocols(peer)
    }

    /// Those of `protocols` that `peer` supports, in the order given.
    pub fn supports_protocols<P: AsRef<str>>(
        &self,
        peer: &PeerId,
        protocols: &[P],
    ) -> Vec<ProtocolId> {
        self.store().supports_protocols(peer, protocols)
    }

    /// The first of `protocols` that `peer` supports.
    pub fn first_supported_protocol<P: AsRef<str>>(
        &self,
        peer: &PeerId,
        protocols: &[P],
    ) -> Option<ProtocolId> {
        self.store().first_supported_protocol(peer, protocols)
    }

    // ---- metadata ----

    /// Stores `value` under `key` for `peer`, replacing any previous value. Refused, changing
    /// nothing, if a new key would exceed the per-peer entry limit or the peer's metadata
    /// (keys and values summed) would exceed the per-peer size limit.
    pub fn put_metadata(
        &self,
        peer: &PeerId,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), PeerstoreError> {
        self.store().put_metadata(peer, key, value)
    }

    /// The value stored under `key` for `peer`.
    pub fn metadata(&self, peer: &PeerId, key: &str) -> Option<Vec<u8>> {
        self.store().metadata(peer, key)
    }

    /// Removes the value stored under `key` for `peer`; returns it.
    pub fn remove_metadata(&self, peer: &PeerId, key: &str) -> Option<Vec<u8>> {
        self.store().remove_metadata(peer, key)
    }

    /// Stores `peer`'s agent version (metadata key [`AGENT_VERSION_KEY`]).
    pub fn set_agent_version(
        &self,
        peer: &PeerId,
        version: impl Into<String>,
    ) -> Result<(), PeerstoreError> {
        self.put_metadata(peer, AGENT_VERSION_KEY, version.into().into_bytes())
    }

    /// `peer`'s agent version, if stored and valid UTF-8.
    pub fn agent_version(&self, peer: &PeerId) -> Option<String> {
        self.store().metadata_text(peer, AGENT_VERSION_KEY)
    }

    /// Stores `peer`'s protocol version (metadata key [`PROTOCOL_VERSION_KEY`]).
    pub fn set_protocol_version(
        &self,
        peer: &PeerId,
        version: impl Into<String>,
    ) -> Result<(), PeerstoreError> {
        self.put_metadata(peer, PROTOCOL_VERSION_KEY, version.into().into_bytes())
    }

    /// `peer`'s protocol version, if stored and valid UTF-8.
    pub fn protocol_version(&self, peer: &PeerId) -> Option<String> {
        self.store().metadata_text(peer, PROTOCOL_VERSION_KEY)
    }

    // ---- peers ----

    /// Every peer something is stored for, in no particular order.
    pub fn peers(&self) -> Vec<PeerId> {
        self.store().peers()
    }

    /// Every peer with at least one unexpired address, in no particular order.
    pub fn peers_with_addrs(&self) -> Vec<PeerId> {
        let now = self.now();
        self.store().peers_with_addrs(now)
    }

    /// Whether something is stored for `peer`.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.store().contains(peer)
    }

    /// The number of peers something is stored for.
    pub fn len(&self) -> usize {
        self.store().len()
    }

    /// Whether nothing is stored for any peer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything about `peer`; returns whether anything was stored.
    pub fn remove_peer(&self, peer: &PeerId) -> bool {
        self.store().remove_peer(peer)
    }

    /// A snapshot of what is known about `peer` (empty fields for an unknown peer, except a
    /// public key inlined in its id).
    pub fn peer_info(&self, peer: &PeerId) -> PeerInfo {
        let now = self.now();
        let mut info = {
            let mut store = self.store();
            let addrs = store.addrs(peer, now);
            match store.record(peer) {
                Some(record) => PeerInfo {
                    id: *peer,
                    addrs,
                    protocols: record.protocols.list().to_vec(),
                    agent_version: record.metadata.get_text(AGENT_VERSION_KEY),
                    protocol_version: record.metadata.get_text(PROTOCOL_VERSION_KEY),
                    public_key: record.key.clone(),
                },
                None => PeerInfo {
                    id: *peer,
                    addrs,
                    protocols: Vec::new(),
                    agent_version: None,
                    protocol_version: None,
                    public_key: None,
                },
            }
        };
        if info.public_key.is_none() {
            info.public_key = public_key_from_peer_id(peer);
        }
        info
    }

    /// Collects every expired address and drops peers nothing is left of. The host calls it
    /// periodically; reads also collect lazily, per peer.
    pub fn gc(&self) -> GcStats {
        let now = self.now();
        self.store().gc(now)
    }

    /// Asserts every bound and internal invariant (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        self.store().check_invariants();
    }

    /// Whether `peer` is among the last to be evicted (tests).
    #[cfg(test)]
    pub(crate) fn is_protected(&self, peer: &PeerId) -> bool {
        self.store().is_protected(peer)
    }
}
