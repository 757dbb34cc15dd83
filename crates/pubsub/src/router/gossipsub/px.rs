//! Peer exchange: checking the signed peer records offered in a PRUNE (RFC 0002 envelopes
//! holding RFC 0003 peer records).

use lp2p_core::{Multiaddr, PeerId, PublicKey};
use prost::Message as _;

use crate::proto::record::{Envelope, PeerRecord};

/// The envelope domain of a peer record, as go-libp2p and rust-libp2p emit it.
const PEER_RECORD_DOMAIN: &[u8] = b"libp2p-peer-record";
/// The payload type of a peer record: multicodec 0x0301 as two big-endian bytes.
const PEER_RECORD_TYPE: &[u8] = &[0x03, 0x01];
/// The legacy pair RFC 0003 names (rust-libp2p's identify still signs with it).
const LEGACY_DOMAIN: &[u8] = b"libp2p-routing-state";
const LEGACY_TYPE: &[u8] = b"/libp2p/routing-state-record";

/// Why a signed peer record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    Decode,
    PayloadType,
    Key,
    Signature,
    PeerMismatch,
}

/// The bytes an envelope signature covers.
fn signing_buffer(domain: &[u8], payload_type: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(domain.len() + payload_type.len() + payload.len() + 30);
    for part in [domain, payload_type, payload] {
        prost::encoding::encode_varint(part.len() as u64, &mut buf);
        buf.extend_from_slice(part);
    }
    buf
}

/// Verifies a signed peer record for `expected` and returns its addresses (at most
/// `max_addresses`; addresses that do not parse are skipped).
pub(crate) fn verify_signed_peer_record(
    envelope: &[u8],
    expected: &PeerId,
    max_addresses: usize,
) -> Result<Vec<Multiaddr>, RecordError> {
    let envelope = Envelope::decode(envelope).map_err(|_| RecordError::Decode)?;
    let domain = match &envelope.payload_type[..] {
        PEER_RECORD_TYPE => PEER_RECORD_DOMAIN,
        LEGACY_TYPE => LEGACY_DOMAIN,
        _ => return Err(RecordError::PayloadType),
    };
    let key = PublicKey::try_decode_protobuf(&envelope.public_key).map_err(|_| RecordError::Key)?;
    let buffer = signing_buffer(domain, &envelope.payload_type, &envelope.payload);
    if !key.verify(&buffer, &envelope.signature) {
        return Err(RecordError::Signature);
    }
    let record = PeerRecord::decode(envelope.payload.as_ref()).map_err(|_| RecordError::Decode)?;
    let signer = key.to_peer_id();
    let named = PeerId::from_bytes(&record.peer_id).map_err(|_| RecordError::Decode)?;
    if signer != *expected || named != *expected {
        return Err(RecordError::PeerMismatch);
    }
    Ok(record
        .addresses
        .into_iter()
        .take(max_addresses)
        .filter_map(|info| Multiaddr::try_from(info.multiaddr.to_vec()).ok())
        .collect())
}

/// Builds a signed peer record (for tests of peer exchange).
#[cfg(test)]
pub(crate) fn sign_peer_record(
    keypair: &lp2p_core::Keypair,
    seq: u64,
    addresses: &[Multiaddr],
) -> Vec<u8> {
    use crate::proto::record::peer_record::AddressInfo;
    let record = PeerRecord {
        peer_id: keypair.public().to_peer_id().to_bytes().into(),
        seq,
        addresses: addresses
            .iter()
            .map(|a| AddressInfo {
                multiaddr: a.to_vec().into(),
            })
            .collect(),
    };
    let payload = record.encode_to_vec();
    let buffer = signing_buffer(PEER_RECORD_DOMAIN, PEER_RECORD_TYPE, &payload);
    let envelope = Envelope {
        public_key: keypair.public().encode_protobuf().into(),
        payload_type: PEER_RECORD_TYPE.to_vec().into(),
        payload: payload.into(),
        signature: keypair.sign(&buffer).unwrap().into(),
    };
    envelope.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests_support::{hex, vector_keypair};

    /// wire-formats.md 30.9: the signed peer record of the 30.4 Ed25519 key.
    const VECTOR_ENVELOPE: &str = "0a24080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e
        42d474fce27e120203011a360a260024080112201ed1e8fae2c4a144b8be8fd4
        b47bf3d3b34b871c3cacf6010f0e42d474fce27e10011a0a0a08047f00000106
        0fa12a404504e51a36806e8eba9344a743f2e1cbd0170d2632fb413f98101f6e
        3ff26d3da91f4eedebf36383fa5819438bce1d7398117236e52d2d1dfce98196
        294ac60e";

    #[test]
    fn verifies_the_30_9_vector() {
        let keypair = vector_keypair();
        let peer = keypair.public().to_peer_id();
        let envelope = hex(VECTOR_ENVELOPE);
        let addrs = verify_signed_peer_record(&envelope, &peer, 8).unwrap();
        assert_eq!(
            addrs,
            vec!["/ip4/127.0.0.1/tcp/4001".parse::<Multiaddr>().unwrap()]
        );
        // Our own signing reproduces it byte for byte (Ed25519 is deterministic).
        let ours = sign_peer_record(&keypair, 1, &addrs);
        assert_eq!(ours, envelope);
    }

    #[test]
    fn refuses_bad_records() {
        let keypair = vector_keypair();
        let peer = keypair.public().to_peer_id();
        let envelope = hex(VECTOR_ENVELOPE);
        // Someone else's record.
        assert_eq!(
            verify_signed_peer_record(&envelope, &PeerId::random(), 8),
            Err(RecordError::PeerMismatch)
        );
        // A flipped payload byte.
        let mut tampered = envelope.clone();
        let at = tampered.len() - 70;
        tampered[at] ^= 1;
        assert!(verify_signed_peer_record(&tampered, &peer, 8).is_err());
        // Garbage.
        assert_eq!(
            verify_signed_peer_record(b"\xff\xff", &peer, 8),
            Err(RecordError::Decode)
        );
        // The address cap.
        let many: Vec<Multiaddr> = (0..10)
            .map(|port| format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap())
            .collect();
        let record = sign_peer_record(&keypair, 2, &many);
        assert_eq!(
            verify_signed_peer_record(&record, &peer, 3).unwrap().len(),
            3
        );
    }
}
