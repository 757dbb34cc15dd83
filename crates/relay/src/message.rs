//! The hop and stop messages on the wire, sans-IO: typed messages that encode to protobuf
//! bodies and decode (validated) from them.
//!
//! A decoded message is checked once here: its type is known, the fields that type needs are
//! present and well formed (a valid peer id, a known status); after that no caller inspects
//! raw protobuf. Addresses that do not parse are dropped (a peer may list transports we do not
//! know), never an error.

use std::time::Duration;

use lp2p_core::{Multiaddr, PeerId};
use prost::Message;

use crate::proto;

/// Protocol id of the hop protocol (client to relay: reserve, connect).
pub const PROTOCOL_HOP: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// Protocol id of the stop protocol (relay to target: an incoming circuit).
pub const PROTOCOL_STOP: &str = "/libp2p/circuit/relay/0.2.0/stop";
/// Largest hop or stop message body we read or write. Why 4096: go-libp2p and rust-libp2p
/// cap these messages at 4 KiB; a reservation with a dozen addresses and a voucher is well
/// under 1 KiB, so anything larger is abuse.
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// Most addresses we keep from one message. Why 32: a relay has a handful of addresses
/// (one or two per transport and family); more only costs the receiver memory.
pub const MAX_ADDRS_PER_MESSAGE: usize = 32;

/// A status code of the relay protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok,
    /// The relay refused the reservation (policy).
    ReservationRefused,
    /// A reservation or circuit limit is reached.
    ResourceLimitExceeded,
    /// Not allowed (for example a request over a relayed connection).
    PermissionDenied,
    /// The relay could not reach the target, or the target refused.
    ConnectionFailed,
    /// The target has no reservation on this relay.
    NoReservation,
    /// The request did not decode.
    MalformedMessage,
    /// A message of the wrong type for this point of the exchange.
    UnexpectedMessage,
}

impl Status {
    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 100,
            Status::ReservationRefused => 200,
            Status::ResourceLimitExceeded => 201,
            Status::PermissionDenied => 202,
            Status::ConnectionFailed => 203,
            Status::NoReservation => 204,
            Status::MalformedMessage => 400,
            Status::UnexpectedMessage => 401,
        }
    }

    /// The status of a wire code, if it is one we know.
    pub fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            100 => Status::Ok,
            200 => Status::ReservationRefused,
            201 => Status::ResourceLimitExceeded,
            202 => Status::PermissionDenied,
            203 => Status::ConnectionFailed,
            204 => Status::NoReservation,
            400 => Status::MalformedMessage,
            401 => Status::UnexpectedMessage,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Status::Ok => "OK",
            Status::ReservationRefused => "RESERVATION_REFUSED",
            Status::ResourceLimitExceeded => "RESOURCE_LIMIT_EXCEEDED",
            Status::PermissionDenied => "PERMISSION_DENIED",
            Status::ConnectionFailed => "CONNECTION_FAILED",
            Status::NoReservation => "NO_RESERVATION",
            Status::MalformedMessage => "MALFORMED_MESSAGE",
            Status::UnexpectedMessage => "UNEXPECTED_MESSAGE",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// The limits of a relayed connection. `None` means unlimited (the wire's absent or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// How long the circuit may stay open.
    pub duration: Option<Duration>,
    /// Bytes the circuit may carry in each direction.
    pub data: Option<u64>,
}

impl Limit {
    fn to_pb(self) -> proto::Limit {
        proto::Limit {
            duration: self
                .duration
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            data: self.data,
        }
    }

    fn from_pb(pb: &proto::Limit) -> Limit {
        Limit {
            duration: pb
                .duration
                .filter(|d| *d != 0)
                .map(|d| Duration::from_secs(u64::from(d))),
            data: pb.data.filter(|d| *d != 0),
        }
    }

    /// Whether neither a duration nor a data limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.duration.is_none() && self.data.is_none()
    }
}

