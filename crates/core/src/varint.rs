//! The multiformats unsigned varint: LEB128, minimal, at most 9 bytes (63 bits).
//!
//! Decoding is sans-IO: [`decode`] looks at a byte slice and says whether a whole varint is
//! there, how long it is, or what is wrong with it.
//!
//! ```
//! use lp2p_core::varint;
//! let mut buf = varint::Buffer::default();
//! assert_eq!(varint::encode(300, &mut buf), &[0xac, 0x02]);
//! assert_eq!(varint::decode(&[0xac, 0x02, 0xff]).unwrap(), Some((300, 2)));
//! assert_eq!(varint::decode(&[0xac]).unwrap(), None); // needs more bytes
//! assert!(varint::decode(&[0x81, 0x00]).is_err()); // not minimal
//! ```

use crate::Error;

/// The most bytes a multiformats varint may take.
pub const MAX_LEN: usize = 9;

/// The largest value a multiformats varint can carry (63 bits).
pub const MAX_VALUE: u64 = (1 << 63) - 1;

/// Scratch space for [`encode`].
pub type Buffer = [u8; 10];

/// Encodes `value` into `buf` and returns the bytes written.
///
/// Values above [`MAX_VALUE`] take 10 bytes, which multiformats decoders (ours included)
/// reject; lengths and ids in libp2p never come near that.
pub fn encode(value: u64, buf: &mut Buffer) -> &[u8] {
    let mut n = value;
    let mut len = 0;
    for slot in buf.iter_mut() {
        // Truncation intended: the low 7 bits.
        #[allow(clippy::cast_possible_truncation)]
        let low = (n & 0x7f) as u8;
        n >>= 7;
        len += 1;
        if n == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    buf.get(..len).unwrap_or(&[])
}

/// Encodes `value` and appends it to `out`.
pub fn encode_into(value: u64, out: &mut Vec<u8>) {
    let mut buf = Buffer::default();
    out.extend_from_slice(encode(value, &mut buf));
}

/// The number of bytes [`encode`] writes for `value`.
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a varint from the start of `bytes`.
///
/// Returns `Ok(Some((value, bytes_used)))` for a complete varint, `Ok(None)` when `bytes`
/// ends before the varint does (feed more), and an error for a varint that is not minimal or
/// is longer than 9 bytes.
pub fn decode(bytes: &[u8]) -> Result<Option<(u64, usize)>, Error> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if i >= MAX_LEN {
            return Err(Error::VarintOverflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(Error::VarintNotMinimal);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= MAX_LEN {
        return Err(Error::VarintOverflow);
    }
    Ok(None)
}

/// Decodes a varint that must be followed by nothing but `rest`: returns the value and the
/// remaining bytes, or an error when `bytes` ends inside the varint.
pub fn decode_prefix(bytes: &[u8]) -> Result<(u64, &[u8]), Error> {
    match decode(bytes)? {
        Some((value, used)) => Ok((value, bytes.get(used..).unwrap_or(&[]))),
        None => Err(Error::UnexpectedEof { what: "varint" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (255, &[0xff, 0x01]),
            (300, &[0xac, 0x02]),
            (16384, &[0x80, 0x80, 0x01]),
            (
                MAX_VALUE,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
        ];
        for (value, bytes) in cases {
            let mut buf = Buffer::default();
            assert_eq!(encode(*value, &mut buf), *bytes, "encode {value}");
            assert_eq!(encoded_len(*value), bytes.len());
            assert_eq!(
                decode(bytes).unwrap(),
                Some((*value, bytes.len())),
                "decode {value}"
            );
        }
    }

    #[test]
    fn rejects_non_minimal() {
        assert!(matches!(
            decode(&[0x81, 0x00]),
            Err(Error::VarintNotMinimal)
        ));
        assert!(matches!(
            decode(&[0x80, 0x00]),
            Err(Error::VarintNotMinimal)
        ));
    }

    #[test]
    fn rejects_overlong() {
        // A 9th byte with the continuation bit set.
        let bytes = [0xff; 9];
        assert!(matches!(decode(&bytes), Err(Error::VarintOverflow)));
        let ten = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(matches!(decode(&ten), Err(Error::VarintOverflow)));
        // u64::MAX encodes to 10 bytes, which decoders refuse.
        let mut buf = Buffer::default();
        assert!(decode(encode(u64::MAX, &mut buf)).is_err());
    }

    #[test]
    fn truncated_needs_more() {
        assert_eq!(decode(&[]).unwrap(), None);
        assert_eq!(decode(&[0x80]).unwrap(), None);
        assert_eq!(decode(&[0xff; 8]).unwrap(), None);
        assert!(matches!(
            decode_prefix(&[0x80]),
            Err(Error::UnexpectedEof { .. })
        ));
    }

    proptest! {
        #[test]
        fn roundtrip(value in 0..=MAX_VALUE, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = Buffer::default();
            let mut bytes = encode(value, &mut buf).to_vec();
            let len = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode(&bytes).unwrap(), Some((value, len)));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode(&bytes);
        }
    }
}
