//! RFC 6455 section 5.2 frame headers: parse, emit, and masking. No state, no I/O.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use crate::WsError;

/// The longest header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The longest payload of a control frame (ping, pong, close), RFC 6455 section 5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// `0x0`: the next fragment of a message.
    Continuation,
    /// `0x1`: UTF-8 text (refused by libp2p).
    Text,
    /// `0x2`: binary data.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<OpCode, WsError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return Err(WsError::Protocol("reserved opcode")),
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The final fragment of a message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key (frames from a client carry one, frames from a server do not).
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

impl Header {
    /// Parses a header from the start of `bytes`: `Ok(None)` when more bytes are needed,
    /// otherwise the header and its length in bytes.
    ///
    /// Checks what can be checked without context: no reserved bits (we negotiate no
    /// extension), no reserved opcode, control frames unfragmented and at most 125 bytes,
    /// the length in its shortest encoding and below 2^63.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Header, usize)>, WsError> {
        let (Some(&b0), Some(&b1)) = (bytes.first(), bytes.get(1)) else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol(
                "reserved bits set without a negotiated extension",
            ));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_bits(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let short = b1 & 0x7F;
        let (len, mut at) = match short {
            126 => {
                let Some(ext) = bytes.get(2..4) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([ext[0], ext[1]]));
                if len < 126 {
                    return Err(WsError::Protocol("payload length not minimally encoded"));
                }
                (len, 4usize)
            }
            127 => {
                let Some(ext) = bytes.get(2..10) else {
                    return Ok(None);
                };
                let mut raw = [0u8; 8];
                raw.copy_from_slice(ext);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(WsError::Protocol("payload length with the top bit set"));
                }
                if u16::try_from(len).is_ok() {
                    return Err(WsError::Protocol("payload length not minimally encoded"));
                }
                (len, 10usize)
            }
            n => (u64::from(n), 2usize),
        };
        if opcode.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::Protocol("control frame longer than 125 bytes"));
            }
        }
        let mask = if masked {
            let Some(key) = bytes.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        Ok(Some((
            Header {
                fin,
                opcode,
                mask,
                len,
            },
            at,
        )))
    }

    /// Writes the header into `out`; returns its length.
    pub fn emit(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = if self.fin { 0x80 } else { 0 } | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match (u8::try_from(self.len), u16::try_from(self.len)) {
            (Ok(short), _) if short <= 125 => {
                out[1] = mask_bit | short;
                2
            }
            (_, Ok(medium)) => {
                out[1] = mask_bit | 0x7E;
                out[2..4].copy_from_slice(&medium.to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 0x7F;
                out[2..10].copy_from_slice(&self.len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

/// XORs `data` with the masking key, starting `offset` bytes into the payload (RFC 6455
/// section 5.3). Masking and unmasking are the same operation.
pub fn apply_mask(key: [u8; 4], offset: u64, data: &mut [u8]) {
    // The key rotated so index 0 of `data` lines up with payload byte `offset`, repeated
    // over a 64-byte block: a fixed-size inner loop the compiler turns into vector XORs.
    let shift = (offset % 4) as usize;
    let mut block = [0u8; 64];
    for (i, byte) in block.iter_mut().enumerate() {
        *byte = key[(i + shift) % 4];
    }
    let mut chunks = data.chunks_exact_mut(64);
    for chunk in &mut chunks {
        for (byte, k) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= k;
        }
    }
    // The tail starts at a multiple of 64 bytes past index 0, so the block lines up.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(block.iter()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: Header) {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut out);
        assert_eq!(Header::parse(&out[..n]).unwrap(), Some((h, n)));
        for short in 0..n {
            assert_eq!(
                Header::parse(&out[..short]).unwrap(),
                None,
                "{short} of {n}"
            );
        }
    }

    #[test]
    fn headers_roundtrip_at_every_length_class() {
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                roundtrip(Header {
                    fin: true,
                    opcode: OpCode::Binary,
                    mask,
                    len,
                });
            }
        }
        roundtrip(Header {
            fin: false,
            opcode: OpCode::Continuation,
            mask: None,
            len: 3,
        });
        roundtrip(Header {
            fin: true,
            opcode: OpCode::Ping,
            mask: Some([9, 9, 9, 9]),
            len: 125,
        });
    }

    #[test]
    fn rfc_examples() {
        // RFC 6455 section 5.7: an unmasked "Hello" and a masked one.
        let (h, n) = Header::parse(&[0x81, 0x05]).unwrap().unwrap();
        assert_eq!(
            (h.opcode, h.fin, h.len, h.mask, n),
            (OpCode::Text, true, 5, None, 2)
        );
        let mut masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = Header::parse(&masked).unwrap().unwrap();
        assert_eq!(n, 6);
        apply_mask(h.mask.unwrap(), 0, &mut masked[6..]);
        assert_eq!(&masked[6..], b"Hello");
        // 256 bytes binary, unmasked: 0x82 0x7E 0x0100.
        let (h, n) = Header::parse(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, n), (256, 4));
    }

    #[test]
    fn malformed_headers_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (&[0xC2, 0x00], "reserved bits"),
            (&[0x83, 0x00], "reserved opcode"),
            (&[0x8B, 0x00], "reserved opcode"),
            (&[0x09, 0x00], "fragmented control"),
            (&[0x89, 0x7E, 0x00, 0x7E], "longer than 125"),
            (&[0x82, 0x7E, 0x00, 0x05], "minimally"),
            (&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], "minimally"),
            (&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], "top bit"),
        ];
        for (bytes, expected) in cases {
            let err = Header::parse(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn masking_at_any_offset_matches_bytewise() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let expected: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        for split in [0, 1, 2, 3, 5, 8, 13, 999, 1000] {
            let mut masked = data.clone();
            let (a, b) = masked.split_at_mut(split);
            apply_mask(key, 0, a);
            apply_mask(key, split as u64, b);
            assert_eq!(masked, expected, "split at {split}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20)) {
            let _ = Header::parse(&bytes);
        }
    }
}