/// A reservation as the relay grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// When it ends, in Unix seconds (UTC).
    pub expire: u64,
    /// The relay's public addresses, each ending in `/p2p/<relay>`.
    pub addrs: Vec<Multiaddr>,
    /// The signed voucher (an encoded envelope), when the relay sent one.
    pub voucher: Option<Vec<u8>>,
}

/// A message of the hop protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopMessage {
    /// Asks the relay for a reservation.
    Reserve,
    /// Asks the relay for a circuit to `peer`.
    Connect {
        /// The target.
        peer: PeerId,
    },
    /// The relay's answer.
    Status {
        /// The outcome.
        status: Status,
        /// The reservation granted (answers to `Reserve`).
        reservation: Option<Reservation>,
        /// The limits of reservations' circuits or of this circuit.
        limit: Option<Limit>,
    },
}

/// A message of the stop protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopMessage {
    /// The relay announces a circuit from `peer`.
    Connect {
        /// The source of the circuit.
        peer: PeerId,
        /// The circuit's limits.
        limit: Option<Limit>,
    },
    /// The target's answer.
    Status {
        /// The outcome.
        status: Status,
    },
}

/// Why a message did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`MAX_MESSAGE_SIZE`].
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_SIZE}")]
    TooLarge(usize),
    /// Not a valid protobuf of this message.
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    /// A type code we do not know.
    #[error("unknown message type {0}")]
    UnknownType(i32),
    /// A field this message type needs is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A peer id that does not decode.
    #[error("invalid peer id")]
    InvalidPeerId,
    /// A status code we do not know.
    #[error("unknown status code {0}")]
    UnknownStatus(i32),
}

fn decode_pb<M: Message + Default>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    M::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

fn peer_from_pb(peer: Option<&proto::Peer>) -> Result<PeerId, DecodeError> {
    let peer = peer.ok_or(DecodeError::Missing("peer"))?;
    PeerId::from_bytes(&peer.id).map_err(|_| DecodeError::InvalidPeerId)
}

fn status_from_pb(status: Option<i32>) -> Result<Status, DecodeError> {
    let code = status.ok_or(DecodeError::Missing("status"))?;
    Status::from_code(code).ok_or(DecodeError::UnknownStatus(code))
}

fn addrs_from_pb(addrs: &[Vec<u8>]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
        .take(MAX_ADDRS_PER_MESSAGE)
        .collect()
}

fn peer_to_pb(peer: &PeerId) -> proto::Peer {
    proto::Peer {
        id: peer.to_bytes(),
        addrs: Vec::new(),
    }
}

impl HopMessage {
    /// The protobuf body (no length prefix).
    pub fn encode(&self) -> Vec<u8> {
        use proto::hop_message::Type;
        let pb = match self {
            HopMessage::Reserve => proto::HopMessage {
                r#type: Type::Reserve as i32,
                ..Default::default()
            },
            HopMessage::Connect { peer } => proto::HopMessage {
                r#type: Type::Connect as i32,
                peer: Some(peer_to_pb(peer)),
                ..Default::default()
            },
            HopMessage::Status {
                status,
                reservation,
                limit,
            } => proto::HopMessage {
                r#type: Type::Status as i32,
                reservation: reservation.as_ref().map(|r| proto::Reservation {
                    expire: r.expire,
                    addrs: r.addrs.iter().map(Multiaddr::to_vec).collect(),
                    voucher: r.voucher.clone(),
                }),
                limit: limit.map(Limit::to_pb),
                status: Some(status.code()),
                ..Default::default()
            },
        };
        pb.encode_to_vec()
    }

