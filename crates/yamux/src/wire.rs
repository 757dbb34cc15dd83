//! The wire layer: the yamux frame header, 12 bytes, big-endian (hashicorp yamux spec.md,
//! "Framing").
//!
//! ```text
//! | version u8 | type u8 | flags u16 | stream id u32 | length u32 |
//! ```
//!
//! Only Data frames have a body (`length` bytes). [`Header::parse`] checks version and type;
//! after that no accessor can fail.

use std::ops::BitOr;

use crate::error::YamuxError;
use crate::id::StreamId;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 12;

/// The only protocol version.
pub const VERSION: u8 = 0;

/// The frame type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Data for a stream (`length` bytes of body follow).
    Data,
    /// Credit for a stream's send window (`length` = bytes added).
    WindowUpdate,
    /// A ping (SYN) or its answer (ACK); `length` is an opaque value echoed back.
    Ping,
    /// The session ends; `length` is a [`GoAwayCode`].
    GoAway,
}

impl FrameKind {
    /// The type byte on the wire.
    pub const fn code(self) -> u8 {
        match self {
            FrameKind::Data => 0,
            FrameKind::WindowUpdate => 1,
            FrameKind::Ping => 2,
            FrameKind::GoAway => 3,
        }
    }

    /// The type's name in the spec, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            FrameKind::Data => "Data",
            FrameKind::WindowUpdate => "WindowUpdate",
            FrameKind::Ping => "Ping",
            FrameKind::GoAway => "GoAway",
        }
    }

    /// The kind for a type byte, if it is one of the four.
    pub const fn from_code(code: u8) -> Option<FrameKind> {
        match code {
            0 => Some(FrameKind::Data),
            1 => Some(FrameKind::WindowUpdate),
            2 => Some(FrameKind::Ping),
            3 => Some(FrameKind::GoAway),
            _ => None,
        }
    }
}

/// The flag bits of a header. Unknown bits are kept as they are and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Opens a stream; on a Ping, marks the request.
    pub const SYN: Flags = Flags(0x1);
    /// Accepts a stream; on a Ping, marks the answer.
    pub const ACK: Flags = Flags(0x2);
    /// Half-closes a stream: the sender sends no more data.
    pub const FIN: Flags = Flags(0x4);
    /// Resets a stream in both directions.
    pub const RST: Flags = Flags(0x8);

    /// Flags from their wire bits.
    pub const fn from_bits(bits: u16) -> Flags {
        Flags(bits)
    }

    /// The wire bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// The code a GoAway frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GoAwayCode {
    /// Normal termination.
    Normal,
    /// The remote violated the protocol.
    ProtocolError,
    /// An internal error.
    InternalError,
}

