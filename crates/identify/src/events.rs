//! What identify learns about peers, and the stream it publishes it on.

use std::sync::Arc;

use lp2p_core::events::EventBus;
use lp2p_core::{Multiaddr, PeerId, ProtocolId, PublicKey};
use lp2p_host::{EventStream, Host};

/// What a peer told us about itself through identify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyInfo {
    /// The peer's identity key (checked against its peer id).
    pub public_key: PublicKey,
    /// e.g. "ipfs/0.1.0".
    pub protocol_version: String,
    /// e.g. "lp2p/0.1.0" or "rust-libp2p/0.57.1".
    pub agent_version: String,
    /// Addresses the peer listens on (from its signed peer record when valid).
    pub listen_addrs: Vec<Multiaddr>,
    /// Protocols the peer accepts inbound streams for.
    pub protocols: Vec<ProtocolId>,
    /// Our address as the peer sees it.
    pub observed_addr: Option<Multiaddr>,
    /// Whether the listen addresses came from a valid signed peer record.
    pub signed_record: bool,
}

/// Something the identify service of a host learned.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum IdentifyEvent {
    /// A peer identified itself: its answer, or a push that updated it, checked and applied
    /// (peerstore written) before this event.
    Identified {
        /// The peer.
        peer: PeerId,
        /// What it said (merged with what it said before, for a push).
        info: Arc<IdentifyInfo>,
    },
}

/// The identify events of `host`, from now on: those of the identify service running on it,
/// or of the one started later (so a service such as Kademlia can subscribe before identify
/// starts). Bounded per subscriber as [`Host::events`] is (the host's
/// [`event_buffer`](Host::event_buffer)): a subscriber that falls that far behind misses
/// events (counted and logged). The stream ends when the host closes.
pub fn subscribe(host: &Host) -> EventStream<IdentifyEvent> {
    if host.is_closed() {
        return ended();
    }
    bus(host).0.subscribe()
}

/// A stream that ends at once (for a host that is closed: nothing will publish any more).
pub(crate) fn ended() -> EventStream<IdentifyEvent> {
    let closed = EventBus::new(1);
    let events = closed.subscribe();
    closed.close();
    events
}

/// The host's identify event bus, registered on the host as a service so that the identify
/// service and its subscribers find the same one whichever starts first. It is closed by
/// [`BusCloser`] when the identify service's task ends, or dropped (ending its streams)
/// when the host's registry is cleared if no identify service ever ran.
#[derive(Clone)]
pub(crate) struct Bus(pub(crate) Arc<EventBus<IdentifyEvent>>);

/// Finds the host's identify event bus, or creates and registers it.
pub(crate) fn bus(host: &Host) -> Bus {
    if let Some(bus) = host.service::<Bus>() {
        return bus;
    }
    let bus = Bus(Arc::new(EventBus::new(host.event_buffer())));
    host.insert_service(bus.clone());
    bus
}

/// Closes the bus when dropped: held by the identify service's task, which the host aborts
/// when it closes, so subscribers' streams end with the host.
pub(crate) struct BusCloser(pub(crate) Arc<EventBus<IdentifyEvent>>);

impl Drop for BusCloser {
    fn drop(&mut self) {
        self.0.close();
    }
}