    /// Decodes and validates a protobuf body.
    pub fn decode(bytes: &[u8]) -> Result<HopMessage, DecodeError> {
        use proto::hop_message::Type;
        let pb: proto::HopMessage = decode_pb(bytes)?;
        match Type::try_from(pb.r#type) {
            Ok(Type::Reserve) => Ok(HopMessage::Reserve),
            Ok(Type::Connect) => Ok(HopMessage::Connect {
                peer: peer_from_pb(pb.peer.as_ref())?,
            }),
            Ok(Type::Status) => Ok(HopMessage::Status {
                status: status_from_pb(pb.status)?,
                reservation: pb.reservation.map(|r| Reservation {
                    expire: r.expire,
                    addrs: addrs_from_pb(&r.addrs),
                    voucher: r.voucher,
                }),
                limit: pb.limit.as_ref().map(Limit::from_pb),
            }),
            Err(_) => Err(DecodeError::UnknownType(pb.r#type)),
        }
    }
}

impl StopMessage {
    /// The protobuf body (no length prefix).
    pub fn encode(&self) -> Vec<u8> {
        use proto::stop_message::Type;
        let pb = match self {
            StopMessage::Connect { peer, limit } => proto::StopMessage {
                r#type: Type::Connect as i32,
                peer: Some(peer_to_pb(peer)),
                limit: limit.map(Limit::to_pb),
                status: None,
            },
            StopMessage::Status { status } => proto::StopMessage {
                r#type: Type::Status as i32,
                peer: None,
                limit: None,
                status: Some(status.code()),
            },
        };
        pb.encode_to_vec()
    }

    /// Decodes and validates a protobuf body.
    pub fn decode(bytes: &[u8]) -> Result<StopMessage, DecodeError> {
        use proto::stop_message::Type;
        let pb: proto::StopMessage = decode_pb(bytes)?;
        match Type::try_from(pb.r#type) {
            Ok(Type::Connect) => Ok(StopMessage::Connect {
                peer: peer_from_pb(pb.peer.as_ref())?,
                limit: pb.limit.as_ref().map(Limit::from_pb),
            }),
            Ok(Type::Status) => Ok(StopMessage::Status {
                status: status_from_pb(pb.status)?,
            }),
            Err(_) => Err(DecodeError::UnknownType(pb.r#type)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    #[test]
    fn reserve_encodes_its_zero_type() {
        // `type = RESERVE` is 0 and required: it must be on the wire (08 00).
        assert_eq!(HopMessage::Reserve.encode(), vec![0x08, 0x00]);
        assert_eq!(HopMessage::decode(&[0x08, 0x00]), Ok(HopMessage::Reserve));
    }

    #[test]
    fn stop_connect_encodes_its_zero_type() {
        let p = peer();
        let bytes = StopMessage::Connect {
            peer: p,
            limit: None,
        }
        .encode();
        assert_eq!(&bytes[..2], &[0x08, 0x00]);
        assert_eq!(
            StopMessage::decode(&bytes),
            Ok(StopMessage::Connect {
                peer: p,
                limit: None
            })
        );
    }

    #[test]
    fn round_trips() {
        let p = peer();
        let msgs = vec![
            HopMessage::Connect { peer: p },
            HopMessage::Status {
                status: Status::Ok,
                reservation: Some(Reservation {
                    expire: 1_700_000_000,
                    addrs: vec![format!("/ip4/192.0.2.1/tcp/4001/p2p/{p}").parse().unwrap()],
                    voucher: Some(vec![1, 2, 3]),
                }),
                limit: Some(Limit {
                    duration: Some(Duration::from_secs(120)),
                    data: Some(1 << 17),
                }),
            },
            HopMessage::Status {
                status: Status::NoReservation,
                reservation: None,
                limit: None,
            },
        ];
        for m in msgs {
            assert_eq!(HopMessage::decode(&m.encode()), Ok(m));
        }
        let s = StopMessage::Status {
            status: Status::ConnectionFailed,
        };
        assert_eq!(StopMessage::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn zero_limits_mean_unlimited() {
        let pb = proto::HopMessage {
            r#type: proto::hop_message::Type::Status as i32,
            limit: Some(proto::Limit {
                duration: Some(0),
                data: Some(0),
            }),
            status: Some(100),
            ..Default::default()
        };
        let HopMessage::Status { limit, .. } = HopMessage::decode(&pb.encode_to_vec()).unwrap()
        else {
            panic!("not a status");
        };
        assert!(limit.unwrap().is_unlimited());
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(matches!(
            HopMessage::decode(&[0xff, 0xff, 0xff]),
            Err(DecodeError::Protobuf(_))
        ));
        assert_eq!(
            HopMessage::decode(&[0x08, 0x07]),
            Err(DecodeError::UnknownType(7))
        );
        // CONNECT without a peer, and with a garbage peer id.
        assert_eq!(
            HopMessage::decode(&[0x08, 0x01]),
            Err(DecodeError::Missing("peer"))
        );
        assert_eq!(
            HopMessage::decode(&[0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 0x00]),
            Err(DecodeError::InvalidPeerId)
        );
        // STATUS without a status, and with an unknown one.
        assert_eq!(
            HopMessage::decode(&[0x08, 0x02]),
            Err(DecodeError::Missing("status"))
        );
        assert_eq!(
            StopMessage::decode(&[0x08, 0x01, 0x20, 0x05]),
            Err(DecodeError::UnknownStatus(5))
        );
        assert_eq!(
            HopMessage::decode(&vec![0u8; MAX_MESSAGE_SIZE + 1]),
            Err(DecodeError::TooLarge(MAX_MESSAGE_SIZE + 1))
        );
    }

    #[test]
    fn truncated_messages_are_errors() {
        let p = peer();
        let full = HopMessage::Status {
            status: Status::Ok,
            reservation: Some(Reservation {
                expire: 1_700_000_000,
                addrs: vec![format!("/ip4/192.0.2.1/tcp/4001/p2p/{p}").parse().unwrap()],
                voucher: Some(vec![7; 100]),
            }),
            limit: Some(Limit {
                duration: Some(Duration::from_secs(120)),
                data: Some(1 << 17),
            }),
        }
        .encode();
        // Fields go out in tag order and the status (tag 5) is last: every strict prefix
        // is cut inside a field or lacks the status (the empty prefix is a RESERVE: see
        // `unknown_types_are_errors`).
        for n in 1..full.len() {
            assert!(
                HopMessage::decode(&full[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        let stop = StopMessage::Connect {
            peer: p,
            limit: None,
        }
        .encode();
        for n in 0..stop.len() {
            assert!(
                StopMessage::decode(&stop[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn unknown_types_are_errors() {
        assert_eq!(
            StopMessage::decode(&[0x08, 0x02]),
            Err(DecodeError::UnknownType(2))
        );
        assert_eq!(
            HopMessage::decode(&[0x08, 0x03]),
            Err(DecodeError::UnknownType(3))
        );
        // A negative type (a ten-byte varint).
        let mut neg = vec![0x08];
        neg.extend([0xff; 9]);
        neg.push(0x01);
        assert_eq!(HopMessage::decode(&neg), Err(DecodeError::UnknownType(-1)));
        // A message without a type at all: proto2 `required`, prost reads it as 0.
        // HopMessage type 0 is RESERVE, so an empty hop message is a RESERVE (as in
        // rust-libp2p); an empty stop message is a CONNECT without a peer.
        assert_eq!(HopMessage::decode(&[]), Ok(HopMessage::Reserve));
        assert_eq!(StopMessage::decode(&[]), Err(DecodeError::Missing("peer")));
    }

    #[test]
    fn bad_addresses_are_dropped_and_capped() {
        let good: Multiaddr = "/ip4/192.0.2.1/tcp/1".parse().unwrap();
        let mut addrs = vec![vec![0xff, 0xff]];
        addrs.extend(std::iter::repeat_n(
            good.to_vec(),
            MAX_ADDRS_PER_MESSAGE + 5,
        ));
        let pb = proto::HopMessage {
            r#type: proto::hop_message::Type::Status as i32,
            reservation: Some(proto::Reservation {
                expire: 1,
                addrs,
                voucher: None,
            }),
            status: Some(100),
            ..Default::default()
        };
        let HopMessage::Status { reservation, .. } =
            HopMessage::decode(&pb.encode_to_vec()).unwrap()
        else {
            panic!("not a status");
        };
        assert_eq!(reservation.unwrap().addrs.len(), MAX_ADDRS_PER_MESSAGE);
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = HopMessage::decode(&bytes);
            let _ = StopMessage::decode(&bytes);
        }
    }
}
