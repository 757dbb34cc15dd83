//! The AutoNAT v2 messages on the wire, sans-IO: typed messages that encode to protobuf
//! bodies and decode (validated) from them.
//!
//! A decoded message is checked once here: its type is known and its status codes are ones
//! we understand (the spec says to discard responses with unknown codes). Addresses in a
//! dial request that do not parse stay in the list as `None`, because the server answers
//! with an index into the list as sent.

use lp2p_core::Multiaddr;
use prost::Message;

use crate::AutonatError;
use crate::proto;
pub use crate::status::{DialStatus, ResponseStatus};

/// Protocol id of the stream a client asks a server to dial it on.
pub const PROTOCOL_DIAL_REQUEST: &str = "/libp2p/autonat/2/dial-request";
/// Protocol id of the stream the server opens on the dial-back connection to hand over the
/// nonce.
pub const PROTOCOL_DIAL_BACK: &str = "/libp2p/autonat/2/dial-back";

/// Largest message body read on a dial-request stream. Why 8 KiB: the biggest legitimate
/// message is a dial-data chunk (4,096 bytes of data plus 6 of framing); a request with a
/// few dozen addresses fits too. rust-libp2p caps at 4,104 bytes, so our client sends at
/// most [`MAX_DATA_CHUNK`] data bytes and a handful of addresses.
pub const MAX_MESSAGE_SIZE: usize = 8 * 1024;
/// Largest message body read on a dial-back stream. Why 16: a `DialBack` is 9 bytes (one
/// fixed64) and a `DialBackResponse` at most 2.
pub const MAX_DIAL_BACK_SIZE: usize = 16;
/// Largest `data` field of one `DialDataResponse` (the spec's limit).
pub const MAX_DATA_CHUNK: usize = 4096;
/// Most addresses a server looks at in one request. Why 32: a node has a few addresses per
/// transport and family; a longer list only makes the server parse more.
pub const MAX_ADDRS_PER_REQUEST: usize = 32;

/// A message from client to server on a dial-request stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Dial one of these addresses (in priority order) and hand over `nonce`. An address
    /// that did not parse is `None`, so indices stay those of the wire list.
    Dial {
        /// The addresses, highest priority first.
        addrs: Vec<Option<Multiaddr>>,
        /// The nonce the dial back must carry.
        nonce: u64,
    },
    /// Bytes paid towards a dial to another IP (only their count matters).
    Data {
        /// Length of the `data` field.
        len: usize,
    },
}

/// A message from server to client on a dial-request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Pay `num_bytes` before the address at `addr_idx` is dialed.
    DialData {
        /// Index of the address the server selected.
        addr_idx: u32,
        /// How many data bytes to send.
        num_bytes: u64,
    },
    /// The outcome of the request.
    Dial(DialResponse),
}

/// The server's final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialResponse {
    /// The request's status.
    pub status: ResponseStatus,
    /// Index of the address dialed (meaningful with [`ResponseStatus::Ok`]).
    pub addr_idx: u32,
    /// How the dial went (meaningful with [`ResponseStatus::Ok`]).
    pub dial_status: DialStatus,
}

impl DialResponse {
    /// A response without a dial (`Rejected`, `Refused`, `InternalError`).
    pub fn without_dial(status: ResponseStatus) -> DialResponse {
        DialResponse {
            status,
            addr_idx: 0,
            dial_status: DialStatus::Unused,
        }
    }
}

fn malformed(what: impl Into<String>) -> AutonatError {
    AutonatError::Malformed {
        peer: None,
        what: what.into(),
    }
}

impl Request {
    /// The protobuf body of a dial request.
    pub fn encode_dial(addrs: &[Multiaddr], nonce: u64) -> Vec<u8> {
        proto::Message {
            msg: Some(proto::message::Msg::DialRequest(proto::DialRequest {
                addrs: addrs.iter().map(Multiaddr::to_vec).collect(),
                nonce,
            })),
        }
        .encode_to_vec()
    }

    /// The protobuf body of one dial-data message carrying `len` zero bytes (at most
    /// [`MAX_DATA_CHUNK`]; longer is cut to it).
    pub fn encode_data(len: usize) -> Vec<u8> {
        proto::Message {
            msg: Some(proto::message::Msg::DialDataResponse(
                proto::DialDataResponse {
                    data: vec![0; len.min(MAX_DATA_CHUNK)],
                },
            )),
        }
        .encode_to_vec()
    }

