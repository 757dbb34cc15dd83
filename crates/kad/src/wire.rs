//! Kademlia messages: bytes <-> typed requests and responses.
//!
//! Checked first, then converted: the body length is checked against the limit before
//! protobuf decoding, every peer id and address is parsed (bad ones are skipped and
//! counted), and lists are cut to their limits, so nothing a peer sends can make a message
//! hold more than [`WireLimits`] allows. Framing (the uvarint length prefix) is the caller's:
//! `lp2p_core::framing` reads and writes it with the same limit.

use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId, Protocol};
use prost::Message as _;

use crate::proto::{self, message::ConnectionType as ProtoConnection, message::MessageType};
use crate::record::Record;

/// The protocol id of the IPFS DHT (and the default of [`crate::KadConfig::protocol`]).
pub const PROTOCOL: &str = "/ipfs/kad/1.0.0";

/// Largest message read or written by default: 64 KiB. rust-libp2p caps at 16 KiB, go at
/// 4 MiB; 64 KiB holds 20 closer peers with 8 addresses each several times over and any
/// sane record, while a 10 000-peer answer from a hostile peer is refused before decoding.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Peers kept from one list (closer peers, providers) of a message: 20 is `k`, what every
/// implementation sends; a few more are tolerated, the rest dropped and counted.
pub const DEFAULT_MAX_PEERS_PER_LIST: usize = 32;

/// Addresses kept per peer entry: real peers announce a handful (one per transport and IP
/// family); the cap keeps a flood of addresses out of queries and the peerstore.
pub const DEFAULT_MAX_ADDRS_PER_PEER: usize = 16;

/// Longest record or provider key accepted: enough for `/ipns/` + a PeerId or any CID
/// multihash, with room for application namespaces.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// What a message may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// See [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// See [`DEFAULT_MAX_PEERS_PER_LIST`].
    pub max_peers_per_list: usize,
    /// See [`DEFAULT_MAX_ADDRS_PER_PEER`].
    pub max_addrs_per_peer: usize,
    /// See [`DEFAULT_MAX_KEY_LEN`].
    pub max_key_len: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_peers_per_list: DEFAULT_MAX_PEERS_PER_LIST,
            max_addrs_per_peer: DEFAULT_MAX_ADDRS_PER_PEER,
            max_key_len: DEFAULT_MAX_KEY_LEN,
        }
    }
}

/// Why a message was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Over the size limit (checked before decoding).
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid protobuf `Message`.
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    /// A message type we do not know (or one that is not a request/response).
    #[error("unexpected message type {0}")]
    UnexpectedType(i32),
    /// The key is longer than the limit.
    #[error("key of {len} bytes is over the limit of {max}")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A required field is missing or inconsistent (a PUT_VALUE without a record, a record
    /// key that differs from the message key, an ADD_PROVIDER without a valid provider).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// How the sender is connected to a peer it names (spec `ConnectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionType {
    /// No connection, no information (the default).
    #[default]
    NotConnected,
    /// A live connection.
    Connected,
    /// Recently connected.
    CanConnect,
    /// Recently failed to connect.
    CannotConnect,
}

impl ConnectionType {
    fn from_proto(raw: i32) -> ConnectionType {
        match ProtoConnection::try_from(raw) {
            Ok(ProtoConnection::Connected) => ConnectionType::Connected,
            Ok(ProtoConnection::CanConnect) => ConnectionType::CanConnect,
            Ok(ProtoConnection::CannotConnect) => ConnectionType::CannotConnect,
            // Unknown values are treated as "no information", not as an error.
            Ok(ProtoConnection::NotConnected) | Err(_) => ConnectionType::NotConnected,
        }
    }

    fn to_proto(self) -> i32 {
        let c = match self {
            ConnectionType::NotConnected => ProtoConnection::NotConnected,
            ConnectionType::Connected => ProtoConnection::Connected,
            ConnectionType::CanConnect => ProtoConnection::CanConnect,
            ConnectionType::CannotConnect => ProtoConnection::CannotConnect,
        };
        c as i32
    }
}

