//! The identify decoder never panics and never holds more than its limits, whatever bytes
//! arrive and however they are split; what it accepts passes through `verify` without a
//! panic, and a verified answer's key always belongs to the peer it was checked against.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lp2p_core::{Keypair, PeerId};
use lp2p_identify::config::{MAX_MESSAGE_LEN, MAX_MESSAGES};
use lp2p_identify::{IdentifyDecoder, verify};

fn peer() -> &'static (PeerId, lp2p_core::PublicKey) {
    static PEER: OnceLock<(PeerId, lp2p_core::PublicKey)> = OnceLock::new();
    PEER.get_or_init(|| {
        let key = Keypair::generate_ed25519().public();
        (key.to_peer_id(), key)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
    for chunk in rest.chunks(usize::from(split) % 64 + 1) {
        if decoder.handle_input(chunk).is_err() {
            return;
        }
        assert!(decoder.messages() <= MAX_MESSAGES);
    }
    let Ok(received) = decoder.finish() else {
        return;
    };
    let (peer, key) = peer();
    // With the handshake key standing in, and with none: never a panic.
    if let Ok(verified) = verify(received.clone(), peer, Some(key.clone()), None) {
        assert_eq!(verified.public_key.to_peer_id(), *peer);
    }
    let _ = verify(received, peer, None, Some(u64::MAX));
});
