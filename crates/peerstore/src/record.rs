//! Signed envelopes (libp2p/specs RFC 0002) and the peer records they carry (RFC 0003).
//!
//! An envelope carries an opaque payload, a type hint and a signature by the issuer's
//! identity key over `uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
//! uvarint(len(payload)) || payload`. The domain is never sent: the verifier supplies the one
//! it expects for its use, so a signature made for one purpose cannot be replayed for another.
//!
//! A [`PeerRecord`] is a peer's signed statement of its addresses. We sign with the domain
//! `libp2p-peer-record` and payload type `03 01` that go- and js-libp2p use (the multicodec
//! `libp2p-peer-record` as two big-endian bytes; rust-libp2p calls it the "interop" format).
//! RFC 0003 still names `libp2p-routing-state` / `/libp2p/routing-state-record`, and
//! rust-libp2p 0.57's identify signs and verifies only that legacy pair, so
//! [`PeerRecord::from_envelope`] accepts both and [`PeerRecord::seal_as`] can produce either.
//!
//! Identify and pubsub peer exchange both use this module, so there is one verifier.
//!
//! ```
//! use lp2p_core::Keypair;
//! use lp2p_peerstore::record::{PeerRecord, RecordError};
//!
//! let key = Keypair::generate_ed25519();
//! let peer = key.public().to_peer_id();
//! let record = PeerRecord { peer_id: peer, seq: 1, addresses: vec!["/ip4/192.0.2.1/tcp/4001".parse().unwrap()] };
//! let wire = record.seal(&key)?.encode();
//!
//! let (back, _format) = PeerRecord::verify_from(&wire, &peer)?;
//! assert_eq!(back, record);
//! // The same bytes presented as another peer's record are refused.
//! let other = Keypair::generate_ed25519().public().to_peer_id();
//! assert!(matches!(PeerRecord::verify_from(&wire, &other), Err(RecordError::WrongPeer { .. })));
//! # Ok::<(), RecordError>(())
//! ```

use lp2p_core::identity::{DecodingError, SigningError};
use lp2p_core::{Keypair, Multiaddr, PeerId, PublicKey, varint};
use prost::Message;

/// The envelope domain of a peer record (go-, js-libp2p; rust-libp2p's "interop" format).
pub const PEER_RECORD_DOMAIN: &str = "libp2p-peer-record";

/// The payload type of a peer record: multicodec 0x0301 as two big-endian bytes.
pub const PEER_RECORD_PAYLOAD_TYPE: &[u8] = &[0x03, 0x01];

/// The legacy domain of RFC 0003, still rust-libp2p's default.
pub const LEGACY_PEER_RECORD_DOMAIN: &str = "libp2p-routing-state";

/// The legacy payload type of RFC 0003, still rust-libp2p's default.
pub const LEGACY_PEER_RECORD_PAYLOAD_TYPE: &[u8] = b"/libp2p/routing-state-record";

