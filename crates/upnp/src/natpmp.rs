//! NAT-PMP (RFC 6886) messages: the external address request and the TCP/UDP mapping
//! requests, their responses, result codes and the server's epoch.
//!
//! Requests are built into fixed arrays; responses are checked before anything is read
//! from them, so no input can panic the decoder.

use std::net::Ipv4Addr;

use crate::reader::Reader;
use crate::{Protocol, UpnpError};

/// The UDP port a NAT-PMP (and PCP) server listens on (RFC 6886 §3, RFC 6887 §19.1).
pub const SERVER_PORT: u16 = 5351;
/// The NAT-PMP version.
pub const VERSION: u8 = 0;
/// Opcode of the external address request.
pub const OP_EXTERNAL_ADDRESS: u8 = 0;
/// Opcode of a UDP mapping request.
pub const OP_MAP_UDP: u8 = 1;
/// Opcode of a TCP mapping request.
pub const OP_MAP_TCP: u8 = 2;
/// Added to the request's opcode in a response.
pub const RESPONSE_BIT: u8 = 128;
/// The largest response we read (a map response is 16 bytes; PCP's limit bounds both).
pub const MAX_RESPONSE: usize = 1100;

/// A NAT-PMP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Asks for the gateway's external IPv4 address.
    ExternalAddress,
    /// Asks for (or renews, or with `lifetime` 0 removes) a mapping.
    Map {
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port.
        internal_port: u16,
        /// The external port we would like (0: any; 0 with `lifetime` 0: remove).
        suggested_external_port: u16,
        /// Seconds; 0 removes the mapping.
        lifetime: u32,
    },
}

impl Request {
    /// The request's bytes: 2 for the external address request, 12 for a mapping.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Request::ExternalAddress => vec![VERSION, OP_EXTERNAL_ADDRESS],
            Request::Map {
                protocol,
                internal_port,
                suggested_external_port,
                lifetime,
            } => {
                let mut out = Vec::with_capacity(12);
                out.push(VERSION);
                out.push(map_opcode(protocol));
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&internal_port.to_be_bytes());
                out.extend_from_slice(&suggested_external_port.to_be_bytes());
                out.extend_from_slice(&lifetime.to_be_bytes());
                out
            }
        }
    }

    /// The opcode the response to this request carries (with [`RESPONSE_BIT`]).
    pub fn response_opcode(&self) -> u8 {
        match *self {
            Request::ExternalAddress => RESPONSE_BIT,
            Request::Map { protocol, .. } => RESPONSE_BIT | map_opcode(protocol),
        }
    }
}

fn map_opcode(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => OP_MAP_TCP,
        Protocol::Udp => OP_MAP_UDP,
    }
}

/// A NAT-PMP result code (RFC 6886 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// 0: success.
    Success,
    /// 1: the server does not speak this version (what a NAT-PMP server answers to PCP).
    UnsupportedVersion,
    /// 2: not authorized (mapping disabled on the gateway).
    NotAuthorized,
    /// 3: network failure (the gateway has no external address yet).
    NetworkFailure,
    /// 4: out of resources.
    OutOfResources,
    /// 5: unsupported opcode.
    UnsupportedOpcode,
    /// Any other value.
    Other(u16),
}

impl ResultCode {
    /// From the wire value.
    pub fn from_u16(v: u16) -> ResultCode {
        match v {
            0 => ResultCode::Success,
            1 => ResultCode::UnsupportedVersion,
            2 => ResultCode::NotAuthorized,
            3 => ResultCode::NetworkFailure,
            4 => ResultCode::OutOfResources,
            5 => ResultCode::UnsupportedOpcode,
            other => ResultCode::Other(other),
        }
    }

    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            ResultCode::Success => 0,
            ResultCode::UnsupportedVersion => 1,
            ResultCode::NotAuthorized => 2,
            ResultCode::NetworkFailure => 3,
            ResultCode::OutOfResources => 4,
            ResultCode::UnsupportedOpcode => 5,
            ResultCode::Other(v) => v,
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultCode::Success => f.write_str("success"),
            ResultCode::UnsupportedVersion => f.write_str("unsupported version (1)"),
            ResultCode::NotAuthorized => f.write_str("not authorized (2)"),
            ResultCode::NetworkFailure => f.write_str("network failure (3)"),
            ResultCode::OutOfResources => f.write_str("out of resources (4)"),
            ResultCode::UnsupportedOpcode => f.write_str("unsupported opcode (5)"),
            ResultCode::Other(v) => write!(f, "result code {v}"),
        }
    }
}

