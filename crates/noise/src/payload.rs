//! The libp2p handshake payload: `NoiseHandshakePayload { identity_key, identity_sig,
//! extensions }`, the signature binding the Noise static key to the libp2p identity, and the
//! `stream_muxers` extension.

use lp2p_core::{Keypair, ProtocolId, PublicKey};
use prost::Message;

use crate::error::{NoiseError, Stage};
use crate::remembered::RemoteStatics;

/// The generated protobuf types of `proto/payload.proto`.
#[allow(missing_docs, unreachable_pub, clippy::pedantic)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/noise.pb.rs"));
}

/// What the identity key signs: this prefix followed by the 32-byte X25519 static key.
pub const STATIC_KEY_DOMAIN: &[u8] = b"noise-libp2p-static-key:";

/// The bytes the identity signature covers.
pub(crate) fn signed_message(static_key: &[u8; 32]) -> [u8; 56] {
    let mut msg = [0u8; 56];
    let (domain, key) = msg.split_at_mut(STATIC_KEY_DOMAIN.len());
    domain.copy_from_slice(STATIC_KEY_DOMAIN);
    key.copy_from_slice(static_key);
    msg
}

/// Encodes our payload: identity key, signature over `static_key`, and `muxers` in the
/// `stream_muxers` extension when there are any (no extensions field at all otherwise).
pub(crate) fn encode(
    identity: &Keypair,
    static_key: &[u8; 32],
    muxers: &[ProtocolId],
) -> Result<Vec<u8>, NoiseError> {
    let signature = identity
        .sign(&signed_message(static_key))
        .map_err(NoiseError::Signing)?;
    Ok(encode_signed(identity, signature, muxers))
}

/// Encodes our payload with a signature made before (see
/// [`LocalStatic`](crate::LocalStatic)).
pub(crate) fn encode_signed(
    identity: &Keypair,
    signature: Vec<u8>,
    muxers: &[ProtocolId],
) -> Vec<u8> {
    let extensions = (!muxers.is_empty()).then(|| pb::NoiseExtensions {
        webtransport_certhashes: Vec::new(),
        stream_muxers: muxers
            .iter()
            .map(|m| m.as_str().as_bytes().to_vec())
            .collect(),
    });
    let payload = pb::NoiseHandshakePayload {
        identity_key: Some(identity.public().encode_protobuf()),
        identity_sig: Some(signature),
        extensions,
    };
    payload.encode_to_vec()
}

/// A remote's verified payload.
#[derive(Debug, Clone)]
pub(crate) struct RemotePayload {
    /// The identity key, whose signature over the Noise static key verified.
    pub(crate) identity: PublicKey,
    /// The muxers the remote listed, in its preference order; `None` when it sent no list
    /// (or one longer than the limit, which is discarded).
    pub(crate) muxers: Option<Vec<ProtocolId>>,
}

/// Decodes a remote payload and verifies its signature over `remote_static`.
pub(crate) fn decode_and_verify(
    bytes: &[u8],
    remote_static: &[u8; 32],
    max_muxers: usize,
    stage: Stage,
    remembered: Option<&RemoteStatics>,
) -> Result<RemotePayload, NoiseError> {
    let payload = pb::NoiseHandshakePayload::decode(bytes)
        .map_err(|source| NoiseError::PayloadDecode { stage, source })?;
    let key_bytes = payload
        .identity_key
        .ok_or(NoiseError::MissingIdentityKey { stage })?;
    let signature = payload
        .identity_sig
        .ok_or(NoiseError::MissingIdentitySignature { stage })?;
    let identity = PublicKey::try_decode_protobuf(&key_bytes)
        .map_err(|source| NoiseError::InvalidIdentityKey { stage, source })?;
    let check = || identity.verify(&signed_message(remote_static), &signature);
    let valid = match remembered {
        Some(statics) => statics.verify(remote_static, &key_bytes, &signature, check),
        None => check(),
    };
    if !valid {
        return Err(NoiseError::BadSignature { stage });
    }
    let muxers = payload.extensions.and_then(|ext| {
        if ext.stream_muxers.is_empty() {
            return None;
        }
        if ext.stream_muxers.len() > max_muxers {
            tracing::debug!(
                count = ext.stream_muxers.len(),
                max = max_muxers,
                "discarding an over-long stream_muxers list"
            );
            return None;
        }
        Some(
            ext.stream_muxers
                .into_iter()
                .filter_map(|m| String::from_utf8(m).ok())
                .filter(|m| !m.is_empty())
                .map(ProtocolId::from)
                .collect::<Vec<_>>(),
        )
    });
    Ok(RemotePayload { identity, muxers })
}