/// Why a signed envelope or the peer record inside it was not accepted.
///
/// (This module's own error: the record code serves identify and pubsub, which convert it
/// into their errors; the rest of the peerstore never fails this way.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The envelope is not a valid `Envelope` protobuf.
    #[error("malformed signed envelope: {0}")]
    MalformedEnvelope(#[source] prost::DecodeError),
    /// The envelope's public key does not decode.
    #[error("the signed envelope's public key does not decode: {0}")]
    InvalidPublicKey(#[source] DecodingError),
    /// The payload type is not one we accept for this use.
    #[error("payload type {found:02x?} is not a peer record")]
    WrongPayloadType {
        /// What the envelope said.
        found: Vec<u8>,
    },
    /// The signature does not verify over the signing buffer (wrong key, wrong domain, or
    /// tampered bytes).
    #[error("the signed envelope's signature does not verify")]
    BadSignature,
    /// The payload is not a valid `PeerRecord`.
    #[error("malformed peer record: {0}")]
    MalformedRecord(String),
    /// The record names a peer other than the key that signed it.
    #[error("peer record of {record_peer} signed by the key of {signer}")]
    SignerMismatch {
        /// The peer whose key signed the envelope.
        signer: Box<PeerId>,
        /// The peer the record claims to describe.
        record_peer: Box<PeerId>,
    },
    /// The record is valid but describes another peer than the one that sent it.
    #[error("peer {peer} sent a peer record of {record_peer}")]
    WrongPeer {
        /// The peer on the connection.
        peer: Box<PeerId>,
        /// The peer the record describes.
        record_peer: Box<PeerId>,
    },
    /// The record is older than one already accepted from this peer.
    #[error("peer record seq {seq} is older than the accepted seq {accepted}")]
    Stale {
        /// The record's seq.
        seq: u64,
        /// The last seq accepted from the peer.
        accepted: u64,
    },
    /// Signing a record failed.
    #[error("signing the peer record failed: {0}")]
    Signing(#[source] SigningError),
}

/// The protobuf messages, declared with prost's derive (no build script needed for two
/// small messages).
mod pb {
    /// `Envelope` (RFC 0002). The spec declares `public_key` as the `PublicKey` message;
    /// carrying its encoding as bytes is identical on the wire.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Envelope {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) public_key: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub(super) payload_type: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub(super) payload: Vec<u8>,
        #[prost(bytes = "vec", tag = "5")]
        pub(super) signature: Vec<u8>,
    }

    /// `PeerRecord` (RFC 0003).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct PeerRecord {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) peer_id: Vec<u8>,
        #[prost(uint64, tag = "2")]
        pub(super) seq: u64,
        #[prost(message, repeated, tag = "3")]
        pub(super) addresses: Vec<AddressInfo>,
    }

    /// `PeerRecord.AddressInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct AddressInfo {
        #[prost(bytes = "vec", tag = "1")]
        pub(super) multiaddr: Vec<u8>,
    }
}

/// A decoded signed envelope. Its signature is checked only by [`SignedEnvelope::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEnvelope {
    public_key: PublicKey,
    payload_type: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl SignedEnvelope {
    /// Signs `payload` with `keypair` for `domain`.
    pub fn seal(
        keypair: &Keypair,
        domain: &str,
        payload_type: &[u8],
        payload: Vec<u8>,
    ) -> Result<SignedEnvelope, RecordError> {
        let buffer = signing_buffer(domain, payload_type, &payload);
        let signature = keypair.sign(&buffer).map_err(RecordError::Signing)?;
        Ok(SignedEnvelope {
            public_key: keypair.public(),
            payload_type: payload_type.to_vec(),
            payload,
            signature,
        })
    }

    /// Decodes an `Envelope` protobuf and its public key. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedEnvelope, RecordError> {
        let envelope = pb::Envelope::decode(bytes).map_err(RecordError::MalformedEnvelope)?;
        let public_key = PublicKey::try_decode_protobuf(&envelope.public_key)
            .map_err(RecordError::InvalidPublicKey)?;
        Ok(SignedEnvelope {
            public_key,
            payload_type: envelope.payload_type,
            payload: envelope.payload,
            signature: envelope.signature,
        })
    }

    /// The `Envelope` protobuf (fields in tag order: key, type, payload, signature).
    pub fn encode(&self) -> Vec<u8> {
        pb::Envelope {
            public_key: self.public_key.encode_protobuf(),
            payload_type: self.payload_type.clone(),
            payload: self.payload.clone(),
            signature: self.signature.clone(),
        }
        .encode_to_vec()
    }

    /// Checks the payload type and the signature for `domain`; returns the payload.
    pub fn verify(&self, domain: &str, payload_type: &[u8]) -> Result<&[u8], RecordError> {
        if self.payload_type != payload_type {
            return Err(RecordError::WrongPayloadType {
                found: self.payload_type.clone(),
            });
        }
        let buffer = signing_buffer(domain, &self.payload_type, &self.payload);
        if !self.public_key.verify(&buffer, &self.signature) {
            return Err(RecordError::BadSignature);
        }
        Ok(&self.payload)
    }

    /// The signer's public key (as sent; verified only by [`verify`](Self::verify)).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The payload type hint.
    pub fn payload_type(&self) -> &[u8] {
        &self.payload_type
    }

    /// The payload, unverified.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// The bytes an envelope's signature covers.
