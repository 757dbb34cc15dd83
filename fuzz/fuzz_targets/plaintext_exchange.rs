//! The plaintext handshake decoder never panics and never consumes a byte past the remote's
//! exchange message, whatever bytes arrive and however they are split; a key it accepts
//! always hashes to the peer id sent with it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lp2p_core::{Keypair, PublicKey, varint};
use lp2p_plaintext::{Handshake, MAX_EXCHANGE_LEN, decode_exchange};

fn local_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| Keypair::generate_ed25519().public())
}

fuzz_target!(|data: &[u8]| {
    if let Ok((peer, key)) = decode_exchange(data) {
        assert_eq!(peer, key.to_peer_id());
    }

    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut handshake = Handshake::new(local_key(), None, MAX_EXCHANGE_LEN);
    let mut out = Vec::new();
    assert!(handshake.poll_transmit(&mut out));
    let mut consumed = 0;
    let mut failed = false;
    for chunk in rest.chunks(usize::from(first % 32) + 1) {
        match handshake.handle_input(chunk) {
            Ok(used) => {
                assert!(used <= chunk.len());
                consumed += used;
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
        if handshake.is_finished() {
            break;
        }
    }
    assert!(consumed <= rest.len());
    if !failed {
        assert_eq!(handshake.received(), consumed);
    }
    if handshake.remote_key().is_some() {
        // Exactly the length prefix and the body were consumed, nothing behind them.
        let (len, prefix) = varint::decode(rest).unwrap().unwrap();
        assert_eq!(consumed as u64, prefix as u64 + len);
        assert_eq!(handshake.wanted(), 0);
    }
});
