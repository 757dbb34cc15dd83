//! Messages: authoring (signing per the signature policy), checking received messages
//! against the policy (signature, `from`/`key` pairs, sequence numbers), and message ids.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use lp2p_core::{Keypair, PeerId, PublicKey};
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::PubsubError;
use crate::proto;
use crate::types::{Message, MessageId, Topic};

pub use crate::codec::SIGNING_PREFIX;

/// Multihash code of the identity hash: such a PeerId inlines its public key.
const IDENTITY_MULTIHASH: u64 = 0;

/// How messages are authored and what received messages must carry.
///
/// The three policies map onto go-libp2p-pubsub's: `StrictSign` (its default),
/// `StrictNoSign` (its `StrictNoSign` policy with an author) and `Anonymous` (its
/// `WithNoAuthor`, which is `StrictNoSign` without `from` and `seqno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authenticity {
    /// Publish with `from`, `seqno` and a signature by the local key (plus `key` when the
    /// PeerId does not inline it). Receive only messages with all of them, verified.
    #[default]
    StrictSign,
    /// Publish with `from` and `seqno` but no signature. Receive only messages without
    /// `signature` and `key`; `from`/`seqno` may be present.
    StrictNoSign,
    /// Publish with none of `from`, `seqno`, `signature`, `key`. Receive only messages
    /// without any of them. Needs a content-based message id function.
    Anonymous,
}

/// Why a received message failed the checks that come before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidMessage {
    /// No `topic`, or a topic that is not UTF-8.
    BadTopic,
    /// StrictSign and no signature.
    MissingSignature,
    /// The signature does not verify.
    InvalidSignature,
    /// StrictSign and no `from`, or a `from` that is not a PeerId.
    BadFrom,
    /// A `key` that does not decode or does not hash to `from`, or a sha256 `from` with no key.
    BadKey,
    /// A `seqno` missing where required, or not 8 bytes (StrictSign), or empty or over
    /// [`MAX_UNSIGNED_SEQNO_LEN`] bytes (StrictNoSign).
    BadSeqno,
    /// A signature or key under StrictNoSign or Anonymous.
    UnexpectedSignature,
    /// `from` or `seqno` under Anonymous.
    UnexpectedAuthInfo,
    /// A message claiming to be ours that we never published.
    SelfOrigin,
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            InvalidMessage::BadTopic => "missing or non-UTF-8 topic",
            InvalidMessage::MissingSignature => "missing signature",
            InvalidMessage::InvalidSignature => "invalid signature",
            InvalidMessage::BadFrom => "missing or invalid from",
            InvalidMessage::BadKey => "key missing, invalid or not matching from",
            InvalidMessage::BadSeqno => "missing or invalid seqno",
            InvalidMessage::UnexpectedSignature => "unexpected signature or key",
            InvalidMessage::UnexpectedAuthInfo => "unexpected from or seqno",
            InvalidMessage::SelfOrigin => "claims to be from us",
        };
        f.write_str(text)
    }
}

/// A function computing a message's id. All peers of a topic must use the same one.
pub type MessageIdFn = Arc<dyn Fn(&Message) -> MessageId + Send + Sync>;

/// The default message id, go-libp2p-pubsub's: the raw bytes of `from` followed by the 8
/// bytes of `seqno`. For a message with neither (Anonymous), the SHA-256 of the data.
pub fn default_message_id(message: &Message) -> MessageId {
    match (message.source, message.sequence_number) {
        (None, None) => content_message_id(message),
        (source, seqno) => {
            let mut id = source.map(PeerId::to_bytes).unwrap_or_default();
            if let Some(seqno) = seqno {
                id.extend_from_slice(&seqno.to_be_bytes());
            }
            MessageId::new(id)
        }
    }
}

/// rust-libp2p's default message id: the base58 text of the author's PeerId followed by the
/// decimal text of the sequence number (UTF-8 bytes). Configure this to gossip with
/// rust-libp2p peers left at their default.
pub fn rust_libp2p_message_id(message: &Message) -> MessageId {
    let mut text = match message.source {
        Some(peer) => peer.to_base58(),
        // rust-libp2p stands in a fixed, empty identity PeerId for a missing author.
        None => PeerId::from_bytes(&[0, 1, 0])
            .map(PeerId::to_base58)
            .unwrap_or_default(),
    };
    text.push_str(&message.sequence_number.unwrap_or_default().to_string());
    MessageId::new(text.into_bytes())
}