/// A peer named in a message: its id and addresses (without a `/p2p` suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// Its addresses.
    pub addrs: Vec<Multiaddr>,
    /// How the sender is connected to it.
    pub connection: ConnectionType,
}

impl PeerInfo {
    /// A peer with addresses and no connection information.
    pub fn new(peer: PeerId, addrs: Vec<Multiaddr>) -> PeerInfo {
        PeerInfo {
            peer,
            addrs,
            connection: ConnectionType::NotConnected,
        }
    }
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The `k` closest peers to `key` (a binary PeerId, or any key).
    FindNode {
        /// The key.
        key: Vec<u8>,
    },
    /// The record under `key`, and the closest peers.
    GetValue {
        /// The key.
        key: Vec<u8>,
    },
    /// Store a record.
    PutValue {
        /// The record.
        record: Record,
    },
    /// The providers of `key`, and the closest peers.
    GetProviders {
        /// The key (a multihash).
        key: Vec<u8>,
    },
    /// The sender provides `key` (no response).
    AddProvider {
        /// The key (a multihash).
        key: Vec<u8>,
        /// The provider entries (only those naming the sender count).
        providers: Vec<PeerInfo>,
    },
    /// Deprecated: answered, never sent.
    Ping,
}

/// The type of a message, without its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// FIND_NODE.
    FindNode,
    /// GET_VALUE.
    GetValue,
    /// PUT_VALUE.
    PutValue,
    /// GET_PROVIDERS.
    GetProviders,
    /// ADD_PROVIDER.
    AddProvider,
    /// PING.
    Ping,
}

impl MessageKind {
    /// Whether the remote answers a request of this type (every type but ADD_PROVIDER).
    pub fn expects_response(self) -> bool {
        self != MessageKind::AddProvider
    }

    /// The name on the wire, for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::FindNode => "FIND_NODE",
            MessageKind::GetValue => "GET_VALUE",
            MessageKind::PutValue => "PUT_VALUE",
            MessageKind::GetProviders => "GET_PROVIDERS",
            MessageKind::AddProvider => "ADD_PROVIDER",
            MessageKind::Ping => "PING",
        }
    }
}

impl Request {
    /// Its type.
    pub fn kind(&self) -> MessageKind {
        match self {
            Request::FindNode { .. } => MessageKind::FindNode,
            Request::GetValue { .. } => MessageKind::GetValue,
            Request::PutValue { .. } => MessageKind::PutValue,
            Request::GetProviders { .. } => MessageKind::GetProviders,
            Request::AddProvider { .. } => MessageKind::AddProvider,
            Request::Ping => MessageKind::Ping,
        }
    }

