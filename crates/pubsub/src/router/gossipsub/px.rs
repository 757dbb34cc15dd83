//! Peer exchange: checking the signed peer records offered in a PRUNE (RFC 0002 envelopes
//! holding RFC 0003 peer records, standard or legacy format). The envelope and record code
//! is `lp2p_peerstore::record`, shared with identify.

use lp2p_core::{Multiaddr, PeerId};
use lp2p_peerstore::record::PeerRecord;
pub(crate) use lp2p_peerstore::record::RecordError;

/// Verifies a signed peer record for `expected` (signed by it and naming it) and returns its
/// addresses, at most `max_addresses`.
pub(crate) fn verify_signed_peer_record(
    envelope: &[u8],
    expected: &PeerId,
    max_addresses: usize,
) -> Result<Vec<Multiaddr>, RecordError> {
    let (record, _format) = PeerRecord::verify_from(envelope, expected)?;
    Ok(record.addresses.into_iter().take(max_addresses).collect())
}

/// Builds a signed peer record (for tests of peer exchange).
#[cfg(test)]
pub(crate) fn sign_peer_record(
    keypair: &lp2p_core::Keypair,
    seq: u64,
    addresses: &[Multiaddr],
) -> Vec<u8> {
    let record = PeerRecord {
        peer_id: keypair.public().to_peer_id(),
        seq,
        addresses: addresses.to_vec(),
    };
    record.seal(keypair).unwrap().encode()
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
        assert!(matches!(
            verify_signed_peer_record(&envelope, &PeerId::random(), 8),
            Err(RecordError::WrongPeer { .. })
        ));
        // A flipped payload byte.
        let mut tampered = envelope.clone();
        let at = tampered.len() - 70;
        tampered[at] ^= 1;
        assert!(verify_signed_peer_record(&tampered, &peer, 8).is_err());
        // Garbage.
        assert!(matches!(
            verify_signed_peer_record(b"\xff\xff", &peer, 8),
            Err(RecordError::MalformedEnvelope(_))
        ));
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
