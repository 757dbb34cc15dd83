//! The CBOR codec (feature `cbor`): requests and responses are `serde` types written with
//! `cbor4ii`'s serde encoding, byte for byte what rust-libp2p's `request_response::cbor` sends.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, DEFAULT_MAX_REQUEST_SIZE, DEFAULT_MAX_RESPONSE_SIZE};

/// A codec for `Req`/`Resp` as CBOR (no framing: the stream's end delimits it).
///
/// ```
/// use lp2p_request_response::{Codec, Cbor};
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Greet { name: String }
///
/// let codec = Cbor::<Greet, Greet>::default();
/// let mut wire = Vec::new();
/// codec.encode_request(&Greet { name: "ada".into() }, &mut wire).unwrap();
/// // A map of one entry: text "name" => text "ada".
/// assert_eq!(wire, b"\xa1\x64name\x63ada");
/// assert_eq!(codec.decode_request(&wire).unwrap(), Greet { name: "ada".into() });
/// assert!(codec.decode_request(&wire[..5]).is_err());
/// ```
pub struct Cbor<Req, Resp> {
    max_request_size: usize,
    max_response_size: usize,
    types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Cbor<Req, Resp> {
    /// Sets the largest request accepted and sent (default 1 MiB, as rust-libp2p).
    #[must_use]
    pub fn with_max_request_size(mut self, max: usize) -> Self {
        self.max_request_size = max;
        self
    }

    /// Sets the largest response accepted and sent (default 10 MiB, as rust-libp2p).
    #[must_use]
    pub fn with_max_response_size(mut self, max: usize) -> Self {
        self.max_response_size = max;
        self
    }
}

impl<Req, Resp> Default for Cbor<Req, Resp> {
    fn default() -> Self {
        Cbor {
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for Cbor<Req, Resp> {
    fn clone(&self) -> Self {
        Cbor {
            max_request_size: self.max_request_size,
            max_response_size: self.max_response_size,
            types: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for Cbor<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cbor")
            .field("max_request_size", &self.max_request_size)
            .field("max_response_size", &self.max_response_size)
            .finish()
    }
}

fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let encoded = cbor4ii::serde::to_vec(std::mem::take(out), value)
        .map_err(|e| CodecError::new(format!("CBOR encoding: {e}")))?;
    *out = encoded;
    Ok(())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| CodecError::new(format!("invalid CBOR: {e}")))
}

impl<Req, Resp> Codec for Cbor<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + 'static,
    Resp: Serialize + DeserializeOwned + Send + 'static,
{
    type Request = Req;
    type Response = Resp;

    fn encode_request(&self, request: &Req, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode(request, out)
    }

    fn decode_request(&self, bytes: &[u8]) -> Result<Req, CodecError> {
        decode(bytes)
    }

    fn encode_response(&self, response: &Resp, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode(response, out)
    }

    fn decode_response(&self, bytes: &[u8]) -> Result<Resp, CodecError> {
        decode(bytes)
    }

    fn max_request_size(&self) -> usize {
        self.max_request_size
    }

    fn max_response_size(&self) -> usize {
        self.max_response_size
    }
}
