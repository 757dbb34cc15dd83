//! RPC bytes in: a checked scan of the top-level RPC fields, then protobuf decoding of each
//! part. Messages keep their raw bytes (a zero-copy slice of the RPC), which is what a
//! signature covers and what a forward re-sends, so a message is never re-encoded.
//!
//! The scan runs over the whole RPC before anything is acted on: a malformed RPC is dropped
//! as a unit.

use bytes::Bytes;
use prost::Message as _;

use crate::proto;

/// The prefix of the bytes a pubsub signature covers (libp2p/specs pubsub/README.md). It
/// lives with the codec, which builds the signed bytes of received messages; `message`
/// re-exports it for authoring (so the two files import one way only).
pub const SIGNING_PREFIX: &[u8] = b"libp2p-pubsub:";

/// Protobuf wire types.
const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// Field numbers of `RPC`.
const RPC_SUBSCRIPTIONS: u64 = 1;
const RPC_PUBLISH: u64 = 2;
const RPC_CONTROL: u64 = 3;

/// Field numbers of `Message` that a signature does not cover.
const MESSAGE_SIGNATURE: u64 = 5;
const MESSAGE_KEY: u64 = 6;

/// What is wrong with an RPC's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RpcDecodeError {
    /// The protobuf framing itself is broken (bad varint, truncated field, group wire type).
    Framing(&'static str),
    /// A known field has the wrong wire type.
    WireType(u64),
    /// A part decoded badly.
    Part(&'static str, String),
}

impl std::fmt::Display for RpcDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcDecodeError::Framing(what) => write!(f, "broken protobuf framing: {what}"),
            RpcDecodeError::WireType(field) => write!(f, "field {field} has the wrong wire type"),
            RpcDecodeError::Part(part, err) => write!(f, "bad {part}: {err}"),
        }
    }
}

/// A decoded RPC. Kept in the core and reused, so its vectors keep their capacity.
#[derive(Debug, Default)]
pub(crate) struct DecodedRpc {
    pub(crate) subscriptions: Vec<proto::rpc::SubOpts>,
    /// Each message's raw bytes and its decoding.
    pub(crate) messages: Vec<(Bytes, proto::Message)>,
    pub(crate) control: Option<proto::ControlMessage>,
}

impl DecodedRpc {
    pub(crate) fn clear(&mut self) {
        self.subscriptions.clear();
        self.messages.clear();
        self.control = None;
    }
}

/// A protobuf varint: up to 10 bytes, LEB128 (protobuf allows non-minimal encodings).
/// Returns the value and the bytes used, or `None` when `bytes` ends first or it is too long.
pub(crate) fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        let shift = 7u32.checked_mul(u32::try_from(i).ok()?)?;
        value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some((value, i.checked_add(1)?));
        }
    }
    None
}

/// One top-level protobuf field: its number, wire type, and the byte range of its value
/// (for length-delimited fields, the payload without the length) and of the whole field.
struct Field {
    number: u64,
    wire_type: u64,
    value: std::ops::Range<usize>,
    whole: std::ops::Range<usize>,
}

/// Iterates over the fields of one protobuf message, checking each against the buffer.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, pos: 0 }
    }
}

impl Iterator for Fields<'_> {
    type Item = Result<Field, RpcDecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        Some(self.next_field(rest))
    }
}

impl Fields<'_> {
    fn next_field(&mut self, rest: &[u8]) -> Result<Field, RpcDecodeError> {
        let start = self.pos;
        let (key, key_len) = read_varint(rest).ok_or(RpcDecodeError::Framing("field key"))?;
        let number = key >> 3;
        let wire_type = key & 7;
        if number == 0 {
            return Err(RpcDecodeError::Framing("field number 0"));
        }
        let after_key = rest.get(key_len..).unwrap_or(&[]);
        let (value_offset, value_len) = match wire_type {
            WIRE_VARINT => {
                let (_, used) =
                    read_varint(after_key).ok_or(RpcDecodeError::Framing("varint value"))?;
                (0, used)
            }
            WIRE_FIXED64 => (0, 8),
            WIRE_FIXED32 => (0, 4),
            WIRE_LEN => {
                let (len, used) =
                    read_varint(after_key).ok_or(RpcDecodeError::Framing("field length"))?;
                let len = usize::try_from(len).map_err(|_| RpcDecodeError::Framing("length"))?;
                (used, len)
            }
            _ => return Err(RpcDecodeError::Framing("unsupported wire type")),
        };
        let value_start = start
            .checked_add(key_len)
            .and_then(|p| p.checked_add(value_offset))
            .ok_or(RpcDecodeError::Framing("length overflow"))?;
        let value_end = value_start
            .checked_add(value_len)
            .ok_or(RpcDecodeError::Framing("length overflow"))?;
        if value_end > self.bytes.len() {
            return Err(RpcDecodeError::Framing("field runs past the end"));
        }
        self.pos = value_end;
        Ok(Field {
            number,
            wire_type,
            value: value_start..value_end,
            whole: start..value_end,
        })
    }
}