/// A decoded NAT-PMP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The answer to [`Request::ExternalAddress`].
    ExternalAddress {
        /// Seconds since the server's port-mapping table was last reset.
        epoch: u32,
        /// The gateway's external IPv4 address.
        address: Ipv4Addr,
    },
    /// The answer to a [`Request::Map`].
    Map {
        /// Seconds since the server's port-mapping table was last reset.
        epoch: u32,
        /// TCP or UDP.
        protocol: Protocol,
        /// Our port, as the server read it.
        internal_port: u16,
        /// The external port it mapped.
        external_port: u16,
        /// Seconds the mapping lasts (0 after a removal).
        lifetime: u32,
    },
    /// An error answer to either request (only the header is guaranteed).
    Error {
        /// The response opcode (request opcode + 128).
        opcode: u8,
        /// Seconds since the server's port-mapping table was last reset.
        epoch: u32,
        /// The result code (never [`ResultCode::Success`]).
        code: ResultCode,
    },
}

impl Response {
    /// Decodes a response datagram. Errors on anything short, of another version, not a
    /// response, or of an unknown opcode; never panics.
    pub fn decode(buf: &[u8]) -> Result<Response, UpnpError> {
        const WHAT: &str = "NAT-PMP response";
        if buf.len() > MAX_RESPONSE {
            return Err(UpnpError::TooLarge {
                what: WHAT,
                limit: MAX_RESPONSE,
            });
        }
        let mut r = Reader::new(buf, WHAT);
        let version = r.u8()?;
        if version != VERSION {
            return Err(UpnpError::malformed(WHAT, format!("version {version}")));
        }
        let opcode = r.u8()?;
        if opcode & RESPONSE_BIT == 0 {
            return Err(UpnpError::malformed(WHAT, "a request, not a response"));
        }
        let code = ResultCode::from_u16(r.u16()?);
        let epoch = r.u32()?;
        if code != ResultCode::Success {
            return Ok(Response::Error {
                opcode,
                epoch,
                code,
            });
        }
        match opcode & !RESPONSE_BIT {
            OP_EXTERNAL_ADDRESS => Ok(Response::ExternalAddress {
                epoch,
                address: Ipv4Addr::from(r.bytes::<4>()?),
            }),
            op @ (OP_MAP_UDP | OP_MAP_TCP) => Ok(Response::Map {
                epoch,
                protocol: if op == OP_MAP_TCP {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                },
                internal_port: r.u16()?,
                external_port: r.u16()?,
                lifetime: r.u32()?,
            }),
            other => Err(UpnpError::malformed(WHAT, format!("opcode {other}"))),
        }
    }

    /// Encodes the response (what a gateway sends; for tests and fakes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.push(VERSION);
        match *self {
            Response::ExternalAddress { epoch, address } => {
                out.push(RESPONSE_BIT | OP_EXTERNAL_ADDRESS);
                out.extend_from_slice(&0u16.to_be_bytes());
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&address.octets());
            }
            Response::Map {
                epoch,
                protocol,
                internal_port,
                external_port,
                lifetime,
            } => {
                out.push(RESPONSE_BIT | map_opcode(protocol));
                out.extend_from_slice(&0u16.to_be_bytes());
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(&internal_port.to_be_bytes());
                out.extend_from_slice(&external_port.to_be_bytes());
                out.extend_from_slice(&lifetime.to_be_bytes());
            }
            Response::Error {
                opcode,
                epoch,
                code,
            } => {
                out.push(opcode);
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                out.extend_from_slice(&epoch.to_be_bytes());
            }
        }
        out
    }

    /// The response opcode (with [`RESPONSE_BIT`]).
    pub fn opcode(&self) -> u8 {
        match *self {
            Response::ExternalAddress { .. } => RESPONSE_BIT | OP_EXTERNAL_ADDRESS,
            Response::Map { protocol, .. } => RESPONSE_BIT | map_opcode(protocol),
            Response::Error { opcode, .. } => opcode,
        }
    }

    /// The server's epoch (seconds since its mapping table was reset).
    pub fn epoch(&self) -> u32 {
        match *self {
            Response::ExternalAddress { epoch, .. }
            | Response::Map { epoch, .. }
            | Response::Error { epoch, .. } => epoch,
        }
    }
}

