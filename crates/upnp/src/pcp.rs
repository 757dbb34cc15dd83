//! PCP (RFC 6887) MAP requests and responses: the common header, the MAP opcode, result
//! codes, options skipped with their lengths checked, and version negotiation (a server
//! that answers in NAT-PMP's version 0 speaks only NAT-PMP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reader::Reader;
use crate::{Protocol, UpnpError};

/// The PCP version we speak.
pub const VERSION: u8 = 2;
/// The MAP opcode.
pub const OP_MAP: u8 = 1;
/// Set in the opcode byte of a response.
pub const RESPONSE_BIT: u8 = 0x80;
/// The largest PCP message (RFC 6887 §7).
pub const MAX_MESSAGE: usize = 1100;
/// The length of a MAP request or response without options.
pub const MAP_LEN: usize = 60;
/// IANA protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IANA protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

const WHAT: &str = "PCP response";

/// An address as PCP carries it: IPv6, or IPv4 mapped into IPv6 (`::ffff:a.b.c.d`).
pub fn to_wire(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address PCP's 16 bytes stand for (IPv4-mapped ones as IPv4).
pub fn from_wire(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => PROTO_TCP,
        Protocol::Udp => PROTO_UDP,
    }
}

/// A MAP request (RFC 6887 §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRequest {
    /// Seconds asked for; 0 deletes the mapping.
    pub lifetime: u32,
    /// Our address as the server sees it (the source address of the request).
    pub client: IpAddr,
    /// A random value the response must echo; it also identifies the mapping for renewal
    /// and deletion.
    pub nonce: [u8; 12],
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Our port.
    pub internal_port: u16,
    /// The external port we would like (0: any).
    pub suggested_external_port: u16,
    /// The external address we would like (`0.0.0.0`: any).
    pub suggested_external_addr: IpAddr,
}

impl MapRequest {
    /// The request's 60 bytes (no options), with `version` in the first byte (always
    /// [`VERSION`] except in tests of version negotiation).
    pub fn encode_version(&self, version: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAP_LEN);
        out.push(version);
        out.push(OP_MAP);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&to_wire(self.client));
        out.extend_from_slice(&self.nonce);
        out.push(proto_number(self.protocol));
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.internal_port.to_be_bytes());
        out.extend_from_slice(&self.suggested_external_port.to_be_bytes());
        out.extend_from_slice(&to_wire(self.suggested_external_addr));
        out
    }

    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_version(VERSION)
    }

    /// Decodes a MAP request (what a server reads; for tests and fakes).
    pub fn decode(buf: &[u8]) -> Result<MapRequest, UpnpError> {
        const W: &str = "PCP request";
        if buf.len() > MAX_MESSAGE {
            return Err(UpnpError::TooLarge {
                what: W,
                limit: MAX_MESSAGE,
            });
        }
        let mut r = Reader::new(buf, W);
        let version = r.u8()?;
        if version != VERSION {
            return Err(UpnpError::malformed(W, format!("version {version}")));
        }
        if r.u8()? != OP_MAP {
            return Err(UpnpError::malformed(W, "not a MAP request"));
        }
        r.skip(2)?;
        let lifetime = r.u32()?;
        let client = from_wire(r.bytes::<16>()?);
        let nonce = r.bytes::<12>()?;
        let protocol = match r.u8()? {
            PROTO_TCP => Protocol::Tcp,
            PROTO_UDP => Protocol::Udp,
            other => return Err(UpnpError::malformed(W, format!("protocol {other}"))),
        };
        r.skip(3)?;
        Ok(MapRequest {
            lifetime,
            client,
            nonce,
            protocol,
            internal_port: r.u16()?,
            suggested_external_port: r.u16()?,
            suggested_external_addr: from_wire(r.bytes::<16>()?),
        })
    }
}

/// A PCP result code (RFC 6887 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// 0
    Success,
    /// 1: the server speaks another version (its own is in the response's version byte).
    UnsupportedVersion,
    /// 2: not authorized.
    NotAuthorized,
    /// 3: the server could not parse the request.
    MalformedRequest,
    /// 4: unsupported opcode.
    UnsupportedOpcode,
    /// 5: unsupported mandatory option.
    UnsupportedOption,
    /// 6: malformed option.
    MalformedOption,
    /// 7: network failure (try again later).
    NetworkFailure,
    /// 8: no resources (try again later).
    NoResources,
    /// 9: unsupported protocol.
    UnsupportedProtocol,
    /// 10: user exceeded quota.
    UserExceededQuota,
    /// 11: cannot provide the suggested external address or port.
    CannotProvideExternal,
    /// 12: the client address in the request is not the source address the server saw
    /// (another NAT between us and the server).
    AddressMismatch,
    /// 13: excessive remote peers.
    ExcessiveRemotePeers,
    /// Any other value.
    Other(u8),
}

