//! The vocabulary shared by the core and the routers: topics, message ids, messages, peer
//! kinds and validation results.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lp2p_core::PeerId;

use crate::protocol_ids;

/// A topic name. Cheap to clone (a shared string).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic(Arc<str>);

impl Topic {
    /// A topic with this name.
    pub fn new(name: impl AsRef<str>) -> Topic {
        Topic(Arc::from(name.as_ref()))
    }

    /// The topic name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Topic {
        Topic::new(name)
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Topic {
        Topic(Arc::from(name))
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

/// A message id as computed by the configured message-id function. Travels in IHAVE, IWANT
/// and IDONTWANT, so every peer of a topic must compute it the same way.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(Bytes);

impl MessageId {
    /// A message id from its bytes.
    pub fn new(bytes: impl Into<Bytes>) -> MessageId {
        MessageId(bytes.into())
    }

    /// An id read from a control message (IHAVE, IWANT, IDONTWANT), copied out of the RPC
    /// it arrived in. The decoded id is a slice of that RPC's body, which may also carry
    /// messages of 64 KiB; an id kept for a while (gossip promises, IDONTWANT for a few
    /// heartbeats) would keep the whole body alive. In a 20-node network relaying 50
    /// messages/s of 63 KiB, such ids held about as much memory as the message cache.
    pub fn from_wire(id: &[u8]) -> MessageId {
        MessageId(Bytes::copy_from_slice(id))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id's bytes as a shared buffer.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        for byte in self.0.iter().take(48) {
            write!(f, "{byte:02x}")?;
        }
        if self.0.len() > 48 {
            f.write_str("..")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A pubsub message as the application sees it: checked (signature and policy) and decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The author (`from`), when the message carries one.
    pub source: Option<PeerId>,
    /// The payload.
    pub data: Bytes,
    /// The author's sequence number, when the message carries one.
    pub sequence_number: Option<u64>,
    /// The topic.
    pub topic: Topic,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("source", &self.source)
            .field("data_len", &self.data.len())
            .field("sequence_number", &self.sequence_number)
            .field("topic", &self.topic)
            .finish()
    }
}

/// The outcome of validating a message (gossipsub v1.1 extended validators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acceptance {
    /// Valid: deliver it and forward it.
    Accept,
    /// Invalid: drop it and penalise the peers that delivered it (P₄).
    Reject,
    /// Neither: drop it without penalty.
    Ignore,
}

/// The pubsub protocol a peer speaks, as negotiated on our outbound stream to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKind {
    /// `/floodsub/1.0.0`.
    Floodsub,
    /// `/meshsub/1.0.0`.
    Gossipsub10,
    /// `/meshsub/1.1.0`: PRUNE backoff and peer exchange.
    Gossipsub11,
    /// `/meshsub/1.2.0`: IDONTWANT.
    Gossipsub12,
}

impl PeerKind {
    /// The protocol id of this kind.
    pub const fn protocol(self) -> &'static str {
        match self {
            PeerKind::Floodsub => protocol_ids::FLOODSUB_PROTOCOL,
            PeerKind::Gossipsub10 => protocol_ids::GOSSIPSUB_1_0_PROTOCOL,
            PeerKind::Gossipsub11 => protocol_ids::GOSSIPSUB_1_1_PROTOCOL,
            PeerKind::Gossipsub12 => protocol_ids::GOSSIPSUB_1_2_PROTOCOL,
        }
    }

    /// The kind for a negotiated protocol id, if it is one of ours.
    pub fn from_protocol(protocol: &str) -> Option<PeerKind> {
        match protocol {
            protocol_ids::FLOODSUB_PROTOCOL => Some(PeerKind::Floodsub),
            protocol_ids::GOSSIPSUB_1_0_PROTOCOL => Some(PeerKind::Gossipsub10),
            protocol_ids::GOSSIPSUB_1_1_PROTOCOL => Some(PeerKind::Gossipsub11),
            protocol_ids::GOSSIPSUB_1_2_PROTOCOL => Some(PeerKind::Gossipsub12),
            _ => None,
        }
    }

    /// Whether the peer speaks some version of gossipsub (control messages, mesh).
    pub fn is_gossipsub(self) -> bool {
        self != PeerKind::Floodsub
    }

    /// Whether the peer understands PRUNE backoff and peer exchange (v1.1 and later).
    pub fn supports_px_and_backoff(self) -> bool {
        self >= PeerKind::Gossipsub11
    }

    /// Whether the peer understands IDONTWANT (v1.2).
    pub fn supports_idontwant(self) -> bool {
        self >= PeerKind::Gossipsub12
    }
}

/// Who opened the connection to a peer. Gossipsub keeps at least `D_out` outbound
/// connections in each mesh so that an inbound sybil flood cannot take it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialed the peer.
    Outbound,
    /// The peer dialed us.
    Inbound,
}

/// A message on its way through a router: what forwarding needs, shared and cheap to clone.
#[derive(Debug, Clone)]
pub struct RoutedMessage {
    /// The message id.
    pub id: MessageId,
    /// The topic.
    pub topic: Topic,
    /// The author, if the message names one (never sent back to them).
    pub author: Option<PeerId>,
    /// The peer we received it from; `None` for our own publish.
    pub propagation_source: Option<PeerId>,
    /// The protobuf encoding of the `Message`, as it goes into an RPC's `publish` field.
    pub encoded: Bytes,
}

impl RoutedMessage {
    /// Whether this is our own publish rather than a forward.
    pub fn is_local(&self) -> bool {
        self.propagation_source.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_from_the_wire_does_not_share_the_rpc_buffer() {
        let rpc = Bytes::from(vec![7u8; 64 * 1024]);
        let id = MessageId::from_wire(&rpc.slice(100..140));
        assert_eq!(id.as_bytes(), &[7u8; 40][..]);
        let range = rpc.as_ptr_range();
        assert!(!range.contains(&id.as_bytes().as_ptr()));
    }
}