pub fn signing_buffer(domain: &str, payload_type: &[u8], payload: &[u8]) -> Vec<u8> {
    let parts = [domain.as_bytes(), payload_type, payload];
    let len = parts
        .iter()
        .map(|p| varint::MAX_LEN.saturating_add(p.len()))
        .fold(0usize, usize::saturating_add);
    let mut out = Vec::with_capacity(len);
    for part in parts {
        varint::encode_into(part.len() as u64, &mut out);
        out.extend_from_slice(part);
    }
    out
}

/// Which domain and payload type a record is (or was) signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordFormat {
    /// `libp2p-peer-record`, `03 01` (go, js, the spec's multicodec).
    #[default]
    Standard,
    /// `libp2p-routing-state`, `/libp2p/routing-state-record` (RFC 0003's text, and what
    /// rust-libp2p 0.57's identify signs and accepts).
    Legacy,
}

impl RecordFormat {
    /// The domain and payload type of this format.
    pub fn domain_and_type(self) -> (&'static str, &'static [u8]) {
        match self {
            RecordFormat::Standard => (PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE),
            RecordFormat::Legacy => (LEGACY_PEER_RECORD_DOMAIN, LEGACY_PEER_RECORD_PAYLOAD_TYPE),
        }
    }
}

/// A peer's signed statement of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    /// The issuer.
    pub peer_id: PeerId,
    /// Strictly increasing per issuer (unix time is allowed).
    pub seq: u64,
    /// The issuer's addresses.
    pub addresses: Vec<Multiaddr>,
}