impl ResultCode {
    /// From the wire value.
    pub fn from_u8(v: u8) -> ResultCode {
        use ResultCode as R;
        match v {
            0 => R::Success,
            1 => R::UnsupportedVersion,
            2 => R::NotAuthorized,
            3 => R::MalformedRequest,
            4 => R::UnsupportedOpcode,
            5 => R::UnsupportedOption,
            6 => R::MalformedOption,
            7 => R::NetworkFailure,
            8 => R::NoResources,
            9 => R::UnsupportedProtocol,
            10 => R::UserExceededQuota,
            11 => R::CannotProvideExternal,
            12 => R::AddressMismatch,
            13 => R::ExcessiveRemotePeers,
            other => R::Other(other),
        }
    }

    /// The wire value.
    pub fn to_u8(self) -> u8 {
        use ResultCode as R;
        match self {
            R::Success => 0,
            R::UnsupportedVersion => 1,
            R::NotAuthorized => 2,
            R::MalformedRequest => 3,
            R::UnsupportedOpcode => 4,
            R::UnsupportedOption => 5,
            R::MalformedOption => 6,
            R::NetworkFailure => 7,
            R::NoResources => 8,
            R::UnsupportedProtocol => 9,
            R::UserExceededQuota => 10,
            R::CannotProvideExternal => 11,
            R::AddressMismatch => 12,
            R::ExcessiveRemotePeers => 13,
            R::Other(v) => v,
        }
    }

    /// Whether the RFC calls the error short-lived (retrying the same request later may
    /// work): NETWORK_FAILURE, NO_RESOURCES, USER_EX_QUOTA, CANNOT_PROVIDE_EXTERNAL.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ResultCode::NetworkFailure
                | ResultCode::NoResources
                | ResultCode::UserExceededQuota
                | ResultCode::CannotProvideExternal
        )
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ResultCode as R;
        let name = match self {
            R::Success => "SUCCESS",
            R::UnsupportedVersion => "UNSUPP_VERSION",
            R::NotAuthorized => "NOT_AUTHORIZED",
            R::MalformedRequest => "MALFORMED_REQUEST",
            R::UnsupportedOpcode => "UNSUPP_OPCODE",
            R::UnsupportedOption => "UNSUPP_OPTION",
            R::MalformedOption => "MALFORMED_OPTION",
            R::NetworkFailure => "NETWORK_FAILURE",
            R::NoResources => "NO_RESOURCES",
            R::UnsupportedProtocol => "UNSUPP_PROTOCOL",
            R::UserExceededQuota => "USER_EX_QUOTA",
            R::CannotProvideExternal => "CANNOT_PROVIDE_EXTERNAL",
            R::AddressMismatch => "ADDRESS_MISMATCH",
            R::ExcessiveRemotePeers => "EXCESSIVE_REMOTE_PEERS",
            R::Other(v) => return write!(f, "result code {v}"),
        };
        write!(f, "{name} ({})", self.to_u8())
    }
}

/// A decoded answer to a MAP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A PCP MAP response.
    Map(MapResponse),
    /// The server answered in NAT-PMP (version 0): it speaks NAT-PMP only (RFC 6887 §9).
    NatPmpOnly,
    /// The server speaks another PCP version (`UNSUPP_VERSION`, its version in the header).
    UnsupportedVersion {
        /// The version the server named.
        server_version: u8,
    },
}

/// A MAP response (RFC 6887 §7.2, §11.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapResponse {
    /// The result.
    pub code: ResultCode,
    /// Seconds the mapping lasts; on an error, how long the error is likely to last.
    pub lifetime: u32,
    /// The server's epoch (seconds since its state was reset).
    pub epoch: u32,
    /// The request's nonce, echoed.
    pub nonce: [u8; 12],
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Our port.
    pub internal_port: u16,
    /// The external port assigned (on success).
    pub external_port: u16,
    /// The external address assigned (on success).
    pub external_addr: IpAddr,
}