    /// Decodes a client message. A dial request with more than [`MAX_ADDRS_PER_REQUEST`]
    /// addresses keeps only the first ones (the server picks the first it can dial anyway).
    pub fn decode(body: &[u8]) -> Result<Request, AutonatError> {
        let msg = proto::Message::decode(body)
            .map_err(|e| malformed(format!("not a Message protobuf: {e}")))?;
        match msg.msg {
            Some(proto::message::Msg::DialRequest(req)) => Ok(Request::Dial {
                addrs: req
                    .addrs
                    .into_iter()
                    .take(MAX_ADDRS_PER_REQUEST)
                    .map(|bytes| Multiaddr::try_from(bytes).ok())
                    .collect(),
                nonce: req.nonce,
            }),
            Some(proto::message::Msg::DialDataResponse(data)) => Ok(Request::Data {
                len: data.data.len(),
            }),
            Some(_) => Err(malformed("a server message where a client message belongs")),
            None => Err(malformed("a Message without a message")),
        }
    }
}

impl Response {
    /// The protobuf body of this response.
    pub fn encode(&self) -> Vec<u8> {
        let msg = match *self {
            Response::DialData {
                addr_idx,
                num_bytes,
            } => proto::message::Msg::DialDataRequest(proto::DialDataRequest {
                addr_idx,
                num_bytes,
            }),
            Response::Dial(r) => proto::message::Msg::DialResponse(proto::DialResponse {
                status: r.status.code(),
                addr_idx: r.addr_idx,
                dial_status: r.dial_status.code(),
            }),
        };
        proto::Message { msg: Some(msg) }.encode_to_vec()
    }

    /// Decodes a server message; unknown status codes are an error (the spec says to
    /// discard such responses).
    pub fn decode(body: &[u8]) -> Result<Response, AutonatError> {
        let msg = proto::Message::decode(body)
            .map_err(|e| malformed(format!("not a Message protobuf: {e}")))?;
        match msg.msg {
            Some(proto::message::Msg::DialDataRequest(req)) => Ok(Response::DialData {
                addr_idx: req.addr_idx,
                num_bytes: req.num_bytes,
            }),
            Some(proto::message::Msg::DialResponse(r)) => Ok(Response::Dial(DialResponse {
                status: ResponseStatus::from_code(r.status)
                    .ok_or_else(|| malformed(format!("unknown response status {}", r.status)))?,
                addr_idx: r.addr_idx,
                dial_status: DialStatus::from_code(r.dial_status)
                    .ok_or_else(|| malformed(format!("unknown dial status {}", r.dial_status)))?,
            })),
            Some(_) => Err(malformed("a client message where a server message belongs")),
            None => Err(malformed("a Message without a message")),
        }
    }
}

/// The body of a `DialBack` carrying `nonce`.
pub fn encode_dial_back(nonce: u64) -> Vec<u8> {
    proto::DialBack { nonce }.encode_to_vec()
}

/// The nonce of a `DialBack` body.
pub fn decode_dial_back(body: &[u8]) -> Result<u64, AutonatError> {
    proto::DialBack::decode(body)
        .map(|m| m.nonce)
        .map_err(|e| malformed(format!("not a DialBack protobuf: {e}")))
}

/// The body of a `DialBackResponse` with status OK (the only status there is).
pub fn encode_dial_back_response() -> Vec<u8> {
    proto::DialBackResponse {
        status: proto::dial_back_response::DialBackStatus::Ok as i32,
    }
    .encode_to_vec()
}

