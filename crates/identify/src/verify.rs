//! Checking what a peer said against who the peer is, before anything is stored.

use lp2p_core::{Multiaddr, PeerId, ProtocolId, ProvenBytes, PublicKey, addr};

use lp2p_peerstore::record::{PeerRecord, RecordError, RecordFormat};

use crate::{IdentifyError, ReceivedIdentify};

/// Signed peer records remembered as verified by one identify service (see
/// [`VerifiedRecords`]).
///
/// Peers send the same signed record on every connection until their addresses change, so a
/// host that reconnects to a few hundred peers hits. An entry holds the envelope's bytes and
/// the decoded record, under 2 × [`MAX_REMEMBERED_RECORD_LEN`] bytes, so the memory stays
/// under 1 MiB at worst and near 100 KiB for typical records (about 200 bytes each).
pub const DEFAULT_VERIFIED_RECORDS: usize = 256;

/// Signed records longer than this are verified every time and never remembered. A record
/// with a dozen addresses is under 1 KiB; 2 KiB bounds what one entry may hold.
pub const MAX_REMEMBERED_RECORD_LEN: usize = 2048;

/// Signed peer records whose envelope verified, keyed by the envelope's bytes, with the
/// record they carry.
///
/// Verifying an envelope (its signature, the signer being the record's peer) is a pure
/// function of its bytes, so the same bytes verify again; an entry skips the signature check,
/// about 45 µs of Ed25519 on the 2-core build machine, on every connection to a peer seen
/// before. What depends on the moment is checked each time: that the record describes the
/// peer that sent it, and that it is not older than the record already accepted. Only
/// records that verified enter (the oldest is forgotten first), so an entry can never make a
/// bad signature pass. TLS and noise remember verified handshake proofs the same way
/// (decision D41).
pub type VerifiedRecords = ProvenBytes<(PeerRecord, RecordFormat)>;

/// What a peer said, checked: the key is the peer's, and the addresses come from its signed
/// record when that verified.
#[derive(Debug)]
pub struct VerifiedIdentify {
    /// The peer's key (from the message, else the one already known).
    pub public_key: PublicKey,
    /// Whether the message carried the key.
    pub key_sent: bool,
    /// The protocol version, if sent.
    pub protocol_version: Option<String>,
    /// The agent version, if sent.
    pub agent_version: Option<String>,
    /// The peer's addresses: the signed record's when it verified, else the plain
    /// `listenAddrs`; without `/p2p/` (addresses naming another peer are dropped).
    pub listen_addrs: Vec<Multiaddr>,
    /// The protocols, if any were sent.
    pub protocols: Vec<ProtocolId>,
    /// Our address as the peer sees it.
    pub observed_addr: Option<Multiaddr>,
    /// The verified signed record, when one was sent and is valid.
    pub record: Option<(PeerRecord, RecordFormat)>,
    /// Why a signed record that was sent is not used.
    pub record_error: Option<RecordError>,
}

/// Checks `received` from `peer`.
///
/// - A public key that was sent must be `peer`'s key, or the whole message is refused
///   ([`IdentifyError::PublicKeyMismatch`]). Without one, `known_key` (from the security
///   handshake) stands in; with neither, [`IdentifyError::MissingPublicKey`].
/// - A signed record must verify (standard or legacy format), be signed by `peer`'s key,
///   describe `peer`, and not be older than `accepted_seq`. When it passes, its addresses
///   replace the plain ones; when it fails, the failure is reported in `record_error` and
///   the plain addresses are used (go- and rust-libp2p do the same).
pub fn verify(
    received: ReceivedIdentify,
    peer: &PeerId,
    known_key: Option<PublicKey>,
    accepted_seq: Option<u64>,
) -> Result<VerifiedIdentify, IdentifyError> {
    verify_remembering(
        received,
        peer,
        known_key,
        accepted_seq,
        &VerifiedRecords::new(0),
    )
}

