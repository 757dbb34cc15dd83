//! The AutoNAT v1 messages on the wire, sans-IO: typed messages that encode to protobuf
//! bodies and decode (validated) from them.
//!
//! Both directions are one `Message` (proto2) with a type and the matching body. A decoded
//! message is checked once here: its type is the one expected, a request names a valid
//! peer id, a response's status is one we understand. Request addresses that do not parse
//! are dropped (a v1 server answers with the address it dialed, not an index).

use lp2p_core::{Multiaddr, PeerId};
use prost::Message;

use crate::AutonatError;
use crate::v1::proto;
pub use crate::v1::status::V1Status;

/// Protocol id of AutoNAT v1.
pub const PROTOCOL_V1: &str = "/libp2p/autonat/1.0.0";

/// Largest message body read on a v1 stream. Why 4 KiB: go-libp2p's limit; a request with a
/// peer id and a dozen addresses is a few hundred bytes. (rust-libp2p reads at most 1 KiB,
/// so our client sends one address per request.)
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// Most addresses a server looks at in one request. Why 32: a node has a few addresses per
/// transport and family; a longer list only makes the server parse more.
pub const MAX_ADDRS_PER_REQUEST: usize = 32;

/// A client's request: dial `peer` on these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// The peer to dial back (the spec's `PeerInfo.id`; must be the sender).
    pub peer: PeerId,
    /// The addresses to try; unparsable ones are dropped by the decoder.
    pub addrs: Vec<Multiaddr>,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResponse {
    /// The verdict.
    pub status: V1Status,
    /// A human-readable reason, if the server sent one.
    pub text: Option<String>,
    /// The address dialed successfully (with [`V1Status::Ok`]; the spec says SHOULD).
    pub addr: Option<Multiaddr>,
}

impl DialResponse {
    /// A response without an address (every status but `Ok`).
    pub fn error(status: V1Status, text: impl Into<String>) -> DialResponse {
        DialResponse {
            status,
            text: Some(text.into()),
            addr: None,
        }
    }
}

fn malformed(what: impl Into<String>) -> AutonatError {
    AutonatError::Malformed {
        peer: None,
        what: what.into(),
    }
}

fn decode_message(
    body: &[u8],
    expected: proto::message::MessageType,
) -> Result<proto::Message, AutonatError> {
    let msg = proto::Message::decode(body)
        .map_err(|e| malformed(format!("not an AutoNAT v1 Message protobuf: {e}")))?;
    if msg.r#type != Some(expected as i32) {
        return Err(malformed(format!(
            "an AutoNAT v1 message of type {:?} where {expected:?} belongs",
            msg.r#type
        )));
    }
    Ok(msg)
}

impl DialRequest {
    /// The protobuf body of this request.
    pub fn encode(&self) -> Vec<u8> {
        proto::Message {
            r#type: Some(proto::message::MessageType::Dial as i32),
            dial: Some(proto::message::Dial {
                peer: Some(proto::message::PeerInfo {
                    id: Some(self.peer.to_bytes()),
                    addrs: self.addrs.iter().map(Multiaddr::to_vec).collect(),
                }),
            }),
            dial_response: None,
        }
        .encode_to_vec()
    }

    /// Decodes a request: a `DIAL` message with a valid peer id. Addresses that do not
    /// parse are dropped; beyond [`MAX_ADDRS_PER_REQUEST`] they are ignored.
    pub fn decode(body: &[u8]) -> Result<DialRequest, AutonatError> {
        let msg = decode_message(body, proto::message::MessageType::Dial)?;
        let info = msg
            .dial
            .and_then(|d| d.peer)
            .ok_or_else(|| malformed("a DIAL message without peer info"))?;
        let id = info
            .id
            .ok_or_else(|| malformed("a DIAL message without a peer id"))?;
        let peer = PeerId::from_bytes(&id)
            .map_err(|e| malformed(format!("a DIAL message with an invalid peer id: {e}")))?;
        Ok(DialRequest {
            peer,
            addrs: info
                .addrs
                .into_iter()
                .take(MAX_ADDRS_PER_REQUEST)
                .filter_map(|bytes| Multiaddr::try_from(bytes).ok())
                .collect(),
        })
    }
}

