//! The DCUtR message on the wire, sans-IO: `CONNECT` with the sender's addresses, and `SYNC`.

use lp2p_core::Multiaddr;
use prost::Message;

use crate::DcutrError;
use crate::proto;

/// Protocol id of the hole-punching exchange, run over the relayed connection.
pub const PROTOCOL: &str = "/libp2p/dcutr";
/// Largest message body read. Why 4 KiB: the spec says implementations SHOULD refuse larger
/// messages; a dozen addresses take a few hundred bytes.
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// Most addresses kept from (or sent in) one `CONNECT`. Why 16: a peer has a few observed
/// addresses per transport and family; each one kept is a dial we make.
pub const MAX_ADDRS: usize = 16;

/// A DCUtR message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolePunch {
    /// The sender's (observed, possibly predicted) addresses. An address that does not
    /// parse is dropped: the receiver dials the others.
    Connect(Vec<Multiaddr>),
    /// Dial now (sent by the peer that opened the stream, after the `CONNECT` exchange).
    Sync,
}

const CONNECT: i32 = 100;
const SYNC: i32 = 300;

impl HolePunch {
    /// The protobuf body (a `CONNECT` carries at most [`MAX_ADDRS`] addresses).
    pub fn encode(&self) -> Vec<u8> {
        let (r#type, addrs) = match self {
            HolePunch::Connect(addrs) => (
                CONNECT,
                addrs
                    .iter()
                    .take(MAX_ADDRS)
                    .map(Multiaddr::to_vec)
                    .collect(),
            ),
            HolePunch::Sync => (SYNC, Vec::new()),
        };
        proto::HolePunch {
            r#type: Some(r#type),
            obs_addrs: addrs,
        }
        .encode_to_vec()
    }

    /// Decodes a body; an unknown type is an error. Of a `CONNECT`'s addresses, the first
    /// [`MAX_ADDRS`] that parse are kept.
    pub fn decode(body: &[u8]) -> Result<HolePunch, DcutrError> {
        let msg = proto::HolePunch::decode(body).map_err(|e| DcutrError::Malformed {
            peer: None,
            what: format!("not a HolePunch protobuf: {e}"),
        })?;
        match msg.r#type.ok_or_else(|| DcutrError::Malformed {
            peer: None,
            what: "a HolePunch without its type".into(),
        })? {
            CONNECT => Ok(HolePunch::Connect(
                msg.obs_addrs
                    .into_iter()
                    .filter_map(|bytes| Multiaddr::try_from(bytes).ok())
                    .take(MAX_ADDRS)
                    .collect(),
            )),
            SYNC => Ok(HolePunch::Sync),
            other => Err(DcutrError::Malformed {
                peer: None,
                what: format!("unknown HolePunch type {other}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let addrs = vec![
            "/ip4/1.2.3.4/tcp/4001".parse().unwrap(),
            "/ip6/2001:db8::1/udp/4001/quic-v1".parse().unwrap(),
        ];
        for msg in [
            HolePunch::Connect(addrs),
            HolePunch::Connect(vec![]),
            HolePunch::Sync,
        ] {
            assert_eq!(HolePunch::decode(&msg.encode()).unwrap(), msg);
        }
    }

    #[test]
    fn the_spec_encoding_of_sync() {
        // Field 1 (varint) = 300.
        assert_eq!(HolePunch::Sync.encode(), vec![0x08, 0xac, 0x02]);
    }

    #[test]
    fn bad_addresses_are_dropped_and_the_rest_capped() {
        let mut obs_addrs = vec![vec![0xff, 0xfe]];
        obs_addrs.extend((0..40).map(|p| {
            format!("/ip4/1.2.3.4/tcp/{p}")
                .parse::<Multiaddr>()
                .unwrap()
                .to_vec()
        }));
        let body = proto::HolePunch {
            r#type: Some(CONNECT),
            obs_addrs,
        }
        .encode_to_vec();
        let HolePunch::Connect(addrs) = HolePunch::decode(&body).unwrap() else {
            panic!("not a CONNECT");
        };
        assert_eq!(addrs.len(), MAX_ADDRS);
        assert_eq!(addrs[0], "/ip4/1.2.3.4/tcp/0".parse::<Multiaddr>().unwrap());
    }

    #[test]
    fn unknown_types_and_missing_fields_are_errors() {
        let body = proto::HolePunch {
            r#type: Some(200),
            obs_addrs: vec![],
        }
        .encode_to_vec();
        assert!(HolePunch::decode(&body).is_err());
        assert!(
            HolePunch::decode(&[]).is_err(),
            "the required type is missing"
        );
        assert!(HolePunch::decode(&[0x08]).is_err(), "truncated");
    }

    proptest! {
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = HolePunch::decode(&body);
        }
    }
}