/// [`verify()`], with a signed record whose envelope is in `verified_records` taken without
/// checking its signature again, and one that verifies now added to it.
pub fn verify_remembering(
    received: ReceivedIdentify,
    peer: &PeerId,
    known_key: Option<PublicKey>,
    accepted_seq: Option<u64>,
    verified_records: &VerifiedRecords,
) -> Result<VerifiedIdentify, IdentifyError> {
    let key_sent = received.public_key.is_some();
    let public_key = match received.public_key {
        Some(key) => {
            let key_peer = key.to_peer_id();
            if key_peer != *peer {
                return Err(IdentifyError::PublicKeyMismatch {
                    peer: Box::new(*peer),
                    key_peer: Box::new(key_peer),
                });
            }
            key
        }
        None => known_key
            .filter(|k| k.to_peer_id() == *peer)
            .ok_or_else(|| IdentifyError::MissingPublicKey(Box::new(*peer)))?,
    };

    let (record, record_error) = match received.signed_peer_record.as_deref() {
        None => (None, None),
        Some(bytes) => match check_record(bytes, peer, accepted_seq, verified_records) {
            Ok(verified) => (Some(verified), None),
            Err(err) => (None, Some(err)),
        },
    };
    let listen_addrs = match &record {
        Some((record, _)) => own_addrs(peer, record.addresses.iter().cloned()),
        None => own_addrs(peer, received.listen_addrs),
    };
    Ok(VerifiedIdentify {
        public_key,
        key_sent,
        protocol_version: received.protocol_version,
        agent_version: received.agent_version,
        listen_addrs,
        protocols: received.protocols,
        observed_addr: received.observed_addr.map(|a| addr::split_peer_id(&a).0),
        record,
        record_error,
    })
}

fn check_record(
    bytes: &[u8],
    peer: &PeerId,
    accepted_seq: Option<u64>,
    verified_records: &VerifiedRecords,
) -> Result<(PeerRecord, RecordFormat), RecordError> {
    let (record, format) = if let Some(remembered) = verified_records.get(bytes) {
        remembered
    } else {
        let verified = PeerRecord::verify_from(bytes, peer)?;
        if bytes.len() <= MAX_REMEMBERED_RECORD_LEN {
            verified_records.insert(bytes, verified.clone());
        }
        verified
    };
    // The envelope may have verified for another peer: the sender must be the one described.
    if record.peer_id != *peer {
        return Err(RecordError::WrongPeer {
            peer: Box::new(*peer),
            record_peer: Box::new(record.peer_id),
        });
    }
    if let Some(accepted) = accepted_seq
        && record.seq < accepted
    {
        return Err(RecordError::Stale {
            seq: record.seq,
            accepted,
        });
    }
    Ok((record, format))
}

