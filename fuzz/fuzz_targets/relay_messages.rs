//! The circuit relay v2 decoders (hop and stop messages, reservation vouchers) never panic
//! on any input; what decodes re-encodes to a message that decodes to the same value, and
//! no decoded reservation holds more addresses than the cap.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lp2p_core::{Keypair, PeerId};
use lp2p_relay::message::{HopMessage, MAX_ADDRS_PER_MESSAGE, StopMessage};
use lp2p_relay::voucher::Voucher;

fn peers() -> &'static (PeerId, PeerId) {
    static PEERS: OnceLock<(PeerId, PeerId)> = OnceLock::new();
    PEERS.get_or_init(|| {
        (
            Keypair::generate_ed25519().public().to_peer_id(),
            Keypair::generate_ed25519().public().to_peer_id(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = HopMessage::decode(data) {
        if let HopMessage::Status {
            reservation: Some(r),
            ..
        } = &msg
        {
            assert!(r.addrs.len() <= MAX_ADDRS_PER_MESSAGE);
        }
        assert_eq!(HopMessage::decode(&msg.encode()).as_ref(), Ok(&msg));
    }
    if let Ok(msg) = StopMessage::decode(data) {
        assert_eq!(StopMessage::decode(&msg.encode()).as_ref(), Ok(&msg));
    }
    let (relay, peer) = peers();
    // A forged voucher never verifies: nobody but the relay holds its key.
    assert!(Voucher::verify(data, relay, peer, 0).is_err());
});