    /// Whether the remote answers this request (every request but ADD_PROVIDER).
    pub fn expects_response(&self) -> bool {
        self.kind().expects_response()
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// To FIND_NODE.
    FindNode {
        /// The closest peers the responder knows.
        closer: Vec<PeerInfo>,
    },
    /// To GET_VALUE.
    GetValue {
        /// The record, if the responder has one.
        record: Option<Record>,
        /// The closest peers the responder knows.
        closer: Vec<PeerInfo>,
    },
    /// To PUT_VALUE: the stored record echoed.
    PutValue {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// To GET_PROVIDERS.
    GetProviders {
        /// The closest peers the responder knows.
        closer: Vec<PeerInfo>,
        /// The providers it knows.
        providers: Vec<PeerInfo>,
    },
    /// To PING.
    Ping,
}

/// A decoded message and what was dropped from it on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// The message.
    pub message: T,
    /// Peer entries dropped: over the list limit, or with an invalid peer id.
    pub dropped_peers: usize,
    /// Addresses dropped: unparsable, naming another peer, or over the per-peer limit.
    pub dropped_addrs: usize,
}

/// Decodes a request body (without its length prefix).
pub fn decode_request(
    bytes: &[u8],
    limits: &WireLimits,
    now: Instant,
) -> Result<Decoded<Request>, WireError> {
    let m = decode_message(bytes, limits)?;
    let mut cut = Cut::default();
    let key = check_key(m.key, limits)?;
    let request = match MessageType::try_from(m.r#type) {
        Ok(MessageType::FindNode) => Request::FindNode { key },
        Ok(MessageType::GetValue) => Request::GetValue { key },
        Ok(MessageType::GetProviders) => Request::GetProviders { key },
        Ok(MessageType::Ping) => Request::Ping,
        Ok(MessageType::PutValue) => {
            let record = m
                .record
                .ok_or(WireError::Invalid("PUT_VALUE without a record"))?;
            let record = record_from_proto(record, limits, now)?;
            if record.key != key {
                return Err(WireError::Invalid(
                    "PUT_VALUE record key differs from the message key",
                ));
            }
            Request::PutValue { record }
        }
        Ok(MessageType::AddProvider) => {
            let providers = cut.peers(m.provider_peers, limits);
            if providers.is_empty() {
                return Err(WireError::Invalid("ADD_PROVIDER without a valid provider"));
            }
            Request::AddProvider { key, providers }
        }
        Err(_) => return Err(WireError::UnexpectedType(m.r#type)),
    };
    Ok(cut.finish(request))
}

/// Decodes a response body (without its length prefix) to a request of type `request`.
pub fn decode_response(
    bytes: &[u8],
    request: MessageKind,
    limits: &WireLimits,
    now: Instant,
) -> Result<Decoded<Response>, WireError> {
    let m = decode_message(bytes, limits)?;
    let mut cut = Cut::default();
    let expected = match request {
        MessageKind::FindNode => MessageType::FindNode,
        MessageKind::GetValue => MessageType::GetValue,
        MessageKind::PutValue => MessageType::PutValue,
        MessageKind::GetProviders => MessageType::GetProviders,
        MessageKind::Ping => MessageType::Ping,
        MessageKind::AddProvider => return Err(WireError::UnexpectedType(m.r#type)),
    };
    if m.r#type != expected as i32 {
        return Err(WireError::UnexpectedType(m.r#type));
    }
    let response = match expected {
        MessageType::FindNode => Response::FindNode {
            closer: cut.peers(m.closer_peers, limits),
        },
        MessageType::GetValue => Response::GetValue {
            record: m
                .record
                .map(|r| record_from_proto(r, limits, now))
                .transpose()?,
            closer: cut.peers(m.closer_peers, limits),
        },
        MessageType::GetProviders => Response::GetProviders {
            closer: cut.peers(m.closer_peers, limits),
            providers: cut.peers(m.provider_peers, limits),
        },
        MessageType::PutValue => {
            let record = m
                .record
                .ok_or(WireError::Invalid("PUT_VALUE echo without a record"))?;
            Response::PutValue {
                key: check_key(m.key, limits)?,
                value: record.value,
            }
        }
        MessageType::Ping | MessageType::AddProvider => Response::Ping,
    };
    Ok(cut.finish(response))
}

/// Encodes a request body (without its length prefix).
pub fn encode_request(request: &Request, now: Instant) -> Vec<u8> {
    let m = match request {
        Request::FindNode { key } => message(MessageType::FindNode, key),
        Request::GetValue { key } => message(MessageType::GetValue, key),
        Request::GetProviders { key } => message(MessageType::GetProviders, key),
        Request::Ping => message(MessageType::Ping, &[]),
        Request::PutValue { record } => proto::Message {
            record: Some(record_to_proto(record, now)),
            ..message(MessageType::PutValue, &record.key)
        },
        Request::AddProvider { key, providers } => proto::Message {
            provider_peers: providers.iter().map(peer_to_proto).collect(),
            ..message(MessageType::AddProvider, key)
        },
    };
    m.encode_to_vec()
}

/// Encodes a response body (without its length prefix).
pub fn encode_response(response: &Response, now: Instant) -> Vec<u8> {
    let m = match response {
        Response::FindNode { closer } => proto::Message {
            closer_peers: closer.iter().map(peer_to_proto).collect(),
            ..message(MessageType::FindNode, &[])
        },
        Response::GetValue { record, closer } => proto::Message {
            record: record.as_ref().map(|r| record_to_proto(r, now)),
            closer_peers: closer.iter().map(peer_to_proto).collect(),
            ..message(MessageType::GetValue, &[])
        },
        Response::GetProviders { closer, providers } => proto::Message {
            closer_peers: closer.iter().map(peer_to_proto).collect(),
            provider_peers: providers.iter().map(peer_to_proto).collect(),
            ..message(MessageType::GetProviders, &[])
        },
        Response::PutValue { key, value } => proto::Message {
            record: Some(proto::Record {
                key: key.clone(),
                value: value.clone(),
                ..proto::Record::default()
            }),
            ..message(MessageType::PutValue, key)
        },
        Response::Ping => message(MessageType::Ping, &[]),
    };
    m.encode_to_vec()
}

fn message(kind: MessageType, key: &[u8]) -> proto::Message {
    proto::Message {
        r#type: kind as i32,
        key: key.to_vec(),
        ..proto::Message::default()
    }
}

fn decode_message(bytes: &[u8], limits: &WireLimits) -> Result<proto::Message, WireError> {
    if bytes.len() > limits.max_message_size {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: limits.max_message_size,
        });
    }
    // One copy into a shared buffer; peer ids and addresses are then slices of it.
    proto::Message::decode(bytes::Bytes::copy_from_slice(bytes))
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// A peer to put in an answer, borrowed from the routing table.
#[derive(Debug, Clone, Copy)]
pub struct PeerRef<'a> {
    /// The peer.
    pub peer: &'a PeerId,
    /// Its addresses.
    pub addrs: &'a [Multiaddr],
    /// How we are connected to it.
    pub connection: ConnectionType,
}

/// Appends `closerPeers` entries (field 8) to an encoded message, straight from borrowed
/// peers (protobuf fields may come in any order; repeated ones concatenate).
pub fn append_closer_peers<'a>(out: &mut Vec<u8>, peers: impl IntoIterator<Item = PeerRef<'a>>) {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    for p in peers {
        // The binary peer id is its multihash (varint code, varint size, digest), written
        // here without building it first.
        let mh = p.peer.as_ref();
        let digest = mh.digest();
        let id_len =
            encoded_len_varint(mh.code()) + encoded_len_varint(u64::from(mh.size())) + digest.len();
        let connection = u64::from(p.connection.to_proto().unsigned_abs());
        let mut len = 1 + encoded_len_varint(id_len as u64) + id_len;
        for addr in p.addrs {
            let a: &[u8] = addr.as_ref();
            len += 1 + encoded_len_varint(a.len() as u64) + a.len();
        }
        if connection != 0 {
            len += 1 + encoded_len_varint(connection);
        }
        encode_key(8, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(id_len as u64, out);
        encode_varint(mh.code(), out);
        encode_varint(u64::from(mh.size()), out);
        out.extend_from_slice(digest);
        for addr in p.addrs {
            let a: &[u8] = addr.as_ref();
            encode_key(2, WireType::LengthDelimited, out);
            encode_varint(a.len() as u64, out);
            out.extend_from_slice(a);
        }
        if connection != 0 {
            encode_key(3, WireType::Varint, out);
            encode_varint(connection, out);
        }
    }
}

fn check_key(key: Vec<u8>, limits: &WireLimits) -> Result<Vec<u8>, WireError> {
    if key.len() > limits.max_key_len {
        return Err(WireError::KeyTooLong {
            len: key.len(),
            max: limits.max_key_len,
        });
    }
    Ok(key)
}

/// Counts what was dropped while converting peer lists.
#[derive(Default)]
struct Cut {
    peers: usize,
    addrs: usize,
}

impl Cut {
    fn peers(&mut self, raw: Vec<proto::message::Peer>, limits: &WireLimits) -> Vec<PeerInfo> {
        let total = raw.len();
        let mut out = Vec::with_capacity(total.min(limits.max_peers_per_list));
        for entry in raw {
            if out.len() >= limits.max_peers_per_list {
                break;
            }
            match self.peer(entry, limits) {
                Some(info) => out.push(info),
                None => self.peers = self.peers.saturating_add(1),
            }
        }
        let skipped_over_limit = total.saturating_sub(out.len()).saturating_sub(self.peers);
        self.peers = self.peers.saturating_add(skipped_over_limit);
        out
    }

    fn peer(&mut self, entry: proto::message::Peer, limits: &WireLimits) -> Option<PeerInfo> {
        let peer = PeerId::from_bytes(&entry.id).ok()?;
        let mut addrs = Vec::new();
        for raw in entry.addrs {
            if addrs.len() >= limits.max_addrs_per_peer {
                self.addrs = self.addrs.saturating_add(1);
                continue;
            }
            match parse_addr(raw.to_vec(), &peer) {
                Some(addr) if !addrs.contains(&addr) => addrs.push(addr),
                Some(_) => {}
                None => self.addrs = self.addrs.saturating_add(1),
            }
        }
        Some(PeerInfo {
            peer,
            addrs,
            connection: ConnectionType::from_proto(entry.connection),
        })
    }

    fn finish<T>(self, message: T) -> Decoded<T> {
        Decoded {
            message,
            dropped_peers: self.peers,
            dropped_addrs: self.addrs,
        }
    }
}

/// Parses a binary multiaddr; a trailing `/p2p/<id>` must name `peer` and is removed.
fn parse_addr(raw: Vec<u8>, peer: &PeerId) -> Option<Multiaddr> {
    let mut addr = Multiaddr::try_from(raw).ok()?;
    if let Some(Protocol::P2p(id)) = addr.iter().last() {
        if id != *peer {
            return None;
        }
        addr.pop();
    }
    (!addr.is_empty()).then_some(addr)
}

fn peer_to_proto(info: &PeerInfo) -> proto::message::Peer {
    proto::message::Peer {
        id: info.peer.to_bytes().into(),
        addrs: info.addrs.iter().map(|a| a.to_vec().into()).collect(),
        connection: info.connection.to_proto(),
    }
}

fn record_from_proto(
    r: proto::Record,
    limits: &WireLimits,
    now: Instant,
) -> Result<Record, WireError> {
    let key = check_key(r.key, limits)?;
    let publisher = if r.publisher.is_empty() {
        None
    } else {
        Some(
            PeerId::from_bytes(&r.publisher)
                .map_err(|_| WireError::Invalid("record publisher is not a peer id"))?,
        )
    };
    let expires = (r.ttl > 0).then(|| now.checked_add(Duration::from_secs(u64::from(r.ttl))));
    Ok(Record {
        key,
        value: r.value,
        publisher,
        // A TTL too far out for the clock counts as "no expiry given".
        expires: expires.flatten(),
    })
}

fn record_to_proto(record: &Record, now: Instant) -> proto::Record {
    let ttl = record.expires.map_or(0, |at| {
        let secs = at.saturating_duration_since(now).as_secs();
        // 0 means "does not expire": an expired record says 1 s.
        u32::try_from(secs).unwrap_or(u32::MAX).max(1)
    });
    proto::Record {
        key: record.key.clone(),
        value: record.value.clone(),
        time_received: String::new(),
        publisher: record.publisher.map(PeerId::to_bytes).unwrap_or_default(),
        ttl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> WireLimits {
        WireLimits::default()
    }

    #[test]
    fn find_node_matches_the_digest_vector() {
        // wire-formats.md 30.11: FIND_NODE for an Ed25519 PeerId is `08 04 12 26 <38-byte id>`.
        let peer = lp2p_core::Keypair::generate_ed25519().public().to_peer_id();
        let body = encode_request(
            &Request::FindNode {
                key: peer.to_bytes(),
            },
            Instant::now(),
        );
        assert_eq!(&body[..4], &[0x08, 0x04, 0x12, 0x26]);
        assert_eq!(&body[4..], &peer.to_bytes()[..]);
    }

    #[test]
    fn put_value_has_no_type_field() {
        let record = Record::new(b"k".to_vec(), b"v".to_vec());
        let body = encode_request(&Request::PutValue { record }, Instant::now());
        // proto3: type 0 (PUT_VALUE) is omitted; the first field is the key (2).
        assert_eq!(body[0], 0x12);
        let decoded = decode_request(&body, &limits(), Instant::now()).unwrap();
        assert!(matches!(decoded.message, Request::PutValue { .. }));
    }

    #[test]
    fn every_request_and_response_round_trips() {
        let now = Instant::now();
        let peer = PeerId::random();
        let info = PeerInfo {
            peer,
            addrs: vec!["/ip4/1.2.3.4/tcp/5".parse().unwrap()],
            connection: ConnectionType::Connected,
        };
        let mut record = Record::new(b"/v/k".to_vec(), b"value".to_vec());
        record.publisher = Some(peer);
        record.expires = Some(now + Duration::from_secs(100));
        let requests = [
            Request::FindNode { key: b"k".to_vec() },
            Request::GetValue { key: b"k".to_vec() },
            Request::GetProviders { key: b"k".to_vec() },
            Request::PutValue {
                record: record.clone(),
            },
            Request::AddProvider {
                key: b"k".to_vec(),
                providers: vec![info.clone()],
            },
            Request::Ping,
        ];
        for r in &requests {
            let bytes = encode_request(r, now);
            assert_eq!(&decode_request(&bytes, &limits(), now).unwrap().message, r);
        }
        let responses = [
            (
                &requests[0],
                Response::FindNode {
                    closer: vec![info.clone()],
                },
            ),
            (
                &requests[1],
                Response::GetValue {
                    record: Some(record.clone()),
                    closer: vec![info.clone()],
                },
            ),
            (
                &requests[2],
                Response::GetProviders {
                    closer: vec![],
                    providers: vec![info.clone()],
                },
            ),
            (
                &requests[3],
                Response::PutValue {
                    key: b"/v/k".to_vec(),
                    value: b"value".to_vec(),
                },
            ),
            (&requests[5], Response::Ping),
        ];
        for (request, response) in &responses {
            let bytes = encode_response(response, now);
            let decoded = decode_response(&bytes, request.kind(), &limits(), now).unwrap();
            assert_eq!(&decoded.message, response);
        }
    }

    #[test]
    fn malformed_and_oversized_input_is_refused() {
        let now = Instant::now();
        let l = limits();
        assert!(matches!(
            decode_request(&vec![0u8; l.max_message_size + 1], &l, now),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_request(&[0x0a, 0xff], &l, now),
            Err(WireError::Malformed(_))
        ));
        // Unknown type.
        assert!(matches!(
            decode_request(&[0x08, 0x09], &l, now),
            Err(WireError::UnexpectedType(9))
        ));
        // PUT_VALUE without a record.
        assert!(matches!(
            decode_request(&[0x12, 0x01, b'k'], &l, now),
            Err(WireError::Invalid(_))
        ));
        // A key over the limit.
        let long = encode_request(
            &Request::GetValue {
                key: vec![1; l.max_key_len + 1],
            },
            now,
        );
        assert!(matches!(
            decode_request(&long, &l, now),
            Err(WireError::KeyTooLong { .. })
        ));
        // A response of the wrong type.
        let find = encode_response(&Response::FindNode { closer: vec![] }, now);
        assert!(matches!(
            decode_response(&find, MessageKind::Ping, &l, now),
            Err(WireError::UnexpectedType(4))
        ));
        // ADD_PROVIDER with no valid provider.
        let bad = proto::Message {
            r#type: MessageType::AddProvider as i32,
            key: b"k".to_vec(),
            provider_peers: vec![proto::message::Peer {
                id: vec![1, 2, 3].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            decode_request(&bad.encode_to_vec(), &l, now),
            Err(WireError::Invalid(_))
        ));
    }

    #[test]
    fn peer_lists_are_cut_and_bad_entries_counted() {
        let now = Instant::now();
        let l = WireLimits {
            max_peers_per_list: 3,
            max_addrs_per_peer: 2,
            ..WireLimits::default()
        };
        let good = |addrs: Vec<Vec<u8>>| proto::message::Peer {
            id: PeerId::random().to_bytes().into(),
            addrs: addrs.into_iter().map(Into::into).collect(),
            connection: 7, // an unknown connection type is "no information"
        };
        let addr: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        let other: Multiaddr = "/ip4/1.2.3.4/tcp/2".parse().unwrap();
        let mut peers = vec![
            proto::message::Peer {
                id: b"not a peer id".to_vec().into(),
                ..Default::default()
            },
            good(vec![
                addr.to_vec(),
                vec![0xff, 0xff],
                other.to_vec(),
                addr.to_vec(),
            ]),
        ];
        for _ in 0..10 {
            peers.push(good(vec![]));
        }
        // A /p2p suffix naming another peer is dropped.
        let mut foreign = addr.clone();
        foreign.push(Protocol::P2p(PeerId::random()));
        peers.push(good(vec![foreign.to_vec()]));
        let m = proto::Message {
            r#type: MessageType::FindNode as i32,
            closer_peers: peers,
            ..Default::default()
        };
        let decoded = decode_response(&m.encode_to_vec(), MessageKind::FindNode, &l, now).unwrap();
        let Response::FindNode { closer } = decoded.message else {
            panic!()
        };
        assert_eq!(closer.len(), 3);
        assert_eq!(closer[0].addrs, vec![addr, other]);
        assert_eq!(closer[0].connection, ConnectionType::NotConnected);
        assert_eq!(decoded.dropped_peers, 13 - 3);
        assert!(decoded.dropped_addrs >= 2);
    }

    #[test]
    fn appended_closer_peers_decode_like_encoded_ones() {
        let now = Instant::now();
        let infos: Vec<PeerInfo> = (0..3)
            .map(|i| PeerInfo {
                peer: PeerId::random(),
                addrs: vec![format!("/ip4/1.2.3.4/tcp/{i}").parse().unwrap()],
                connection: if i == 0 {
                    ConnectionType::Connected
                } else {
                    ConnectionType::NotConnected
                },
            })
            .collect();
        let full = encode_response(
            &Response::FindNode {
                closer: infos.clone(),
            },
            now,
        );
        let mut appended = encode_response(&Response::FindNode { closer: vec![] }, now);
        append_closer_peers(
            &mut appended,
            infos.iter().map(|i| PeerRef {
                peer: &i.peer,
                addrs: &i.addrs,
                connection: i.connection,
            }),
        );
        assert_eq!(appended, full);
    }

    #[test]
    fn own_p2p_suffix_is_stripped() {
        let peer = PeerId::random();
        let mut addr: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        addr.push(Protocol::P2p(peer));
        assert_eq!(
            parse_addr(addr.to_vec(), &peer),
            Some("/ip4/1.2.3.4/tcp/1".parse().unwrap())
        );
    }

    #[test]
    fn record_ttl_crosses_the_wire() {
        let now = Instant::now();
        let mut r = Record::new(b"k".to_vec(), vec![]);
        r.expires = Some(now + Duration::from_secs(30));
        let p = record_to_proto(&r, now);
        assert_eq!(p.ttl, 30);
        r.expires = Some(now);
        assert_eq!(record_to_proto(&r, now + Duration::from_secs(5)).ttl, 1);
        r.expires = None;
        assert_eq!(record_to_proto(&r, now).ttl, 0);
    }
}