/// A content-addressed message id: the SHA-256 of the data. For StrictNoSign/Anonymous
/// topics (every peer must agree on it).
pub fn content_message_id(message: &Message) -> MessageId {
    let digest = Sha256::digest(&message.data);
    MessageId::new(Bytes::copy_from_slice(digest.as_slice()))
}

/// The public key inlined in an identity-multihash PeerId, if it is one.
pub(crate) fn inlined_public_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    PublicKey::try_decode_protobuf(multihash.digest()).ok()
}

/// Builds our own message for `topic`: returns the message and its protobuf encoding.
pub(crate) fn author_message(
    authenticity: Authenticity,
    keypair: &Keypair,
    topic: &Topic,
    data: Bytes,
    seqno: u64,
) -> Result<(Message, Bytes), PubsubError> {
    let local = keypair.public().to_peer_id();
    let (source, sequence_number) = match authenticity {
        Authenticity::StrictSign | Authenticity::StrictNoSign => (Some(local), Some(seqno)),
        Authenticity::Anonymous => (None, None),
    };
    let mut proto = proto::Message {
        from: source.map(|p| Bytes::from(p.to_bytes())),
        data: Some(data.clone()),
        seqno: sequence_number.map(|s| Bytes::copy_from_slice(&s.to_be_bytes())),
        topic: Some(Bytes::copy_from_slice(topic.as_str().as_bytes())),
        signature: None,
        key: None,
    };
    let mut encoded = proto.encode_to_vec();
    if authenticity == Authenticity::StrictSign {
        let mut to_sign = Vec::with_capacity(SIGNING_PREFIX.len() + encoded.len());
        to_sign.extend_from_slice(SIGNING_PREFIX);
        to_sign.extend_from_slice(&encoded);
        let signature = keypair
            .sign(&to_sign)
            .map_err(|e| PubsubError::Signing(e.to_string()))?;
        proto.signature = Some(Bytes::from(signature));
        if inlined_public_key(&local).is_none() {
            proto.key = Some(Bytes::from(keypair.public().encode_protobuf()));
        }
        // Fields are encoded in number order, so this is the unsigned encoding followed by
        // the signature (and key) fields.
        encoded = proto.encode_to_vec();
    }
    let message = Message {
        source,
        data,
        sequence_number,
        topic: topic.clone(),
    };
    Ok((message, Bytes::from(encoded)))
}

/// Checks a received message against the policy, up to (not including) the signature:
/// returns its author and sequence number.
pub(crate) fn check_auth_fields(
    authenticity: Authenticity,
    message: &proto::Message,
) -> Result<(Option<PeerId>, Option<u64>), InvalidMessage> {
    match authenticity {
        Authenticity::StrictSign => {
            if message.signature.is_none() {
                return Err(InvalidMessage::MissingSignature);
            }
            let from = message.from.as_ref().ok_or(InvalidMessage::BadFrom)?;
            let source = PeerId::from_bytes(from).map_err(|_| InvalidMessage::BadFrom)?;
            let seqno = message.seqno.as_ref().ok_or(InvalidMessage::BadSeqno)?;
            Ok((Some(source), Some(parse_seqno(seqno)?)))
        }
        Authenticity::StrictNoSign => {
            if message.signature.is_some() || message.key.is_some() {
                return Err(InvalidMessage::UnexpectedSignature);
            }
            let source = match &message.from {
                Some(from) => Some(PeerId::from_bytes(from).map_err(|_| InvalidMessage::BadFrom)?),
                None => None,
            };
            let seqno = match &message.seqno {
                Some(seqno) => Some(parse_unsigned_seqno(seqno)?),
                None => None,
            };
            Ok((source, seqno))
        }
        Authenticity::Anonymous => {
            if message.signature.is_some() || message.key.is_some() {
                return Err(InvalidMessage::UnexpectedSignature);
            }
            if message.from.is_some() || message.seqno.is_some() {
                return Err(InvalidMessage::UnexpectedAuthInfo);
            }
            Ok((None, None))
        }
    }
}

fn parse_seqno(seqno: &[u8]) -> Result<u64, InvalidMessage> {
    let bytes: [u8; 8] = seqno.try_into().map_err(|_| InvalidMessage::BadSeqno)?;
    Ok(u64::from_be_bytes(bytes))
}

/// The longest `seqno` accepted on an unsigned (StrictNoSign) message. rust-libp2p's floodsub
/// sends 20 random bytes (and no signature); room for that and a little more, not for a
/// peer parking arbitrary data in the field.
pub const MAX_UNSIGNED_SEQNO_LEN: usize = 32;