impl PeerRecord {
    /// The `PeerRecord` protobuf.
    pub fn encode(&self) -> Vec<u8> {
        pb::PeerRecord {
            peer_id: self.peer_id.to_bytes(),
            seq: self.seq,
            addresses: self
                .addresses
                .iter()
                .map(|a| pb::AddressInfo {
                    multiaddr: a.to_vec(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a `PeerRecord` protobuf; every address must be a valid multiaddr.
    pub fn decode(bytes: &[u8]) -> Result<PeerRecord, RecordError> {
        let record = pb::PeerRecord::decode(bytes)
            .map_err(|e| RecordError::MalformedRecord(e.to_string()))?;
        let peer_id = PeerId::from_bytes(&record.peer_id)
            .map_err(|e| RecordError::MalformedRecord(format!("peer id: {e}")))?;
        let addresses = record
            .addresses
            .into_iter()
            .map(|a| {
                Multiaddr::try_from(a.multiaddr)
                    .map_err(|e| RecordError::MalformedRecord(format!("address: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PeerRecord {
            peer_id,
            seq: record.seq,
            addresses,
        })
    }

    /// Signs the record in the standard format. `keypair` must be the issuer's.
    pub fn seal(&self, keypair: &Keypair) -> Result<SignedEnvelope, RecordError> {
        self.seal_as(keypair, RecordFormat::Standard)
    }

    /// Signs the record in the given format. `keypair` must be the issuer's.
    pub fn seal_as(
        &self,
        keypair: &Keypair,
        format: RecordFormat,
    ) -> Result<SignedEnvelope, RecordError> {
        let signer = keypair.public().to_peer_id();
        if signer != self.peer_id {
            return Err(RecordError::SignerMismatch {
                signer: Box::new(signer),
                record_peer: Box::new(self.peer_id),
            });
        }
        let (domain, payload_type) = format.domain_and_type();
        SignedEnvelope::seal(keypair, domain, payload_type, self.encode())
    }

    /// Verifies `envelope` as a peer record (standard format, or legacy when its payload
    /// type says so) and decodes it. The record must name the peer whose key signed it.
    pub fn from_envelope(
        envelope: &SignedEnvelope,
    ) -> Result<(PeerRecord, RecordFormat), RecordError> {
        let format = if envelope.payload_type() == LEGACY_PEER_RECORD_PAYLOAD_TYPE {
            RecordFormat::Legacy
        } else {
            RecordFormat::Standard
        };
        let (domain, payload_type) = format.domain_and_type();
        let payload = envelope.verify(domain, payload_type)?;
        let record = PeerRecord::decode(payload)?;
        let signer = envelope.public_key().to_peer_id();
        if record.peer_id != signer {
            return Err(RecordError::SignerMismatch {
                signer: Box::new(signer),
                record_peer: Box::new(record.peer_id),
            });
        }
        Ok((record, format))
    }

    /// Decodes, verifies and checks a record received from `peer` (see
    /// [`from_envelope`](Self::from_envelope)); it must describe `peer`.
    pub fn verify_from(
        bytes: &[u8],
        peer: &PeerId,
    ) -> Result<(PeerRecord, RecordFormat), RecordError> {
        let envelope = SignedEnvelope::decode(bytes)?;
        let (record, format) = PeerRecord::from_envelope(&envelope)?;
        if record.peer_id != *peer {
            return Err(RecordError::WrongPeer {
                peer: Box::new(*peer),
                record_peer: Box::new(record.peer_id),
            });
        }
        Ok((record, format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The Ed25519 key of wire-formats.md 30.4 (protobuf private key, seed || public).
    fn vector_key() -> Keypair {
        Keypair::from_protobuf_encoding(&hex(
            "08011240 7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d \
             1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
        ))
        .unwrap()
    }

    /// wire-formats.md 30.9, byte for byte: payload, signing buffer, envelope.
    #[test]
    fn signed_peer_record_vector() {
        let key = vector_key();
        assert_eq!(
            key.public().to_peer_id().to_string(),
            "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
        );
        let record = PeerRecord {
            peer_id: key.public().to_peer_id(),
            seq: 1,
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
        };
        let payload = record.encode();
        assert_eq!(
            payload,
            hex(
                "0a260024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf601
                 0f0e42d474fce27e10011a0a0a08047f000001060fa1"
            )
        );
        assert_eq!(
            signing_buffer(PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, &payload),
            hex(
                "126c69627032702d706565722d7265636f7264020301360a260024080112201e
                 d1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e10
                 011a0a0a08047f000001060fa1"
            )
        );
        let envelope = record.seal(&key).unwrap().encode();
        let expected = hex(
            "0a24080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e
             42d474fce27e120203011a360a260024080112201ed1e8fae2c4a144b8be8fd4
             b47bf3d3b34b871c3cacf6010f0e42d474fce27e10011a0a0a08047f00000106
             0fa12a404504e51a36806e8eba9344a743f2e1cbd0170d2632fb413f98101f6e
             3ff26d3da91f4eedebf36383fa5819438bce1d7398117236e52d2d1dfce98196
             294ac60e",
        );
        assert_eq!(envelope, expected);
        let (back, format) = PeerRecord::verify_from(&expected, &record.peer_id).unwrap();
        assert_eq!(back, record);
        assert_eq!(format, RecordFormat::Standard);
    }

    fn sample(key: &Keypair) -> PeerRecord {
        PeerRecord {
            peer_id: key.public().to_peer_id(),
            seq: 42,
            addresses: vec![
                "/ip4/192.0.2.1/tcp/4001".parse().unwrap(),
                "/ip6/::1/udp/4001/quic-v1".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn envelope_seal_decode_verify() {
        let key = Keypair::generate_ed25519();
        let env =
            SignedEnvelope::seal(&key, "test-domain", b"\x01\x02", b"hello".to_vec()).unwrap();
        let decoded = SignedEnvelope::decode(&env.encode()).unwrap();
        assert_eq!(decoded, env);
        assert_eq!(
            decoded.verify("test-domain", b"\x01\x02").unwrap(),
            b"hello"
        );
        assert_eq!(decoded.public_key(), &key.public());
        assert_eq!(decoded.payload(), b"hello");
        assert_eq!(decoded.payload_type(), b"\x01\x02");
        assert_eq!(decoded.signature().len(), 64);
        // Wrong domain, wrong type.
        assert!(matches!(
            decoded.verify("other", b"\x01\x02"),
            Err(RecordError::BadSignature)
        ));
        assert!(matches!(
            decoded.verify("test-domain", b"\x02"),
            Err(RecordError::WrongPayloadType { found }) if found == b"\x01\x02"
        ));
    }

    #[test]
    fn tampered_envelope_fails() {
        let key = Keypair::generate_ed25519();
        let env = SignedEnvelope::seal(&key, "a", b"\x01", b"payload".to_vec()).unwrap();
        let mut raw = pb::Envelope::decode(&env.encode()[..]).unwrap();
        raw.payload = b"pAyload".to_vec();
        let tampered = SignedEnvelope::decode(&raw.encode_to_vec()).unwrap();
        assert!(matches!(
            tampered.verify("a", b"\x01"),
            Err(RecordError::BadSignature)
        ));
    }

    #[test]
    fn garbage_envelopes_are_errors_not_panics() {
        assert!(matches!(
            SignedEnvelope::decode(&[0xff, 0xff, 0xff]),
            Err(RecordError::MalformedEnvelope(_))
        ));
        let bytes = pb::Envelope {
            public_key: vec![1, 2, 3],
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            SignedEnvelope::decode(&bytes),
            Err(RecordError::InvalidPublicKey(_))
        ));
    }

    #[test]
    fn signing_buffer_layout() {
        assert_eq!(
            signing_buffer("ab", b"\x03\x01", b"xyz"),
            b"\x02ab\x02\x03\x01\x03xyz"
        );
    }

    #[test]
    fn legacy_format_is_accepted() {
        let key = Keypair::generate_ed25519();
        let record = sample(&key);
        let bytes = record.seal_as(&key, RecordFormat::Legacy).unwrap().encode();
        let (back, format) = PeerRecord::verify_from(&bytes, &record.peer_id).unwrap();
        assert_eq!((back, format), (record, RecordFormat::Legacy));
    }

    #[test]
    fn record_for_another_peer_is_refused() {
        let key = Keypair::generate_ed25519();
        let record = sample(&key);
        let bytes = record.seal(&key).unwrap().encode();
        let other = PeerId::random();
        assert!(matches!(
            PeerRecord::verify_from(&bytes, &other),
            Err(RecordError::WrongPeer { .. })
        ));
    }

    #[test]
    fn record_signed_by_another_key_is_refused() {
        let key = Keypair::generate_ed25519();
        let thief = Keypair::generate_ed25519();
        let record = sample(&key);
        assert!(matches!(
            record.seal(&thief),
            Err(RecordError::SignerMismatch { .. })
        ));
        // A thief signs a record naming the victim with its own key: the signature verifies
        // but the signer is not the peer the record names.
        let env = SignedEnvelope::seal(
            &thief,
            PEER_RECORD_DOMAIN,
            PEER_RECORD_PAYLOAD_TYPE,
            record.encode(),
        )
        .unwrap();
        assert!(matches!(
            PeerRecord::verify_from(&env.encode(), &record.peer_id),
            Err(RecordError::SignerMismatch { .. })
        ));
    }

    #[test]
    fn wrong_payload_type_or_domain_is_refused() {
        let key = Keypair::generate_ed25519();
        let record = sample(&key);
        let env =
            SignedEnvelope::seal(&key, PEER_RECORD_DOMAIN, &[0x03, 0x02], record.encode()).unwrap();
        assert!(matches!(
            PeerRecord::verify_from(&env.encode(), &record.peer_id),
            Err(RecordError::WrongPayloadType { .. })
        ));
        let env = SignedEnvelope::seal(
            &key,
            "libp2p-relay-rsvp",
            PEER_RECORD_PAYLOAD_TYPE,
            record.encode(),
        )
        .unwrap();
        assert!(matches!(
            PeerRecord::verify_from(&env.encode(), &record.peer_id),
            Err(RecordError::BadSignature)
        ));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        for payload in [
            vec![0xff, 0xff],
            pb::PeerRecord {
                peer_id: vec![1, 2, 3],
                ..Default::default()
            }
            .encode_to_vec(),
            pb::PeerRecord {
                peer_id: peer.to_bytes(),
                seq: 1,
                addresses: vec![pb::AddressInfo {
                    multiaddr: vec![0xff, 0xff, 0xff],
                }],
            }
            .encode_to_vec(),
        ] {
            let env =
                SignedEnvelope::seal(&key, PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, payload)
                    .unwrap();
            assert!(matches!(
                PeerRecord::verify_from(&env.encode(), &peer),
                Err(RecordError::MalformedRecord(_))
            ));
        }
    }
}