/// Decodes an RPC body into `out` (cleared first). Unknown fields are skipped; a malformed
/// part fails the whole RPC.
pub(crate) fn decode_rpc(body: &Bytes, out: &mut DecodedRpc) -> Result<(), RpcDecodeError> {
    out.clear();
    for field in Fields::new(body) {
        let field = field?;
        let known = matches!(field.number, RPC_SUBSCRIPTIONS | RPC_PUBLISH | RPC_CONTROL);
        if !known {
            continue;
        }
        if field.wire_type != WIRE_LEN {
            return Err(RpcDecodeError::WireType(field.number));
        }
        let value = body.slice(field.value);
        match field.number {
            RPC_SUBSCRIPTIONS => {
                let sub = proto::rpc::SubOpts::decode(value)
                    .map_err(|e| RpcDecodeError::Part("subscription", e.to_string()))?;
                out.subscriptions.push(sub);
            }
            RPC_PUBLISH => {
                let message = proto::Message::decode(value.clone())
                    .map_err(|e| RpcDecodeError::Part("message", e.to_string()))?;
                out.messages.push((value, message));
            }
            _ => {
                // Repeated occurrences of an embedded message merge (protobuf semantics).
                let control = out.control.get_or_insert_with(Default::default);
                control
                    .merge(value)
                    .map_err(|e| RpcDecodeError::Part("control message", e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// Appends the bytes a pubsub signature covers: `libp2p-pubsub:` and the message's encoding
/// with its `signature` and `key` fields left out, every other field exactly as received.
pub(crate) fn signed_bytes(raw_message: &[u8], out: &mut Vec<u8>) -> Result<(), RpcDecodeError> {
    out.clear();
    out.extend_from_slice(SIGNING_PREFIX);
    for field in Fields::new(raw_message) {
        let field = field?;
        if field.number == MESSAGE_SIGNATURE || field.number == MESSAGE_KEY {
            continue;
        }
        out.extend_from_slice(raw_message.get(field.whole).unwrap_or(&[]));
    }
    Ok(())
}

/// The encoded size of a length-delimited field with a one-byte key and `inner` bytes.
pub(crate) fn field_len(inner: usize) -> usize {
    1usize
        .saturating_add(prost::encoding::encoded_len_varint(inner as u64))
        .saturating_add(inner)
}

/// Appends a length-delimited field (one-byte key for `number` < 16) holding `value`.
pub(crate) fn put_len_field(number: u32, value: &[u8], out: &mut Vec<u8>) {
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// Appends an embedded message field.
pub(crate) fn put_message_field<M: prost::Message>(number: u32, message: &M, out: &mut Vec<u8>) {
    prost::encoding::message::encode(number, message, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rpc_bytes(rpc: &proto::Rpc) -> Bytes {
        Bytes::from(rpc.encode_to_vec())
    }

    #[test]
    fn decodes_all_parts_and_keeps_raw_messages() {
        let message = proto::Message {
            from: Some(Bytes::from_static(b"peer")),
            data: Some(Bytes::from_static(b"hello")),
            seqno: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 1])),
            topic: Some(Bytes::from_static(b"t")),
            signature: None,
            key: None,
        };
        let rpc = proto::Rpc {
            subscriptions: vec![proto::rpc::SubOpts {
                subscribe: Some(true),
                topic_id: Some("t".into()),
            }],
            publish: vec![message.clone(), message.clone()],
            control: Some(proto::ControlMessage {
                graft: vec![proto::ControlGraft {
                    topic_id: Some("t".into()),
                }],
                ..Default::default()
            }),
        };
        let body = rpc_bytes(&rpc);
        let mut out = DecodedRpc::default();
        decode_rpc(&body, &mut out).unwrap();
        assert_eq!(out.subscriptions, rpc.subscriptions);
        assert_eq!(out.messages.len(), 2);
        assert_eq!(out.messages[0].1, message);
        assert_eq!(&out.messages[0].0[..], &message.encode_to_vec()[..]);
        assert_eq!(out.control, rpc.control);
    }

    #[test]
    fn skips_unknown_fields_and_merges_control() {
        let mut body = Vec::new();
        // Unknown varint field 9, unknown length-delimited field 10, a fixed32 field 11
        // and a fixed64 field 12.
        body.extend_from_slice(&[0x48, 0x96, 0x01, 0x52, 0x02, b'h', b'i']);
        body.extend_from_slice(&[0x5d, 1, 2, 3, 4, 0x61, 1, 2, 3, 4, 5, 6, 7, 8]);
        let c1 = proto::ControlMessage {
            graft: vec![proto::ControlGraft {
                topic_id: Some("a".into()),
            }],
            ..Default::default()
        };
        let c2 = proto::ControlMessage {
            prune: vec![proto::ControlPrune {
                topic_id: Some("b".into()),
                peers: vec![],
                backoff: Some(10),
            }],
            ..Default::default()
        };
        put_message_field(3, &c1, &mut body);
        put_message_field(3, &c2, &mut body);
        // An experimental extension field with a 4-byte key.
        prost::encoding::encode_key(
            0x0020_0000,
            prost::encoding::WireType::LengthDelimited,
            &mut body,
        );
        body.extend_from_slice(&[1, 0]);
        let mut out = DecodedRpc::default();
        decode_rpc(&Bytes::from(body), &mut out).unwrap();
        let control = out.control.unwrap();
        assert_eq!(control.graft, c1.graft);
        assert_eq!(control.prune, c2.prune);
    }

    #[test]
    fn rejects_broken_framing() {
        let cases: &[&[u8]] = &[
            &[0x12],             // publish key, no length
            &[0x12, 0x05, 1, 2], // truncated message
            &[0x12, 0x80],       // truncated length varint
            &[0x0b],             // group start wire type
            &[0x10, 0x01],       // publish with varint wire type
            &[0x00, 0x00],       // field number 0
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[0x1a, 0x02, 0x0a, 0x05], // control with a truncated ihave
        ];
        for bytes in cases {
            let mut out = DecodedRpc::default();
            assert!(
                decode_rpc(&Bytes::copy_from_slice(bytes), &mut out).is_err(),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn signed_bytes_drop_signature_and_key_only() {
        let message = proto::Message {
            from: Some(Bytes::from_static(b"f")),
            data: Some(Bytes::from_static(b"d")),
            seqno: None,
            topic: Some(Bytes::from_static(b"t")),
            signature: Some(Bytes::from_static(b"sig")),
            key: Some(Bytes::from_static(b"key")),
        };
        let mut raw = message.encode_to_vec();
        // An unknown field after the key is covered by the signature.
        raw.extend_from_slice(&[0x3a, 0x01, b'x']);
        let mut out = Vec::new();
        signed_bytes(&raw, &mut out).unwrap();
        let unsigned = proto::Message {
            signature: None,
            key: None,
            ..message
        };
        let mut expected = b"libp2p-pubsub:".to_vec();
        expected.extend_from_slice(&unsigned.encode_to_vec());
        expected.extend_from_slice(&[0x3a, 0x01, b'x']);
        assert_eq!(out, expected);
    }

    #[test]
    fn field_len_matches_prost() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 1 << 20] {
            let value = vec![0u8; n];
            let mut out = Vec::new();
            put_len_field(2, &value, &mut out);
            assert_eq!(out.len(), field_len(n));
        }
    }

    #[test]
    fn varints() {
        assert_eq!(read_varint(&[0x96, 0x01]), Some((150, 2)));
        // Non-minimal encodings are valid protobuf.
        assert_eq!(read_varint(&[0x80, 0x00]), Some((0, 2)));
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0xff; 11]), None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut out = DecodedRpc::default();
            let _ = decode_rpc(&Bytes::from(bytes.clone()), &mut out);
            let mut signed = Vec::new();
            let _ = signed_bytes(&bytes, &mut signed);
        }

        #[test]
        fn roundtrips_prost_rpcs(
            topics in proptest::collection::vec("[a-z]{0,8}", 0..4),
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        ) {
            let rpc = proto::Rpc {
                subscriptions: topics.iter().map(|t| proto::rpc::SubOpts { subscribe: Some(true), topic_id: Some(t.clone()) }).collect(),
                publish: payloads.iter().map(|p| proto::Message { data: Some(Bytes::from(p.clone())), topic: Some(Bytes::from_static(b"t")), ..Default::default() }).collect(),
                control: None,
            };
            let mut out = DecodedRpc::default();
            decode_rpc(&rpc_bytes(&rpc), &mut out).unwrap();
            prop_assert_eq!(out.subscriptions, rpc.subscriptions);
            let decoded: Vec<_> = out.messages.into_iter().map(|(_, m)| m).collect();
            prop_assert_eq!(decoded, rpc.publish);
        }
    }
}