/// Checks a `DialBackResponse` body: it must decode and say OK.
pub fn decode_dial_back_response(body: &[u8]) -> Result<(), AutonatError> {
    let msg = proto::DialBackResponse::decode(body)
        .map_err(|e| malformed(format!("not a DialBackResponse protobuf: {e}")))?;
    if msg.status == proto::dial_back_response::DialBackStatus::Ok as i32 {
        Ok(())
    } else {
        Err(malformed(format!("dial-back status {}", msg.status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn dial_request_round_trip() {
        let addrs = vec![
            addr("/ip4/1.2.3.4/tcp/4001"),
            addr("/ip6/2001:db8::1/udp/4001/quic-v1"),
        ];
        let body = Request::encode_dial(&addrs, 0xdead_beef_0123_4567);
        assert_eq!(
            Request::decode(&body).unwrap(),
            Request::Dial {
                addrs: addrs.into_iter().map(Some).collect(),
                nonce: 0xdead_beef_0123_4567,
            }
        );
    }

    #[test]
    fn unparsable_addresses_keep_their_index() {
        let body = proto::Message {
            msg: Some(proto::message::Msg::DialRequest(proto::DialRequest {
                addrs: vec![vec![0xff, 0xff, 0xff], addr("/ip4/1.2.3.4/tcp/1").to_vec()],
                nonce: 7,
            })),
        }
        .encode_to_vec();
        let Request::Dial { addrs, nonce } = Request::decode(&body).unwrap() else {
            panic!("not a dial request");
        };
        assert_eq!(nonce, 7);
        assert_eq!(addrs, vec![None, Some(addr("/ip4/1.2.3.4/tcp/1"))]);
    }

    #[test]
    fn too_many_addresses_are_cut() {
        let addrs: Vec<Multiaddr> = (0..100)
            .map(|p| addr(&format!("/ip4/1.2.3.4/tcp/{p}")))
            .collect();
        let Request::Dial { addrs: got, .. } =
            Request::decode(&Request::encode_dial(&addrs, 1)).unwrap()
        else {
            panic!("not a dial request");
        };
        assert_eq!(got.len(), MAX_ADDRS_PER_REQUEST);
    }

    #[test]
    fn a_full_data_chunk_fits_rust_libp2ps_cap() {
        let body = Request::encode_data(100_000);
        assert!(body.len() <= 4104, "{}", body.len());
        assert_eq!(
            Request::decode(&body).unwrap(),
            Request::Data {
                len: MAX_DATA_CHUNK
            }
        );
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::DialData {
                addr_idx: 2,
                num_bytes: 42_000,
            },
            Response::Dial(DialResponse {
                status: ResponseStatus::Ok,
                addr_idx: 1,
                dial_status: DialStatus::DialError,
            }),
            Response::Dial(DialResponse::without_dial(ResponseStatus::RequestRejected)),
        ] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn unknown_status_codes_are_discarded() {
        let body = proto::Message {
            msg: Some(proto::message::Msg::DialResponse(proto::DialResponse {
                status: 7,
                addr_idx: 0,
                dial_status: 200,
            })),
        }
        .encode_to_vec();
        assert!(Response::decode(&body).is_err());
        let body = proto::Message {
            msg: Some(proto::message::Msg::DialResponse(proto::DialResponse {
                status: 200,
                addr_idx: 0,
                dial_status: 300,
            })),
        }
        .encode_to_vec();
        assert!(Response::decode(&body).is_err());
    }

    #[test]
    fn messages_of_the_other_side_are_refused() {
        let request = Request::encode_dial(&[], 1);
        assert!(Response::decode(&request).is_err());
        let response = Response::DialData {
            addr_idx: 0,
            num_bytes: 1,
        }
        .encode();
        assert!(Request::decode(&response).is_err());
        assert!(Request::decode(&[]).is_err(), "an empty Message");
        assert!(Request::decode(&[0x0a, 0x05, 0x01]).is_err(), "truncated");
    }

    #[test]
    fn dial_back_round_trip() {
        for nonce in [0, 1, u64::MAX] {
            let body = encode_dial_back(nonce);
            assert!(body.len() <= MAX_DIAL_BACK_SIZE);
            assert_eq!(decode_dial_back(&body).unwrap(), nonce);
        }
        decode_dial_back_response(&encode_dial_back_response()).unwrap();
        let bad = proto::DialBackResponse { status: 3 }.encode_to_vec();
        assert!(decode_dial_back_response(&bad).is_err());
        assert!(
            decode_dial_back(&[0x09, 1, 2]).is_err(),
            "truncated fixed64"
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(&body);
            let _ = Response::decode(&body);
            let _ = decode_dial_back(&body);
            let _ = decode_dial_back_response(&body);
        }
    }
}