impl Response {
    /// Decodes a datagram received from the server. Errors on anything short, not a
    /// multiple of 4, over 1100 bytes, not a response, not MAP, or with a malformed option;
    /// never panics.
    pub fn decode(buf: &[u8]) -> Result<Response, UpnpError> {
        if buf.len() > MAX_MESSAGE {
            return Err(UpnpError::TooLarge {
                what: WHAT,
                limit: MAX_MESSAGE,
            });
        }
        let mut r = Reader::new(buf, WHAT);
        let version = r.u8()?;
        let opcode = r.u8()?;
        if version == crate::natpmp::VERSION {
            // A NAT-PMP server's "unsupported version" answer: [0][128+op][result u16]...
            if opcode & RESPONSE_BIT == 0 {
                return Err(UpnpError::malformed(WHAT, "a version-0 request"));
            }
            return Ok(Response::NatPmpOnly);
        }
        if opcode & RESPONSE_BIT == 0 {
            return Err(UpnpError::malformed(WHAT, "a request, not a response"));
        }
        r.skip(1)?;
        let code = ResultCode::from_u8(r.u8()?);
        if version != VERSION {
            if code == ResultCode::UnsupportedVersion {
                return Ok(Response::UnsupportedVersion {
                    server_version: version,
                });
            }
            return Err(UpnpError::malformed(WHAT, format!("version {version}")));
        }
        if code == ResultCode::UnsupportedVersion {
            // Our own version is the server's? Then it contradicts itself.
            return Err(UpnpError::malformed(
                WHAT,
                "UNSUPP_VERSION with our own version",
            ));
        }
        if !buf.len().is_multiple_of(4) {
            return Err(UpnpError::malformed(WHAT, "length not a multiple of 4"));
        }
        if opcode & !RESPONSE_BIT != OP_MAP {
            return Err(UpnpError::malformed(
                WHAT,
                format!("opcode {}", opcode & !RESPONSE_BIT),
            ));
        }
        let lifetime = r.u32()?;
        let epoch = r.u32()?;
        r.skip(12)?;
        let nonce = r.bytes::<12>()?;
        let protocol = match r.u8()? {
            PROTO_TCP => Protocol::Tcp,
            PROTO_UDP => Protocol::Udp,
            other => return Err(UpnpError::malformed(WHAT, format!("protocol {other}"))),
        };
        r.skip(3)?;
        let internal_port = r.u16()?;
        let external_port = r.u16()?;
        let external_addr = from_wire(r.bytes::<16>()?);
        check_options(r.remaining())?;
        Ok(Response::Map(MapResponse {
            code,
            lifetime,
            epoch,
            nonce,
            protocol,
            internal_port,
            external_port,
            external_addr,
        }))
    }
}

/// Walks the options after the opcode payload: each is code, reserved, a 16-bit length
/// and that many bytes padded to a multiple of 4. We use none; we only check they fit.
fn check_options(mut rest: &[u8]) -> Result<(), UpnpError> {
    while !rest.is_empty() {
        let mut r = Reader::new(rest, WHAT);
        let _code = r.u8()?;
        r.skip(1)?;
        let len = usize::from(r.u16()?);
        let padded = len
            .checked_add(3)
            .map(|l| l & !3)
            .ok_or_else(|| UpnpError::malformed(WHAT, "option length"))?;
        r.skip(padded)
            .map_err(|_| UpnpError::malformed(WHAT, "option longer than the message"))?;
        rest = r.remaining();
    }
    Ok(())
}

impl MapResponse {
    /// Encodes the response (what a server sends; for tests and fakes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAP_LEN);
        out.push(VERSION);
        out.push(RESPONSE_BIT | OP_MAP);
        out.push(0);
        out.push(self.code.to_u8());
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&self.nonce);
        out.push(proto_number(self.protocol));
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.internal_port.to_be_bytes());
        out.extend_from_slice(&self.external_port.to_be_bytes());
        out.extend_from_slice(&to_wire(self.external_addr));
        out
    }
}