/// The muxer both sides agree on: the first entry of the initiator's list that the
/// responder also lists. `None` when either list is missing or they do not overlap.
pub(crate) fn agree_muxer(
    initiator: Option<&[ProtocolId]>,
    responder: Option<&[ProtocolId]>,
) -> Option<ProtocolId> {
    let (initiator, responder) = (initiator?, responder?);
    initiator.iter().find(|m| responder.contains(m)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ProtocolId = ProtocolId::from_static("/yamux/1.0.0");
    const B: ProtocolId = ProtocolId::from_static("/mplex/6.7.0");
    const C: ProtocolId = ProtocolId::from_static("/other/1");

    #[test]
    fn agreement_follows_the_initiators_order() {
        assert_eq!(agree_muxer(Some(&[A, B]), Some(&[B, A])), Some(A));
        assert_eq!(agree_muxer(Some(&[B, A]), Some(&[A, B])), Some(B));
        assert_eq!(agree_muxer(Some(&[C, B]), Some(&[A, B])), Some(B));
        assert_eq!(agree_muxer(Some(&[C]), Some(&[A, B])), None);
        assert_eq!(agree_muxer(None, Some(&[A])), None);
        assert_eq!(agree_muxer(Some(&[A]), None), None);
    }

    #[test]
    fn payload_round_trips_and_binds_the_static_key() {
        let id = Keypair::generate_ed25519();
        let s = [9u8; 32];
        let bytes = encode(&id, &s, &[A, B]).unwrap();
        let remote = decode_and_verify(&bytes, &s, 100, Stage::Message2, None).unwrap();
        assert_eq!(remote.identity, id.public());
        assert_eq!(remote.muxers, Some(vec![A, B]));
        // Another static key: the signature no longer verifies.
        assert!(matches!(
            decode_and_verify(&bytes, &[8u8; 32], 100, Stage::Message2, None),
            Err(NoiseError::BadSignature {
                stage: Stage::Message2
            })
        ));
    }

    #[test]
    fn no_muxers_means_no_extensions_field() {
        let id = Keypair::generate_ed25519();
        let bytes = encode(&id, &[1u8; 32], &[]).unwrap();
        let decoded = pb::NoiseHandshakePayload::decode(bytes.as_slice()).unwrap();
        assert!(decoded.extensions.is_none());
        // 0a 24 <36-byte key> 12 40 <64-byte signature>
        assert_eq!(bytes.len(), 104);
    }

    #[test]
    fn over_long_or_bad_muxer_lists_are_dropped_not_fatal() {
        let id = Keypair::generate_ed25519();
        let s = [1u8; 32];
        let many: Vec<ProtocolId> = (0..5)
            .map(|i| ProtocolId::from(format!("/m/{i}")))
            .collect();
        let bytes = encode(&id, &s, &many).unwrap();
        let remote = decode_and_verify(&bytes, &s, 4, Stage::Message3, None).unwrap();
        assert_eq!(remote.muxers, None);

        let sig = id.sign(&signed_message(&s)).unwrap();
        let payload = pb::NoiseHandshakePayload {
            identity_key: Some(id.public().encode_protobuf()),
            identity_sig: Some(sig),
            extensions: Some(pb::NoiseExtensions {
                webtransport_certhashes: vec![vec![1, 2, 3]],
                stream_muxers: vec![vec![0xff, 0xfe], b"/yamux/1.0.0".to_vec()],
            }),
        };
        let remote =
            decode_and_verify(&payload.encode_to_vec(), &s, 100, Stage::Message3, None).unwrap();
        assert_eq!(remote.muxers, Some(vec![A]));
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        let s = [1u8; 32];
        assert!(matches!(
            decode_and_verify(&[0xff, 0xff, 0xff], &s, 100, Stage::Message2, None),
            Err(NoiseError::PayloadDecode { .. })
        ));
        assert!(matches!(
            decode_and_verify(&[], &s, 100, Stage::Message2, None),
            Err(NoiseError::MissingIdentityKey { .. })
        ));
        let id = Keypair::generate_ed25519();
        let no_sig = pb::NoiseHandshakePayload {
            identity_key: Some(id.public().encode_protobuf()),
            identity_sig: None,
            extensions: None,
        };
        assert!(matches!(
            decode_and_verify(&no_sig.encode_to_vec(), &s, 100, Stage::Message2, None),
            Err(NoiseError::MissingIdentitySignature { .. })
        ));
        let bad_key = pb::NoiseHandshakePayload {
            identity_key: Some(vec![8, 1, 18, 3, 1, 2, 3]),
            identity_sig: Some(vec![0; 64]),
            extensions: None,
        };
        assert!(matches!(
            decode_and_verify(&bad_key.encode_to_vec(), &s, 100, Stage::Message2, None),
            Err(NoiseError::InvalidIdentityKey { .. })
        ));
        // Unknown fields are skipped.
        let mut with_unknown = encode(&id, &s, &[]).unwrap();
        with_unknown.extend_from_slice(&[0x2a, 0x02, 0x01, 0x02]); // field 5, 2 bytes
        assert!(decode_and_verify(&with_unknown, &s, 100, Stage::Message2, None).is_ok());
    }
}