/// A `seqno` under StrictNoSign: 8 bytes as the spec has it, or (for rust-libp2p's floodsub,
/// which sends 20 random bytes) up to [`MAX_UNSIGNED_SEQNO_LEN`] bytes, of which the last 8
/// stand for it (random bytes stay unique in 64 bits, so message ids built from it do too).
fn parse_unsigned_seqno(seqno: &[u8]) -> Result<u64, InvalidMessage> {
    if seqno.is_empty() || seqno.len() > MAX_UNSIGNED_SEQNO_LEN {
        return Err(InvalidMessage::BadSeqno);
    }
    let tail = seqno.get(seqno.len().saturating_sub(8)..).unwrap_or(seqno);
    let mut bytes = [0u8; 8];
    if let Some(slot) = bytes.get_mut(8 - tail.len()..) {
        slot.copy_from_slice(tail);
    }
    Ok(u64::from_be_bytes(bytes))
}

/// Public keys extracted from identity PeerIds, so that a busy author's key is decoded (and
/// its curve point decompressed) once rather than per message. Bounded: cleared when full.
#[derive(Debug)]
pub(crate) struct KeyCache {
    capacity: usize,
    keys: HashMap<PeerId, PublicKey>,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize) -> KeyCache {
        KeyCache {
            capacity,
            keys: HashMap::new(),
        }
    }

    /// The key inlined in `peer`, if it is an identity PeerId with a valid key.
    fn inlined(&mut self, peer: &PeerId) -> Option<&PublicKey> {
        if !self.keys.contains_key(peer) {
            let key = inlined_public_key(peer)?;
            if self.keys.len() >= self.capacity {
                self.keys.clear();
            }
            self.keys.insert(*peer, key);
        }
        self.keys.get(peer)
    }
}

/// Verifies a StrictSign message's signature: the key comes from `key` (which must hash to
/// `from`) or is extracted from an identity `from`. `scratch` is reused for the signed bytes.
pub(crate) fn verify_signature(
    raw: &[u8],
    message: &proto::Message,
    source: &PeerId,
    keys: &mut KeyCache,
    scratch: &mut Vec<u8>,
) -> Result<(), InvalidMessage> {
    let signature = message
        .signature
        .as_ref()
        .ok_or(InvalidMessage::MissingSignature)?;
    let explicit;
    let key = match &message.key {
        Some(key) => {
            explicit = PublicKey::try_decode_protobuf(key).map_err(|_| InvalidMessage::BadKey)?;
            if explicit.to_peer_id() != *source {
                return Err(InvalidMessage::BadKey);
            }
            &explicit
        }
        None => keys.inlined(source).ok_or(InvalidMessage::BadKey)?,
    };
    codec::signed_bytes(raw, scratch).map_err(|_| InvalidMessage::InvalidSignature)?;
    if key.verify(scratch, signature) {
        Ok(())
    } else {
        Err(InvalidMessage::InvalidSignature)
    }
}

