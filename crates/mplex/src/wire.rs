//! Bytes ⇄ frames: `uvarint(stream << 3 | flag) || uvarint(length) || data[length]`.
//!
//! [`Header::parse`] checks everything a header can get wrong (varints, flag 7, a length
//! over the maximum) before it returns a header, so nothing downstream can trip over one.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;

use lp2p_core::varint;

use crate::error::MplexError;

/// The most bytes a frame header takes: two varints of at most 9 bytes each.
pub const MAX_HEADER_LEN: usize = 2 * varint::MAX_LEN;

/// The largest stream number a header can carry: the header varint holds 63 bits, three of
/// which are the flag.
pub const MAX_STREAM_NUMBER: u64 = varint::MAX_VALUE >> 3;

/// The seven frame flags of mplex (the low three bits of the header).
///
/// The Initiator/Receiver suffix is the *sender's* role for that stream: the side that opened
/// the stream sends the Initiator forms, the other side the Receiver forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// 0: opens a stream; the payload is its name (debugging only).
    NewStream,
    /// 1: data, sent by the side that did not open the stream.
    MessageReceiver,
    /// 2: data, sent by the side that opened the stream.
    MessageInitiator,
    /// 3: half-close, sent by the side that did not open the stream.
    CloseReceiver,
    /// 4: half-close, sent by the side that opened the stream.
    CloseInitiator,
    /// 5: reset, sent by the side that did not open the stream.
    ResetReceiver,
    /// 6: reset, sent by the side that opened the stream.
    ResetInitiator,
}

/// What a frame does, independent of who sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Opens a stream.
    NewStream,
    /// Carries data.
    Message,
    /// Half-closes the sender's write side.
    Close,
    /// Aborts the stream both ways.
    Reset,
}

impl Flag {
    /// The flag for its 3-bit value; `None` for 7, which mplex does not define.
    pub fn from_bits(bits: u8) -> Option<Flag> {
        Some(match bits {
            0 => Flag::NewStream,
            1 => Flag::MessageReceiver,
            2 => Flag::MessageInitiator,
            3 => Flag::CloseReceiver,
            4 => Flag::CloseInitiator,
            5 => Flag::ResetReceiver,
            6 => Flag::ResetInitiator,
            _ => return None,
        })
    }

    /// The 3-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Flag::NewStream => 0,
            Flag::MessageReceiver => 1,
            Flag::MessageInitiator => 2,
            Flag::CloseReceiver => 3,
            Flag::CloseInitiator => 4,
            Flag::ResetReceiver => 5,
            Flag::ResetInitiator => 6,
        }
    }

    /// The frame's kind.
    pub fn kind(self) -> Kind {
        match self {
            Flag::NewStream => Kind::NewStream,
            Flag::MessageReceiver | Flag::MessageInitiator => Kind::Message,
            Flag::CloseReceiver | Flag::CloseInitiator => Kind::Close,
            Flag::ResetReceiver | Flag::ResetInitiator => Kind::Reset,
        }
    }

    /// Whether the sender of this frame is the side that opened the stream.
    pub fn sent_by_opener(self) -> bool {
        matches!(
            self,
            Flag::NewStream | Flag::MessageInitiator | Flag::CloseInitiator | Flag::ResetInitiator
        )
    }

    /// The flag for `kind` sent by the opener of the stream (`by_opener`) or by the other
    /// side.
    pub fn new(kind: Kind, by_opener: bool) -> Flag {
        match (kind, by_opener) {
            (Kind::NewStream, _) => Flag::NewStream,
            (Kind::Message, true) => Flag::MessageInitiator,
            (Kind::Message, false) => Flag::MessageReceiver,
            (Kind::Close, true) => Flag::CloseInitiator,
            (Kind::Close, false) => Flag::CloseReceiver,
            (Kind::Reset, true) => Flag::ResetInitiator,
            (Kind::Reset, false) => Flag::ResetReceiver,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The stream number (at most [`MAX_STREAM_NUMBER`]).
    pub stream: u64,
    /// The flag.
    pub flag: Flag,
    /// The payload length that follows the header (checked against the maximum).
    pub length: usize,
}

impl Header {
    /// Parses a header from the start of `bytes`.
    ///
    /// Returns `Ok(Some((header, header_len)))` when a whole header is there, `Ok(None)` when
    /// `bytes` ends inside it, and an error for an invalid varint, flag 7, or a length over
    /// `max_len`. Errors are found as early as the bytes allow (flag 7 before the length is
    /// even there).
    pub fn parse(bytes: &[u8], max_len: usize) -> Result<Option<(Header, usize)>, MplexError> {
        let Some((value, head_len)) = varint::decode(bytes).map_err(MplexError::InvalidVarint)?
        else {
            return Ok(None);
        };
        let stream = value >> 3;
        // The mask keeps three bits, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let bits = (value & 0x07) as u8;
        let flag = Flag::from_bits(bits).ok_or(MplexError::UnknownFlag { stream, flag: bits })?;
        let rest = bytes.get(head_len..).unwrap_or(&[]);
        let Some((length, len_len)) = varint::decode(rest).map_err(MplexError::InvalidVarint)?
        else {
            return Ok(None);
        };
        let length = usize::try_from(length)
            .ok()
            .filter(|&len| len <= max_len)
            .ok_or(MplexError::MessageTooLarge {
                len: length,
                max: max_len,
            })?;
        // Both varints are at most 9 bytes: no overflow.
        let used = head_len.saturating_add(len_len);
        Ok(Some((
            Header {
                stream,
                flag,
                length,
            },
            used,
        )))
    }

    /// Appends the encoded header to `out`. `stream` must be at most [`MAX_STREAM_NUMBER`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.stream <= MAX_STREAM_NUMBER);
        let value = (self.stream << 3) | u64::from(self.flag.bits());
        varint::encode_into(value, out);
        varint::encode_into(self.length as u64, out);
    }

    /// The number of bytes [`encode`](Header::encode) appends.
    pub fn encoded_len(&self) -> usize {
        let value = (self.stream << 3) | u64::from(self.flag.bits());
        varint::encoded_len(value).saturating_add(varint::encoded_len(self.length as u64))
    }
}