impl GoAwayCode {
    /// The value of the frame's `length` field.
    pub const fn code(self) -> u32 {
        match self {
            GoAwayCode::Normal => 0,
            GoAwayCode::ProtocolError => 1,
            GoAwayCode::InternalError => 2,
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The frame type.
    pub kind: FrameKind,
    /// The flags.
    pub flags: Flags,
    /// The stream (0 for Ping and GoAway).
    pub stream: StreamId,
    /// Body length (Data), credit (WindowUpdate), opaque value (Ping) or code (GoAway).
    pub length: u32,
}

impl Header {
    /// Parses a header, rejecting versions other than 0 and unknown types.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, YamuxError> {
        let [version, kind, f0, f1, s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
        if version != VERSION {
            return Err(YamuxError::UnsupportedVersion(version));
        }
        let kind = FrameKind::from_code(kind).ok_or(YamuxError::UnknownFrameType(kind))?;
        Ok(Header {
            kind,
            flags: Flags(u16::from_be_bytes([f0, f1])),
            stream: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }

    /// The header's 12 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [f0, f1] = self.flags.0.to_be_bytes();
        let [s0, s1, s2, s3] = self.stream.get().to_be_bytes();
        let [l0, l1, l2, l3] = self.length.to_be_bytes();
        [
            VERSION,
            self.kind.code(),
            f0,
            f1,
            s0,
            s1,
            s2,
            s3,
            l0,
            l1,
            l2,
            l3,
        ]
    }

    /// Appends the header's wire bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// A Data header announcing `len` body bytes.
    pub const fn data(stream: StreamId, flags: Flags, len: u32) -> Header {
        Header {
            kind: FrameKind::Data,
            flags,
            stream,
            length: len,
        }
    }

    /// A WindowUpdate header granting `credit` more bytes.
    pub const fn window_update(stream: StreamId, flags: Flags, credit: u32) -> Header {
        Header {
            kind: FrameKind::WindowUpdate,
            flags,
            stream,
            length: credit,
        }
    }

    /// A Ping request carrying `value`.
    pub const fn ping(value: u32) -> Header {
        Header {
            kind: FrameKind::Ping,
            flags: Flags::SYN,
            stream: StreamId::SESSION,
            length: value,
        }
    }

    /// The answer to a Ping carrying `value`.
    pub const fn pong(value: u32) -> Header {
        Header {
            kind: FrameKind::Ping,
            flags: Flags::ACK,
            stream: StreamId::SESSION,
            length: value,
        }
    }

    /// A GoAway with `code`.
    pub const fn go_away(code: GoAwayCode) -> Header {
        Header {
            kind: FrameKind::GoAway,
            flags: Flags::NONE,
            stream: StreamId::SESSION,
            length: code.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// wire-formats.md section 30.8, byte for byte.
    #[test]
    fn spec_vectors() {
        let s1 = StreamId::new(1);
        let cases: [(Header, &str); 10] = [
            (
                Header::window_update(s1, Flags::SYN, 0),
                "00 01 0001 00000001 00000000",
            ),
            (
                Header::window_update(s1, Flags::ACK, 0),
                "00 01 0002 00000001 00000000",
            ),
            (
                Header::data(s1, Flags::NONE, 2),
                "00 00 0000 00000001 00000002",
            ),
            (
                Header::window_update(StreamId::new(2), Flags::NONE, 256 * 1024),
                "00 01 0000 00000002 00040000",
            ),
            (
                Header::data(s1, Flags::FIN, 0),
                "00 00 0004 00000001 00000000",
            ),
            (
                Header::window_update(s1, Flags::RST, 0),
                "00 01 0008 00000001 00000000",
            ),
            (Header::ping(42), "00 02 0001 00000000 0000002a"),
            (Header::pong(42), "00 02 0002 00000000 0000002a"),
            (
                Header::go_away(GoAwayCode::Normal),
                "00 03 0000 00000000 00000000",
            ),
            (
                Header::go_away(GoAwayCode::ProtocolError),
                "00 03 0000 00000000 00000001",
            ),
        ];
        for (header, wire) in cases {
            let wire = hex(wire);
            assert_eq!(header.to_bytes().to_vec(), wire, "{header:?}");
            let parsed = Header::parse(&wire.clone().try_into().unwrap()).unwrap();
            assert_eq!(parsed, header);
        }
        // Data "hi" on stream 1: header then body.
        let mut out = Vec::new();
        Header::data(s1, Flags::NONE, 2).emit(&mut out);
        out.extend_from_slice(b"hi");
        assert_eq!(out, hex("00 00 0000 00000001 00000002 6869"));
    }

    #[test]
    fn rejects_bad_version_and_type() {
        let mut bytes = Header::ping(1).to_bytes();
        bytes[0] = 1;
        assert!(matches!(
            Header::parse(&bytes),
            Err(YamuxError::UnsupportedVersion(1))
        ));
        let mut bytes = Header::ping(1).to_bytes();
        bytes[1] = 4;
        assert!(matches!(
            Header::parse(&bytes),
            Err(YamuxError::UnknownFrameType(4))
        ));
    }

    #[test]
    fn stream_id_parity() {
        assert!(StreamId::new(1).is_client());
        assert!(!StreamId::new(1).is_server());
        assert!(StreamId::new(2).is_server());
        assert!(!StreamId::new(0).is_server());
        assert!(!StreamId::new(0).is_client());
        assert!(StreamId::SESSION.is_session());
    }

    #[test]
    fn flags() {
        let f = Flags::SYN | Flags::FIN;
        assert!(f.contains(Flags::SYN));
        assert!(f.contains(Flags::FIN));
        assert!(!f.contains(Flags::ACK));
        assert_eq!(f.bits(), 5);
        assert!(Flags::NONE.is_empty());
        assert_eq!(Flags::from_bits(0xfff0).bits(), 0xfff0);
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::array::uniform12(any::<u8>())) {
            if let Ok(header) = Header::parse(&bytes) {
                prop_assert_eq!(header.to_bytes(), bytes);
            } else {
                prop_assert!(bytes[0] != 0 || bytes[1] > 3);
            }
        }
    }
}