/// Whether the server lost its mappings between two responses (RFC 6886 §3.6): its epoch
/// went backwards, or grew much less than our own clock did (7/8 of our elapsed seconds,
/// minus 2 s of slack). When it did, the client must renew every mapping at once.
pub fn epoch_lost_state(previous: u32, previous_at_secs: u64, now: u32, now_at_secs: u64) -> bool {
    if now < previous {
        return true;
    }
    let client_elapsed = now_at_secs.saturating_sub(previous_at_secs);
    let server_elapsed = u64::from(now - previous);
    // Server elapsed must be at least 7/8 of ours, less 2 seconds of slack.
    server_elapsed.saturating_add(2) < client_elapsed.saturating_mul(7) / 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_encode_as_in_the_rfc() {
        assert_eq!(Request::ExternalAddress.encode(), [0, 0]);
        let map = Request::Map {
            protocol: Protocol::Tcp,
            internal_port: 4001,
            suggested_external_port: 4002,
            lifetime: 7200,
        };
        assert_eq!(
            map.encode(),
            [0, 2, 0, 0, 0x0f, 0xa1, 0x0f, 0xa2, 0, 0, 0x1c, 0x20]
        );
        assert_eq!(map.response_opcode(), 130);
        let udp = Request::Map {
            protocol: Protocol::Udp,
            internal_port: 1,
            suggested_external_port: 0,
            lifetime: 0,
        };
        assert_eq!(udp.encode()[1], 1);
    }

    #[test]
    fn decodes_what_miniupnpd_sent() {
        // Captured from miniupnpd 2.3.1 in this crate's namespace test.
        let ext = [0, 0x80, 0, 0, 0, 0, 0, 1, 0x0b, 0x4d, 0, 1];
        assert_eq!(
            Response::decode(&ext).unwrap(),
            Response::ExternalAddress {
                epoch: 1,
                address: Ipv4Addr::new(11, 77, 0, 1)
            }
        );
        let map = [
            0, 0x82, 0, 0, 0, 0, 0, 1, 0x0f, 0xa1, 0x0f, 0xa1, 0, 0, 0x0e, 0x10,
        ];
        assert_eq!(
            Response::decode(&map).unwrap(),
            Response::Map {
                epoch: 1,
                protocol: Protocol::Tcp,
                internal_port: 4001,
                external_port: 4001,
                lifetime: 3600
            }
        );
        // A failed mapping (network failure) is only a header.
        let err = [0, 0x82, 0, 3, 0, 0, 0, 1];
        assert_eq!(
            Response::decode(&err).unwrap(),
            Response::Error {
                opcode: 0x82,
                epoch: 1,
                code: ResultCode::NetworkFailure
            }
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &[][..],
            &[0],
            &[0, 0x80, 0, 0],
            &[0, 0x80, 0, 0, 0, 0, 0, 1, 1], // truncated address
            &[1, 0x80, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], // version 1
            &[0, 0x00, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], // a request
            &[0, 0x83, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], // unknown opcode
            &[0, 0x82, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0], // truncated map
        ] {
            assert!(Response::decode(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Response::decode(&[0u8; 2000]),
            Err(UpnpError::TooLarge { .. })
        ));
    }

    #[test]
    fn epoch_checks() {
        assert!(epoch_lost_state(100, 1000, 50, 1010)); // went backwards
        assert!(!epoch_lost_state(100, 1000, 110, 1010)); // in step
        assert!(epoch_lost_state(100, 1000, 101, 1100)); // grew far too little
        assert!(!epoch_lost_state(100, 1000, 100, 1001)); // within slack
    }

    fn protocol() -> impl Strategy<Value = Protocol> {
        prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)]
    }

    proptest! {
        #[test]
        fn responses_round_trip(epoch: u32, ip: [u8; 4], p in protocol(), i: u16, e: u16, l: u32, code in 1u16..) {
            for r in [
                Response::ExternalAddress { epoch, address: Ipv4Addr::from(ip) },
                Response::Map { epoch, protocol: p, internal_port: i, external_port: e, lifetime: l },
                Response::Error { opcode: 0x82, epoch, code: ResultCode::from_u16(code) },
            ] {
                prop_assert_eq!(Response::decode(&r.encode()).unwrap(), r);
                prop_assert_eq!(Response::decode(&r.encode()).unwrap().opcode(), r.opcode());
            }
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Response::decode(&bytes);
        }
    }
}