/// Appends a whole frame (header and payload) to `out`.
pub fn encode_frame(stream: u64, flag: Flag, payload: &[u8], out: &mut Vec<u8>) {
    let header = Header {
        stream,
        flag,
        length: payload.len(),
    };
    out.reserve(header.encoded_len().saturating_add(payload.len()));
    header.encode(out);
    out.extend_from_slice(payload);
}

/// A whole frame borrowed from a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The checked header.
    pub header: Header,
    /// The payload (`header.length` bytes).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses a whole frame from the start of `bytes`: `Ok(Some((frame, used)))`, or
    /// `Ok(None)` when `bytes` ends before the frame does.
    pub fn parse(
        bytes: &'a [u8],
        max_len: usize,
    ) -> Result<Option<(Frame<'a>, usize)>, MplexError> {
        let Some((header, header_len)) = Header::parse(bytes, max_len)? else {
            return Ok(None);
        };
        let end = header_len.saturating_add(header.length);
        let Some(payload) = bytes.get(header_len..end) else {
            return Ok(None);
        };
        Ok(Some((Frame { header, payload }, end)))
    }

    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_frame(self.header.stream, self.header.flag, self.payload, out);
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::config::MAX_MESSAGE_SIZE;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn frame(stream: u64, flag: Flag, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(stream, flag, payload, &mut out);
        out
    }

    /// wire-formats.md section 30.7, byte for byte, both ways.
    #[test]
    fn spec_vectors() {
        let cases: &[(u64, Flag, &[u8], &str)] = &[
            (0, Flag::NewStream, b"", "00 00"),
            (3, Flag::NewStream, b"3", "18 01 33"),
            (3, Flag::MessageInitiator, b"hi", "1a 02 6869"),
            (3, Flag::MessageReceiver, b"ok", "19 02 6f6b"),
            (3, Flag::CloseInitiator, b"", "1c 00"),
            (3, Flag::CloseReceiver, b"", "1b 00"),
            (3, Flag::ResetInitiator, b"", "1e 00"),
            (3, Flag::ResetReceiver, b"", "1d 00"),
            (16, Flag::NewStream, b"", "80 01 00"),
        ];
        for &(stream, flag, payload, bytes) in cases {
            let bytes = hex(bytes);
            assert_eq!(frame(stream, flag, payload), bytes, "{flag} {stream}");
            let (parsed, used) = Frame::parse(&bytes, MAX_MESSAGE_SIZE).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(parsed.header.stream, stream);
            assert_eq!(parsed.header.flag, flag);
            assert_eq!(parsed.payload, payload);
        }
    }

    #[test]
    fn flags_roundtrip_and_roles() {
        for bits in 0..7u8 {
            let flag = Flag::from_bits(bits).unwrap();
            assert_eq!(flag.bits(), bits);
            assert_eq!(Flag::new(flag.kind(), flag.sent_by_opener()), flag);
        }
        assert_eq!(Flag::from_bits(7), None);
        // Odd flags come from the receiver, even ones (but 0... which is the opener's) from
        // the initiator.
        assert!(!Flag::MessageReceiver.sent_by_opener());
        assert!(Flag::MessageInitiator.sent_by_opener());
        assert!(!Flag::CloseReceiver.sent_by_opener());
        assert!(Flag::CloseInitiator.sent_by_opener());
        assert!(!Flag::ResetReceiver.sent_by_opener());
        assert!(Flag::ResetInitiator.sent_by_opener());
        assert!(Flag::NewStream.sent_by_opener());
    }

    #[test]
    fn flag_seven_is_rejected_before_the_length() {
        // Header 0x0f: stream 1, flag 7; no length byte yet.
        assert!(matches!(
            Header::parse(&[0x0f], MAX_MESSAGE_SIZE),
            Err(MplexError::UnknownFlag { stream: 1, flag: 7 })
        ));
    }

    #[test]
    fn length_over_maximum_is_rejected() {
        // 1 MiB + 1 = 0x100001 → varint 81 80 40.
        let bytes = [0x0a, 0x81, 0x80, 0x40];
        assert!(matches!(
            Header::parse(&bytes, MAX_MESSAGE_SIZE),
            Err(MplexError::MessageTooLarge { len: 0x10_0001, .. })
        ));
        // Exactly 1 MiB is fine.
        let bytes = [0x0a, 0x80, 0x80, 0x40];
        let (header, used) = Header::parse(&bytes, MAX_MESSAGE_SIZE).unwrap().unwrap();
        assert_eq!(header.length, MAX_MESSAGE_SIZE);
        assert_eq!(used, 4);
        // A smaller configured maximum applies.
        assert!(Header::parse(&[0x0a, 0x05], 4).is_err());
    }

    #[test]
    fn truncated_headers_need_more() {
        let full = frame(300, Flag::MessageInitiator, &[7; 200]);
        let header_len = 4; // 2 + 2 bytes
        for cut in 0..header_len {
            assert_eq!(Header::parse(&full[..cut], MAX_MESSAGE_SIZE).unwrap(), None);
        }
        for cut in header_len..full.len() {
            assert_eq!(Frame::parse(&full[..cut], MAX_MESSAGE_SIZE).unwrap(), None);
        }
        assert!(Frame::parse(&full, MAX_MESSAGE_SIZE).unwrap().is_some());
    }

    #[test]
    fn bad_varints_are_rejected() {
        // Not minimal.
        assert!(matches!(
            Header::parse(&[0x80, 0x00, 0x00], MAX_MESSAGE_SIZE),
            Err(MplexError::InvalidVarint(_))
        ));
        // Too long (10 bytes).
        let mut long = vec![0xff; 9];
        long.push(0x01);
        assert!(matches!(
            Header::parse(&long, MAX_MESSAGE_SIZE),
            Err(MplexError::InvalidVarint(_))
        ));
        // A bad length varint.
        assert!(matches!(
            Header::parse(&[0x08, 0x80, 0x00], MAX_MESSAGE_SIZE),
            Err(MplexError::InvalidVarint(_))
        ));
    }

    #[test]
    fn largest_stream_number() {
        let bytes = frame(MAX_STREAM_NUMBER, Flag::ResetInitiator, b"");
        assert_eq!(bytes.len(), 10);
        let (f, _) = Frame::parse(&bytes, 0).unwrap().unwrap();
        assert_eq!(f.header.stream, MAX_STREAM_NUMBER);
    }

    proptest! {
        #[test]
        fn roundtrip(stream in 0..=MAX_STREAM_NUMBER, bits in 0u8..7, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let flag = Flag::from_bits(bits).unwrap();
            let bytes = frame(stream, flag, &payload);
            let header = Header { stream, flag, length: payload.len() };
            prop_assert_eq!(header.encoded_len() + payload.len(), bytes.len());
            let (f, used) = Frame::parse(&bytes, MAX_MESSAGE_SIZE).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(f.header, header);
            prop_assert_eq!(f.payload, &payload[..]);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32), max in 0usize..2048) {
            if let Ok(Some((f, used))) = Frame::parse(&bytes, max) {
                prop_assert!(f.payload.len() <= max);
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