/// Strips a trailing `/p2p/<peer>`, drops addresses naming another peer, empty ones and
/// duplicates.
fn own_addrs(peer: &PeerId, addrs: impl IntoIterator<Item = Multiaddr>) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for a in addrs {
        let (bare, named) = addr::split_peer_id(&a);
        if named.is_some_and(|n| n != *peer) || bare.is_empty() || out.contains(&bare) {
            continue;
        }
        out.push(bare);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn received_from(key: &Keypair) -> ReceivedIdentify {
        ReceivedIdentify {
            protocol_version: Some("ipfs/0.1.0".into()),
            agent_version: Some("test/1".into()),
            public_key: Some(key.public()),
            listen_addrs: vec![ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/10.0.0.1/tcp/1")],
            observed_addr: Some(ma("/ip4/192.0.2.1/tcp/4001")),
            protocols: vec!["/a".into()],
            ..ReceivedIdentify::default()
        }
    }

    fn record_bytes(key: &Keypair, seq: u64, addrs: &[&str]) -> Vec<u8> {
        PeerRecord {
            peer_id: key.public().to_peer_id(),
            seq,
            addresses: addrs.iter().map(|a| ma(a)).collect(),
        }
        .seal(key)
        .unwrap()
        .encode()
    }

    #[test]
    fn plain_message_checks_out() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let v = verify(received_from(&key), &peer, None, None).unwrap();
        assert_eq!(v.public_key, key.public());
        assert!(v.key_sent);
        assert_eq!(v.listen_addrs, vec![ma("/ip4/10.0.0.1/tcp/1")]);
        assert!(v.record.is_none() && v.record_error.is_none());
    }

    #[test]
    fn key_of_another_peer_refuses_the_message() {
        let key = Keypair::generate_ed25519();
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            verify(received_from(&key), &other, None, None),
            Err(IdentifyError::PublicKeyMismatch { peer, key_peer })
                if *peer == other && *key_peer == key.public().to_peer_id()
        ));
    }

    #[test]
    fn missing_key_uses_the_known_one() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let mut r = received_from(&key);
        r.public_key = None;
        assert!(matches!(
            verify(r.clone(), &peer, None, None),
            Err(IdentifyError::MissingPublicKey(_))
        ));
        // A known key of someone else does not stand in either.
        let stranger = Keypair::generate_ed25519().public();
        assert!(verify(r.clone(), &peer, Some(stranger), None).is_err());
        let v = verify(r, &peer, Some(key.public()), None).unwrap();
        assert!(!v.key_sent);
        assert_eq!(v.public_key, key.public());
    }

    #[test]
    fn a_remembered_record_still_has_to_describe_its_sender_and_be_fresh() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let remembered = VerifiedRecords::new(DEFAULT_VERIFIED_RECORDS);
        let bytes = record_bytes(&key, 7, &["/ip4/192.0.2.7/tcp/4001"]);
        let mut r = received_from(&key);
        r.signed_peer_record = Some(bytes.clone());

        // Verified once, remembered, and taken again from memory with the same result.
        let first = verify_remembering(r.clone(), &peer, None, None, &remembered).unwrap();
        assert_eq!(remembered.len(), 1);
        assert!(remembered.get(&bytes).is_some());
        let again = verify_remembering(r.clone(), &peer, None, None, &remembered).unwrap();
        assert_eq!(again.record, first.record);
        assert_eq!(again.listen_addrs, vec![ma("/ip4/192.0.2.7/tcp/4001")]);

        // Another peer relaying the remembered record: refused as not its own.
        let other_key = Keypair::generate_ed25519();
        let other = other_key.public().to_peer_id();
        let mut relayed = received_from(&other_key);
        relayed.signed_peer_record = Some(bytes.clone());
        let v = verify_remembering(relayed, &other, None, None, &remembered).unwrap();
        assert!(v.record.is_none());
        assert!(matches!(
            v.record_error,
            Some(RecordError::WrongPeer { peer: p, record_peer }) if *p == other && *record_peer == peer
        ));

        // Older than what was accepted since: stale, remembered or not.
        let v = verify_remembering(r, &peer, None, Some(8), &remembered).unwrap();
        assert!(matches!(
            v.record_error,
            Some(RecordError::Stale {
                seq: 7,
                accepted: 8
            })
        ));
    }

    #[test]
    fn a_record_that_fails_is_not_remembered() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let remembered = VerifiedRecords::new(DEFAULT_VERIFIED_RECORDS);
        let mut bytes = record_bytes(&key, 7, &["/ip4/192.0.2.7/tcp/4001"]);
        // The signature is the envelope's last field: spoil its last byte.
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let mut r = received_from(&key);
        r.signed_peer_record = Some(bytes);
        for _ in 0..2 {
            let v = verify_remembering(r.clone(), &peer, None, None, &remembered).unwrap();
            assert!(matches!(v.record_error, Some(RecordError::BadSignature)));
        }
        assert!(remembered.is_empty());
    }

    #[test]
    fn valid_record_addresses_win() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let mut r = received_from(&key);
        r.signed_peer_record = Some(record_bytes(&key, 7, &["/ip4/192.0.2.7/tcp/4001"]));
        let v = verify(r, &peer, None, Some(7)).unwrap();
        assert_eq!(v.listen_addrs, vec![ma("/ip4/192.0.2.7/tcp/4001")]);
        assert_eq!(v.record.as_ref().unwrap().0.seq, 7);
    }

    #[test]
    fn bad_records_fall_back_to_plain_addresses() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let thief = Keypair::generate_ed25519();
        let cases: Vec<(Vec<u8>, Option<u64>)> = vec![
            // Signed by another key (for another peer).
            (record_bytes(&thief, 1, &["/ip4/6.6.6.6/tcp/1"]), None),
            // Garbage.
            (vec![1, 2, 3], None),
            // Older than what we accepted.
            (record_bytes(&key, 3, &["/ip4/6.6.6.6/tcp/1"]), Some(4)),
        ];
        for (bytes, seq) in cases {
            let mut r = received_from(&key);
            r.signed_peer_record = Some(bytes);
            let v = verify(r, &peer, None, seq).unwrap();
            assert!(v.record.is_none());
            assert!(v.record_error.is_some());
            assert_eq!(v.listen_addrs, vec![ma("/ip4/10.0.0.1/tcp/1")]);
        }
    }

    #[test]
    fn addresses_naming_another_peer_are_dropped() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let other = PeerId::random();
        let mut r = received_from(&key);
        r.listen_addrs = vec![
            ma(&format!("/ip4/10.0.0.2/tcp/2/p2p/{peer}")),
            ma(&format!("/ip4/10.0.0.3/tcp/3/p2p/{other}")),
            ma(&format!("/p2p/{peer}")),
        ];
        let v = verify(r, &peer, None, None).unwrap();
        assert_eq!(v.listen_addrs, vec![ma("/ip4/10.0.0.2/tcp/2")]);
    }
}
