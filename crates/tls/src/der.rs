//! The libp2p extension's value, `SignedKey ::= SEQUENCE { publicKey OCTET STRING,
//! signature OCTET STRING }`, in strict DER (definite, minimal lengths; nothing trailing).
//!
//! Small enough to write by hand, which keeps an ASN.1 framework off the one decoder that
//! sees remote bytes before any signature is checked.

use crate::TlsError;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OCTET_STRING: u8 = 0x04;

/// The longest content length we decode: two bytes of long-form length (65535). A
/// certificate arrives in TLS handshake messages, so no legitimate `SignedKey` (an RSA-8192
/// host key and its signature are about 2 KiB) comes near it.
const MAX_DER_LEN: usize = 0xffff;

/// The decoded `SignedKey`: the protobuf-encoded host public key and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedKey<'a> {
    /// The host key, protobuf `PublicKey { Type, Data }`.
    pub public_key: &'a [u8],
    /// The host key's signature over `"libp2p-tls-handshake:" ‖ certificate SPKI`.
    pub signature: &'a [u8],
}

impl<'a> SignedKey<'a> {
    /// Decodes a DER `SignedKey`; anything else (BER forms, extra elements, trailing bytes) is
    /// [`TlsError::MalformedExtension`].
    pub fn decode(der: &'a [u8]) -> Result<SignedKey<'a>, TlsError> {
        let (content, rest) = read_tlv(der, TAG_SEQUENCE)?;
        if !rest.is_empty() {
            return Err(TlsError::MalformedExtension(
                "bytes after the SignedKey sequence",
            ));
        }
        let (public_key, content) = read_tlv(content, TAG_OCTET_STRING)?;
        let (signature, content) = read_tlv(content, TAG_OCTET_STRING)?;
        if !content.is_empty() {
            return Err(TlsError::MalformedExtension(
                "extra elements in the SignedKey sequence",
            ));
        }
        Ok(SignedKey {
            public_key,
            signature,
        })
    }

    /// Encodes as DER.
    pub fn encode(&self) -> Vec<u8> {
        let inner_len =
            tlv_len(self.public_key.len()).saturating_add(tlv_len(self.signature.len()));
        let mut out = Vec::with_capacity(tlv_len(inner_len));
        out.push(TAG_SEQUENCE);
        push_len(&mut out, inner_len);
        out.push(TAG_OCTET_STRING);
        push_len(&mut out, self.public_key.len());
        out.extend_from_slice(self.public_key);
        out.push(TAG_OCTET_STRING);
        push_len(&mut out, self.signature.len());
        out.extend_from_slice(self.signature);
        out
    }
}

/// The encoded size of a tag-length-value with `len` bytes of content.
fn tlv_len(len: usize) -> usize {
    let header = match len {
        0..=0x7f => 2,
        0x80..=0xff => 3,
        0x100..=0xffff => 4,
        0x1_0000..=0xff_ffff => 5,
        _ => 6,
    };
    len.saturating_add(header)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Short form: the branch checked that it fits in 7 bits.
        out.push(u8::try_from(len).unwrap_or_default());
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    // At most 8 significant bytes, so the count fits the low bits of 0x80 | n.
    out.push(0x80 | u8::try_from(significant.len()).unwrap_or(8));
    out.extend_from_slice(significant);
}

/// Reads one tag-length-value with the expected tag; returns its content and what follows.
fn read_tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), TlsError> {
    let (&found, rest) = input
        .split_first()
        .ok_or(TlsError::MalformedExtension("truncated: missing tag"))?;
    if found != tag {
        return Err(TlsError::MalformedExtension(if tag == TAG_SEQUENCE {
            "not a SEQUENCE"
        } else {
            "element is not an OCTET STRING"
        }));
    }
    let (&first, rest) = rest
        .split_first()
        .ok_or(TlsError::MalformedExtension("truncated: missing length"))?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest
                .split_first()
                .ok_or(TlsError::MalformedExtension("truncated length"))?;
            if b < 0x80 {
                return Err(TlsError::MalformedExtension("length not minimally encoded"));
            }
            (usize::from(b), rest)
        }
        0x82 => {
            let (bytes, rest) = rest
                .split_at_checked(2)
                .ok_or(TlsError::MalformedExtension("truncated length"))?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x100 {
                return Err(TlsError::MalformedExtension("length not minimally encoded"));
            }
            (len, rest)
        }
        0x80 => {
            return Err(TlsError::MalformedExtension(
                "indefinite length (BER, not DER)",
            ));
        }
        _ => return Err(TlsError::MalformedExtension("length too large")),
    };
    debug_assert!(len <= MAX_DER_LEN);
    rest.split_at_checked(len)
        .ok_or(TlsError::MalformedExtension(
            "truncated: content shorter than its length",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_short_and_long_lengths() {
        for (pk, sig) in [
            (0usize, 0usize),
            (36, 64),
            (127, 128),
            (300, 255),
            (1200, 600),
        ] {
            let pk = vec![0xab; pk];
            let sig = vec![0xcd; sig];
            let key = SignedKey {
                public_key: &pk,
                signature: &sig,
            };
            let der = key.encode();
            assert_eq!(SignedKey::decode(&der).unwrap(), key);
        }
    }

    #[test]
    fn known_encoding() {
        let der = SignedKey {
            public_key: b"ab",
            signature: b"c",
        }
        .encode();
        assert_eq!(der, [0x30, 7, 0x04, 2, b'a', b'b', 0x04, 1, b'c']);
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "truncated: missing tag"),
            (&[0x31, 0], "not a SEQUENCE"),
            (&[0x30], "truncated: missing length"),
            (&[0x30, 0x80, 0, 0], "indefinite length (BER, not DER)"),
            (&[0x30, 0x81, 0x05], "length not minimally encoded"),
            (&[0x30, 0x82, 0x00, 0x10], "length not minimally encoded"),
            (&[0x30, 0x83, 1, 0, 0], "length too large"),
            (
                &[0x30, 5, 0x04, 0],
                "truncated: content shorter than its length",
            ),
            (&[0x30, 2, 0x04, 0], "truncated: missing tag"),
            (
                &[0x30, 4, 0x04, 0, 0x02, 0],
                "element is not an OCTET STRING",
            ),
            (
                &[0x30, 6, 0x04, 0, 0x04, 0, 0x04, 0],
                "extra elements in the SignedKey sequence",
            ),
            (
                &[0x30, 4, 0x04, 0, 0x04, 0, 0xff],
                "bytes after the SignedKey sequence",
            ),
        ];
        for (input, want) in cases {
            match SignedKey::decode(input) {
                Err(TlsError::MalformedExtension(what)) => assert_eq!(what, *want, "{input:02x?}"),
                other => panic!("{input:02x?}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedKey::decode(&bytes);
        }

        #[test]
        fn encode_decode(pk in proptest::collection::vec(any::<u8>(), 0..2000),
                         sig in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let key = SignedKey { public_key: &pk, signature: &sig };
            let der = key.encode();
            prop_assert_eq!(SignedKey::decode(&der).unwrap(), key);
        }
    }
}