/// Test helpers shared by the crate's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use lp2p_core::Keypair;

    /// The Ed25519 key of wire-formats.md 30.4 (seed || public).
    const SEED_AND_PUBLIC: &str = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d\
                                   1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";

    /// Hex (whitespace ignored) to bytes.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The 30.4 Ed25519 keypair.
    pub(crate) fn vector_keypair() -> Keypair {
        let bytes = hex(SEED_AND_PUBLIC);
        Keypair::ed25519_from_bytes(bytes[..32].to_vec()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unsigned_seqnos_of_other_lengths() {
        use super::{InvalidMessage, parse_unsigned_seqno};
        assert_eq!(parse_unsigned_seqno(&7u64.to_be_bytes()), Ok(7));
        let mut twenty = [0xaa; 20];
        twenty[12..].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(parse_unsigned_seqno(&twenty), Ok(0x0102_0304_0506_0708));
        assert_eq!(parse_unsigned_seqno(&[1, 2]), Ok(0x0102));
        assert_eq!(parse_unsigned_seqno(&[]), Err(InvalidMessage::BadSeqno));
        assert_eq!(
            parse_unsigned_seqno(&[0; 33]),
            Err(InvalidMessage::BadSeqno)
        );
    }

    use super::tests_support::{hex, vector_keypair};
    use super::*;

    #[test]
    fn signs_the_30_10_vector_byte_for_byte() {
        let keypair = vector_keypair();
        let (message, encoded) = author_message(
            Authenticity::StrictSign,
            &keypair,
            &Topic::new("test"),
            Bytes::from_static(b"hello"),
            1,
        )
        .unwrap();
        let unsigned = hex(
            "0a260024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf601
             0f0e42d474fce27e120568656c6c6f1a080000000000000001220474657374",
        );
        let signature = hex(
            "f05e62a21b5f1f89b4ab356feb34c493746a2af8ef2fa03b9fd4956fb40d3c27
             9b1eae5153c6b28dce3b2f9bed546dc1cfd5a71513af0aa38ee38d31675ac30f",
        );
        let mut expected = unsigned.clone();
        expected.push(0x2a);
        expected.push(0x40);
        expected.extend_from_slice(&signature);
        assert_eq!(&encoded[..], &expected[..]);

        // The signed bytes are the prefix and the unsigned encoding.
        let mut signed = Vec::new();
        codec::signed_bytes(&encoded, &mut signed).unwrap();
        assert_eq!(&signed[..14], b"libp2p-pubsub:");
        assert_eq!(&signed[14..], &unsigned[..]);

        // Both message ids of the vector.
        assert_eq!(
            default_message_id(&message).as_bytes(),
            &hex(
                "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e
                 42d474fce27e0000000000000001"
            )[..]
        );
        assert_eq!(
            rust_libp2p_message_id(&message).as_bytes(),
            b"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq1"
        );
    }

    #[test]
    fn verifies_and_rejects_signatures() {
        let keypair = vector_keypair();
        let (_, encoded) = author_message(
            Authenticity::StrictSign,
            &keypair,
            &Topic::new("test"),
            Bytes::from_static(b"hello"),
            7,
        )
        .unwrap();
        let decoded = proto::Message::decode(encoded.clone()).unwrap();
        let (source, seqno) = check_auth_fields(Authenticity::StrictSign, &decoded).unwrap();
        let source = source.unwrap();
        assert_eq!(seqno, Some(7));
        let mut scratch = Vec::new();
        let mut keys = KeyCache::new(1);
        verify_signature(&encoded, &decoded, &source, &mut keys, &mut scratch).unwrap();
        // Cached, and the cache stays within its capacity.
        verify_signature(&encoded, &decoded, &source, &mut keys, &mut scratch).unwrap();
        assert!(
            keys.inlined(&Keypair::generate_ed25519().public().to_peer_id())
                .is_some()
        );
        assert_eq!(keys.keys.len(), 1);

        // A flipped data byte breaks the signature.
        let mut tampered = decoded.clone();
        tampered.data = Some(Bytes::from_static(b"hellp"));
        let raw = tampered.encode_to_vec();
        assert_eq!(
            verify_signature(
                &raw,
                &tampered,
                &source,
                &mut KeyCache::new(4),
                &mut scratch
            ),
            Err(InvalidMessage::InvalidSignature)
        );

        // A key that belongs to someone else.
        let other = Keypair::generate_ed25519();
        let mut wrong_key = decoded.clone();
        wrong_key.key = Some(Bytes::from(other.public().encode_protobuf()));
        let raw = wrong_key.encode_to_vec();
        assert_eq!(
            verify_signature(
                &raw,
                &wrong_key,
                &source,
                &mut KeyCache::new(4),
                &mut scratch
            ),
            Err(InvalidMessage::BadKey)
        );

        // The right key given explicitly is fine.
        let mut right_key = decoded.clone();
        right_key.key = Some(Bytes::from(keypair.public().encode_protobuf()));
        let raw = right_key.encode_to_vec();
        verify_signature(
            &raw,
            &right_key,
            &source,
            &mut KeyCache::new(4),
            &mut scratch,
        )
        .unwrap();

        // A different author in `from` with the original signature.
        let mut wrong_from = decoded.clone();
        let other_id = other.public().to_peer_id();
        wrong_from.from = Some(Bytes::from(other_id.to_bytes()));
        let raw = wrong_from.encode_to_vec();
        assert_eq!(
            verify_signature(
                &raw,
                &wrong_from,
                &other_id,
                &mut KeyCache::new(4),
                &mut scratch
            ),
            Err(InvalidMessage::InvalidSignature)
        );

        // A garbage key.
        let mut garbage = decoded;
        garbage.key = Some(Bytes::from_static(b"\x08\x01\x12\x01x"));
        let raw = garbage.encode_to_vec();
        assert_eq!(
            verify_signature(&raw, &garbage, &source, &mut KeyCache::new(4), &mut scratch),
            Err(InvalidMessage::BadKey)
        );
    }

    #[test]
    fn sha256_peer_ids_need_a_key() {
        // A sha256 multihash PeerId cannot inline a key.
        let peer = PeerId::from_bytes(&hex(
            "12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9",
        ))
        .unwrap();
        assert!(inlined_public_key(&peer).is_none());
        let message = proto::Message {
            from: Some(Bytes::from(peer.to_bytes())),
            seqno: Some(Bytes::from_static(&[0; 8])),
            topic: Some(Bytes::from_static(b"t")),
            signature: Some(Bytes::from_static(&[0; 64])),
            ..Default::default()
        };
        let raw = message.encode_to_vec();
        assert_eq!(
            verify_signature(
                &raw,
                &message,
                &peer,
                &mut KeyCache::new(4),
                &mut Vec::new()
            ),
            Err(InvalidMessage::BadKey)
        );
    }

    #[test]
    fn policy_checks() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let full = proto::Message {
            from: Some(Bytes::from(peer.to_bytes())),
            data: Some(Bytes::from_static(b"x")),
            seqno: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 9])),
            topic: Some(Bytes::from_static(b"t")),
            signature: Some(Bytes::from_static(b"s")),
            key: None,
        };
        let strict = Authenticity::StrictSign;
        assert!(check_auth_fields(strict, &full).is_ok());
        let no_sig = proto::Message {
            signature: None,
            ..full.clone()
        };
        assert_eq!(
            check_auth_fields(strict, &no_sig),
            Err(InvalidMessage::MissingSignature)
        );
        let no_from = proto::Message {
            from: None,
            ..full.clone()
        };
        assert_eq!(
            check_auth_fields(strict, &no_from),
            Err(InvalidMessage::BadFrom)
        );
        let bad_from = proto::Message {
            from: Some(Bytes::from_static(b"nope")),
            ..full.clone()
        };
        assert_eq!(
            check_auth_fields(strict, &bad_from),
            Err(InvalidMessage::BadFrom)
        );
        let short_seqno = proto::Message {
            seqno: Some(Bytes::from_static(&[1, 2, 3])),
            ..full.clone()
        };
        assert_eq!(
            check_auth_fields(strict, &short_seqno),
            Err(InvalidMessage::BadSeqno)
        );
        let no_seqno = proto::Message {
            seqno: None,
            ..full.clone()
        };
        assert_eq!(
            check_auth_fields(strict, &no_seqno),
            Err(InvalidMessage::BadSeqno)
        );

        let nosign = Authenticity::StrictNoSign;
        assert_eq!(
            check_auth_fields(nosign, &full),
            Err(InvalidMessage::UnexpectedSignature)
        );
        assert_eq!(
            check_auth_fields(nosign, &no_sig).unwrap(),
            (Some(peer), Some(9))
        );
        let with_key = proto::Message {
            key: Some(Bytes::from_static(b"k")),
            ..no_sig.clone()
        };
        assert_eq!(
            check_auth_fields(nosign, &with_key),
            Err(InvalidMessage::UnexpectedSignature)
        );

        let anon = Authenticity::Anonymous;
        assert_eq!(
            check_auth_fields(anon, &no_sig),
            Err(InvalidMessage::UnexpectedAuthInfo)
        );
        let bare = proto::Message {
            data: Some(Bytes::from_static(b"x")),
            topic: Some(Bytes::from_static(b"t")),
            ..Default::default()
        };
        assert_eq!(check_auth_fields(anon, &bare).unwrap(), (None, None));
        assert_eq!(check_auth_fields(nosign, &bare).unwrap(), (None, None));
    }

    #[test]
    fn unsigned_policies_author_what_they_say() {
        let keypair = Keypair::generate_ed25519();
        let topic = Topic::new("t");
        let (message, encoded) = author_message(
            Authenticity::StrictNoSign,
            &keypair,
            &topic,
            Bytes::from_static(b"d"),
            3,
        )
        .unwrap();
        let decoded = proto::Message::decode(encoded).unwrap();
        assert!(decoded.signature.is_none() && decoded.key.is_none());
        assert_eq!(message.source, Some(keypair.public().to_peer_id()));
        assert_eq!(message.sequence_number, Some(3));

        let (message, encoded) = author_message(
            Authenticity::Anonymous,
            &keypair,
            &topic,
            Bytes::from_static(b"d"),
            3,
        )
        .unwrap();
        let decoded = proto::Message::decode(encoded).unwrap();
        assert_eq!(
            decoded,
            proto::Message {
                data: Some(Bytes::from_static(b"d")),
                topic: Some(Bytes::from_static(b"t")),
                ..Default::default()
            }
        );
        assert_eq!(message.source, None);
        // The default id falls back to the content hash for anonymous messages.
        assert_eq!(default_message_id(&message), content_message_id(&message));
        assert_eq!(content_message_id(&message).as_bytes().len(), 32);
    }
}
