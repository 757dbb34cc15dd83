//! Signed envelopes and peer records (identify's signedPeerRecord, gossipsub PX) never panic
//! on arbitrary bytes; what decodes re-encodes to something that decodes the same, and a
//! record that verifies was signed by the peer it describes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_peerstore::record::{PeerRecord, SignedEnvelope};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = SignedEnvelope::decode(data) {
        let again =
            SignedEnvelope::decode(&envelope.encode()).expect("re-encoded envelope decodes");
        assert_eq!(again, envelope);
        if let Ok((record, _format)) = PeerRecord::from_envelope(&envelope) {
            assert_eq!(record.peer_id, envelope.public_key().to_peer_id());
            let peer = record.peer_id;
            assert!(PeerRecord::verify_from(data, &peer).is_ok());
        }
    }
    if let Ok(record) = PeerRecord::decode(data) {
        let again = PeerRecord::decode(&record.encode()).expect("re-encoded record decodes");
        assert_eq!(again, record);
    }
});