impl DialResponse {
    /// The protobuf body of this response.
    pub fn encode(&self) -> Vec<u8> {
        proto::Message {
            r#type: Some(proto::message::MessageType::DialResponse as i32),
            dial: None,
            dial_response: Some(proto::message::DialResponse {
                status: Some(self.status.code()),
                status_text: self.text.clone(),
                addr: self.addr.as_ref().map(Multiaddr::to_vec),
            }),
        }
        .encode_to_vec()
    }

    /// Decodes a response: a `DIAL_RESPONSE` message with a known status. An `OK` whose
    /// address does not parse is an error; one without an address decodes (the spec's
    /// SHOULD), and the client decides what it means.
    pub fn decode(body: &[u8]) -> Result<DialResponse, AutonatError> {
        let msg = decode_message(body, proto::message::MessageType::DialResponse)?;
        let r = msg
            .dial_response
            .ok_or_else(|| malformed("a DIAL_RESPONSE message without a response"))?;
        let code = r
            .status
            .ok_or_else(|| malformed("a DIAL_RESPONSE without a status"))?;
        let status = V1Status::from_code(code)
            .ok_or_else(|| malformed(format!("unknown AutoNAT v1 status {code}")))?;
        let addr = match r.addr {
            Some(bytes) if status == V1Status::Ok => Some(
                Multiaddr::try_from(bytes)
                    .map_err(|e| malformed(format!("an OK with an unparsable address: {e}")))?,
            ),
            _ => None,
        };
        Ok(DialResponse {
            status,
            text: r.status_text,
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_request_round_trips() {
        let req = DialRequest {
            peer: PeerId::random(),
            addrs: vec![
                addr("/ip4/8.8.8.8/tcp/4001"),
                addr("/ip6/::1/udp/1/quic-v1"),
            ],
        };
        assert_eq!(DialRequest::decode(&req.encode()).unwrap(), req);
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            DialResponse {
                status: V1Status::Ok,
                text: None,
                addr: Some(addr("/ip4/8.8.8.8/tcp/4001")),
            },
            DialResponse::error(V1Status::DialError, "dial failed"),
            DialResponse::error(V1Status::DialRefused, "no address"),
            DialResponse::error(V1Status::BadRequest, "peer id"),
            DialResponse::error(V1Status::InternalError, "oops"),
        ] {
            assert_eq!(DialResponse::decode(&r.encode()).unwrap(), r);
        }
    }

    /// The bytes go-libp2p and rust-libp2p send: type DIAL, dial { peer { id, addrs } }.
    #[test]
    fn a_request_matches_the_spec_layout() {
        let peer = PeerId::random();
        let a = addr("/ip4/1.2.3.4/tcp/1");
        let body = DialRequest {
            peer,
            addrs: vec![a.clone()],
        }
        .encode();
        let id = peer.to_bytes();
        let a = a.to_vec();
        let info_len = 2 + id.len() + 2 + a.len();
        let mut expected = vec![0x08, 0x00, 0x12, u8::try_from(info_len + 2).unwrap(), 0x0a];
        expected.push(u8::try_from(info_len).unwrap());
        expected.extend([0x0a, u8::try_from(id.len()).unwrap()]);
        expected.extend(&id);
        expected.extend([0x12, u8::try_from(a.len()).unwrap()]);
        expected.extend(&a);
        assert_eq!(body, expected);
    }

    #[test]
    fn unparsable_addresses_are_dropped_and_the_list_is_capped() {
        let peer = PeerId::random();
        let mut addrs = vec![vec![0xff, 0xff, 0xff]];
        addrs.extend((0..100).map(|i| addr(&format!("/ip4/8.8.8.8/tcp/{i}")).to_vec()));
        let body = proto::Message {
            r#type: Some(0),
            dial: Some(proto::message::Dial {
                peer: Some(proto::message::PeerInfo {
                    id: Some(peer.to_bytes()),
                    addrs,
                }),
            }),
            dial_response: None,
        }
        .encode_to_vec();
        let req = DialRequest::decode(&body).unwrap();
        assert_eq!(req.addrs.len(), MAX_ADDRS_PER_REQUEST - 1);
        assert_eq!(req.addrs[0], addr("/ip4/8.8.8.8/tcp/0"));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let peer = PeerId::random();
        let cases: Vec<(&str, proto::Message)> = vec![
            ("no type", proto::Message::default()),
            (
                "response type",
                proto::Message {
                    r#type: Some(1),
                    ..proto::Message::default()
                },
            ),
            (
                "no peer info",
                proto::Message {
                    r#type: Some(0),
                    dial: Some(proto::message::Dial { peer: None }),
                    dial_response: None,
                },
            ),
            (
                "no id",
                proto::Message {
                    r#type: Some(0),
                    dial: Some(proto::message::Dial {
                        peer: Some(proto::message::PeerInfo {
                            id: None,
                            addrs: vec![],
                        }),
                    }),
                    dial_response: None,
                },
            ),
            (
                "bad id",
                proto::Message {
                    r#type: Some(0),
                    dial: Some(proto::message::Dial {
                        peer: Some(proto::message::PeerInfo {
                            id: Some(vec![1, 2, 3]),
                            addrs: vec![],
                        }),
                    }),
                    dial_response: None,
                },
            ),
        ];
        for (what, msg) in cases {
            let err = DialRequest::decode(&msg.encode_to_vec()).unwrap_err();
            assert!(
                matches!(err, AutonatError::Malformed { .. }),
                "{what}: {err}"
            );
        }
        // A request is not a response, and a response needs a known status.
        let req = DialRequest {
            peer,
            addrs: vec![],
        }
        .encode();
        assert!(DialResponse::decode(&req).is_err());
        for status in [None, Some(7)] {
            let body = proto::Message {
                r#type: Some(1),
                dial: None,
                dial_response: Some(proto::message::DialResponse {
                    status,
                    status_text: None,
                    addr: None,
                }),
            }
            .encode_to_vec();
            assert!(DialResponse::decode(&body).is_err(), "{status:?}");
        }
        // An OK with an address that does not parse.
        let body = proto::Message {
            r#type: Some(1),
            dial: None,
            dial_response: Some(proto::message::DialResponse {
                status: Some(0),
                status_text: None,
                addr: Some(vec![0xff]),
            }),
        }
        .encode_to_vec();
        assert!(DialResponse::decode(&body).is_err());
        // Truncated and garbage bytes.
        let full = DialRequest {
            peer,
            addrs: vec![addr("/ip4/8.8.8.8/tcp/1")],
        }
        .encode();
        for cut in 1..full.len() {
            let _ = DialRequest::decode(&full[..cut]);
        }
        assert!(DialRequest::decode(&full[..full.len() - 1]).is_err());
        assert!(DialRequest::decode(&[0xff; 8]).is_err());
    }

    #[test]
    fn an_ok_without_an_address_decodes_and_errors_drop_theirs() {
        let body = proto::Message {
            r#type: Some(1),
            dial: None,
            dial_response: Some(proto::message::DialResponse {
                status: Some(100),
                status_text: Some("x".into()),
                addr: Some(addr("/ip4/8.8.8.8/tcp/1").to_vec()),
            }),
        }
        .encode_to_vec();
        let r = DialResponse::decode(&body).unwrap();
        assert_eq!((r.status, r.addr), (V1Status::DialError, None));
        let ok = DialResponse {
            status: V1Status::Ok,
            text: None,
            addr: None,
        };
        assert_eq!(DialResponse::decode(&ok.encode()).unwrap(), ok);
    }

    #[test]
    fn an_oversized_message_is_refused_by_the_framing() {
        let req = DialRequest {
            peer: PeerId::random(),
            addrs: (0..200)
                .map(|i| addr(&format!("/ip6/2001:db8::{i:x}/tcp/4001")))
                .collect(),
        };
        let body = req.encode();
        assert!(body.len() > MAX_MESSAGE_SIZE);
        let mut framed = Vec::new();
        futures::executor::block_on(async {
            lp2p_core::framing::write_frame(&mut framed, &body)
                .await
                .unwrap();
            let mut reader = futures::io::Cursor::new(framed);
            assert!(
                lp2p_core::framing::read_frame(&mut reader, MAX_MESSAGE_SIZE)
                    .await
                    .is_err()
            );
        });
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = DialRequest::decode(&bytes);
            if let Ok(r) = DialResponse::decode(&bytes) {
                prop_assert_eq!(DialResponse::decode(&r.encode()).unwrap(), r);
            }
        }
    }
}