/// The unspecified IPv4 address as PCP's "any external address" suggestion.
pub const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> MapRequest {
        MapRequest {
            lifetime: 7200,
            client: IpAddr::V4(Ipv4Addr::new(192, 168, 77, 2)),
            nonce: [7; 12],
            protocol: Protocol::Tcp,
            internal_port: 4002,
            suggested_external_port: 4002,
            suggested_external_addr: ANY_V4,
        }
    }

    #[test]
    fn request_layout() {
        let b = request().encode();
        assert_eq!(b.len(), MAP_LEN);
        assert_eq!(&b[..4], &[2, 1, 0, 0]);
        assert_eq!(&b[4..8], &7200u32.to_be_bytes());
        assert_eq!(&b[8..24], &to_wire("192.168.77.2".parse().unwrap()));
        assert_eq!(&b[18..20], &[0xff, 0xff]);
        assert_eq!(&b[24..36], &[7; 12]);
        assert_eq!(b[36], 6);
        assert_eq!(&b[40..44], &[0x0f, 0xa2, 0x0f, 0xa2]);
        assert_eq!(MapRequest::decode(&b).unwrap(), request());
    }

    #[test]
    fn decodes_what_miniupnpd_sent() {
        // Captured from miniupnpd 2.3.1: MAP TCP 4002 granted for 7200 s at 11.77.0.1.
        let hex = "0281000000001c20000000010000000000000000000000003d03c5d97934107ad012cf13060000000fa20fa200000000000000000000ffff0b4d0001";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let Response::Map(m) = Response::decode(&bytes).unwrap() else {
            panic!("not a MAP response")
        };
        assert_eq!(m.code, ResultCode::Success);
        assert_eq!(m.lifetime, 7200);
        assert_eq!(m.epoch, 1);
        assert_eq!(m.protocol, Protocol::Tcp);
        assert_eq!((m.internal_port, m.external_port), (4002, 4002));
        assert_eq!(m.external_addr, IpAddr::V4(Ipv4Addr::new(11, 77, 0, 1)));
    }

    #[test]
    fn version_negotiation() {
        // A NAT-PMP-only server: version 0, opcode 128+1, result 1 (unsupported version).
        assert_eq!(
            Response::decode(&[0, 0x81, 0, 1, 0, 0, 0, 9]).unwrap(),
            Response::NatPmpOnly
        );
        // A server of a future PCP version.
        let mut v3 = vec![3, 0x81, 0, 1];
        v3.extend_from_slice(&[0; 20]);
        assert_eq!(
            Response::decode(&v3).unwrap(),
            Response::UnsupportedVersion { server_version: 3 }
        );
        // UNSUPP_VERSION naming our own version is nonsense.
        let mut own = vec![2, 0x81, 0, 1];
        own.extend_from_slice(&[0; 56]);
        assert!(Response::decode(&own).is_err());
    }

    #[test]
    fn options_are_skipped_and_checked() {
        let ok = MapResponse {
            code: ResultCode::Success,
            lifetime: 1,
            epoch: 2,
            nonce: [1; 12],
            protocol: Protocol::Udp,
            internal_port: 1,
            external_port: 2,
            external_addr: ANY_V4,
        };
        let mut b = ok.encode();
        b.extend_from_slice(&[0x80, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(Response::decode(&b).unwrap(), Response::Map(ok.clone()));
        let mut long = ok.encode();
        long.extend_from_slice(&[0x80, 0, 0, 9, 1, 2, 3, 4]);
        assert!(Response::decode(&long).is_err());
    }

    #[test]
    fn malformed_responses_are_errors() {
        let good = MapResponse {
            code: ResultCode::Success,
            lifetime: 1,
            epoch: 2,
            nonce: [1; 12],
            protocol: Protocol::Udp,
            internal_port: 1,
            external_port: 2,
            external_addr: ANY_V4,
        }
        .encode();
        for n in 0..good.len() {
            assert!(Response::decode(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut request = good.clone();
        request[1] = OP_MAP;
        assert!(Response::decode(&request).is_err());
        let mut announce = good.clone();
        announce[1] = RESPONSE_BIT;
        assert!(Response::decode(&announce).is_err());
        let mut proto = good.clone();
        proto[36] = 1;
        assert!(Response::decode(&proto).is_err());
        assert!(matches!(
            Response::decode(&vec![2; 1104]),
            Err(UpnpError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn responses_round_trip(code: u8, lifetime: u32, epoch: u32, nonce: [u8; 12], udp: bool, i: u16, e: u16, ip: [u8; 16]) {
            prop_assume!(code != 1);
            let m = MapResponse {
                code: ResultCode::from_u8(code), lifetime, epoch, nonce,
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                internal_port: i, external_port: e, external_addr: from_wire(ip),
            };
            prop_assert_eq!(Response::decode(&m.encode()).unwrap(), Response::Map(m));
        }

        #[test]
        fn requests_round_trip(lifetime: u32, client: [u8; 16], nonce: [u8; 12], udp: bool, i: u16, e: u16, ip: [u8; 16]) {
            let r = MapRequest {
                lifetime, client: from_wire(client), nonce,
                protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
                internal_port: i, suggested_external_port: e, suggested_external_addr: from_wire(ip),
            };
            prop_assert_eq!(MapRequest::decode(&r.encode()).unwrap(), r);
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Response::decode(&bytes);
            let _ = MapRequest::decode(&bytes);
        }
    }
}
