//! The [`Codec`] trait and the length-prefixed bytes codec.
//!
//! A codec turns whole messages into bytes and back. It never sees a stream: the service
//! reads a request until the remote closes its write side (at most
//! [`Codec::max_request_size`] bytes) and a response until EOF (at most
//! [`Codec::max_response_size`]), then hands the bytes to the codec. So every codec is
//! sans-IO, testable with plain byte slices, and fuzzable.

use lp2p_core::varint;

/// The largest request a codec accepts by default: 1 MiB, rust-libp2p's default for its
/// JSON and CBOR codecs, so the two stacks refuse the same messages.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 1024 * 1024;

/// The largest response a codec accepts by default: 10 MiB, rust-libp2p's default for its
/// JSON and CBOR codecs.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 10 * 1024 * 1024;

/// Why a codec could not encode or decode a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

impl CodecError {
    /// An error with this description.
    pub fn new(what: impl Into<String>) -> CodecError {
        CodecError(what.into())
    }
}

/// How requests and responses of one protocol look on the wire.
///
/// One request per stream: the requester writes the encoded request and closes its write
/// side; the responder writes the encoded response and closes. Encoded messages therefore
/// need no framing of their own (the stream's end delimits them), which is how
/// rust-libp2p's request-response codecs work.
pub trait Codec: Send + Sync + 'static {
    /// What a request is.
    type Request: Send + 'static;
    /// What a response is.
    type Response: Send + 'static;

    /// Appends the encoding of `request` to `out`.
    fn encode_request(&self, request: &Self::Request, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a whole request (all the bytes the requester sent).
    fn decode_request(&self, bytes: &[u8]) -> Result<Self::Request, CodecError>;

    /// Appends the encoding of `response` to `out`.
    fn encode_response(
        &self,
        response: &Self::Response,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError>;

    /// Decodes a whole response (all the bytes the responder sent).
    fn decode_response(&self, bytes: &[u8]) -> Result<Self::Response, CodecError>;

    /// Requests longer than this are refused unread (the stream is reset), and never sent.
    fn max_request_size(&self) -> usize {
        DEFAULT_MAX_REQUEST_SIZE
    }

    /// Responses longer than this are refused (the request fails with
    /// `RequestError::MessageTooLarge`), and never sent.
    fn max_response_size(&self) -> usize {
        DEFAULT_MAX_RESPONSE_SIZE
    }
}

/// Requests and responses are byte strings, each sent as `uvarint(len) || bytes`.
///
/// The length prefix makes an empty message distinguishable from no message at all (a
/// responder that closed without answering).
///
/// ```
/// use lp2p_request_response::{Codec, LengthPrefixed};
///
/// let codec = LengthPrefixed::default();
/// let mut wire = Vec::new();
/// codec.encode_request(&b"hello".to_vec(), &mut wire).unwrap();
/// assert_eq!(wire, b"\x05hello");
/// assert_eq!(codec.decode_request(&wire).unwrap(), b"hello");
/// assert!(codec.decode_request(b"\x06hello").is_err()); // one byte short
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthPrefixed {
    /// See [`Codec::max_request_size`] (the whole encoding, prefix included).
    pub max_request_size: usize,
    /// See [`Codec::max_response_size`] (the whole encoding, prefix included).
    pub max_response_size: usize,
}

impl Default for LengthPrefixed {
    fn default() -> Self {
        LengthPrefixed {
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }
}

impl LengthPrefixed {
    fn encode(message: &[u8], out: &mut Vec<u8>) {
        lp2p_core::framing::encode_frame(message, out);
    }

    fn decode(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        let (len, used) = varint::decode(bytes)
            .map_err(|e| CodecError::new(format!("bad length prefix: {e}")))?
            .ok_or_else(|| CodecError::new("message ends inside its length prefix"))?;
        let body = bytes.get(used..).unwrap_or_default();
        match usize::try_from(len) {
            Ok(len) if len == body.len() => Ok(body.to_vec()),
            _ => Err(CodecError::new(format!(
                "length prefix says {len} bytes, {} followed",
                body.len()
            ))),
        }
    }
}

impl Codec for LengthPrefixed {
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    fn encode_request(&self, request: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        Self::encode(request, out);
        Ok(())
    }

    fn decode_request(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Self::decode(bytes)
    }

    fn encode_response(&self, response: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        Self::encode(response, out);
        Ok(())
    }

    fn decode_response(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Self::decode(bytes)
    }

    fn max_request_size(&self) -> usize {
        self.max_request_size
    }

    fn max_response_size(&self) -> usize {
        self.max_response_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_prefixed_rejects_malformed_input() {
        let codec = LengthPrefixed::default();
        for bad in [
            &b""[..],         // nothing at all
            &b"\x80"[..],     // prefix cut short
            &b"\x80\x00"[..], // non-minimal prefix
            &b"\x02a"[..],    // body too short
            &b"\x01ab"[..],   // trailing bytes
            &[0xff; 12][..],  // prefix overflow
        ] {
            assert!(codec.decode_request(bad).is_err(), "{bad:?}");
            assert!(codec.decode_response(bad).is_err(), "{bad:?}");
        }
        assert_eq!(codec.decode_response(b"\x00").unwrap(), b"");
    }

    proptest! {
        #[test]
        fn length_prefixed_round_trips(message in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let codec = LengthPrefixed::default();
            let mut wire = Vec::new();
            codec.encode_response(&message, &mut wire).unwrap();
            prop_assert_eq!(codec.decode_response(&wire).unwrap(), message);
        }

        #[test]
        fn length_prefixed_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = LengthPrefixed::default().decode_request(&bytes);
        }
    }
}
