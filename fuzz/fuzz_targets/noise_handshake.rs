//! The Noise handshake state machines never panic on arbitrary handshake messages: raw bytes
//! as messages 1 to 3 for the responder and the initiator, and genuine messages with bytes
//! flipped or cut.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lp2p_core::{Keypair, Role};
use lp2p_noise::{Handshake, HandshakeConfig, Step};

/// Identities for seeds 0 to 7, derived once.
fn identity(seed: u8) -> Keypair {
    static KEYS: OnceLock<Vec<Keypair>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..8u8)
            .map(|s| Keypair::ed25519_from_bytes([s; 32]).expect("32-byte seed"))
            .collect()
    });
    keys[usize::from(seed % 8)].clone()
}

fn handshake(role: Role, seed: u8) -> Handshake {
    let config = HandshakeConfig {
        max_message_size: 4096,
        ..HandshakeConfig::default()
    };
    Handshake::with_keys(role, identity(seed), config, [seed; 32], [seed ^ 0x55; 32])
}

/// Splits `data` into three messages at positions given by its first two bytes.
fn three_messages(data: &[u8]) -> [&[u8]; 3] {
    let (a, b, rest) = match data {
        [a, b, rest @ ..] => (usize::from(*a), usize::from(*b), rest),
        _ => (0, 0, data),
    };
    let first = a.min(rest.len());
    let (m1, rest) = rest.split_at(first);
    let second = (b * 2).min(rest.len());
    let (m2, m3) = rest.split_at(second);
    [m1, m2, m3]
}

fuzz_target!(|data: &[u8]| {
    let [m1, m2, m3] = three_messages(data);

    // Raw bytes into the responder: message 1, then (if it got that far) message 3.
    let mut resp = handshake(Role::Responder, 1);
    if resp.read_message(m1).is_ok() {
        let mut out = Vec::new();
        if resp.write_message(&mut out).is_ok() && resp.read_message(m3).is_ok() {
            assert_eq!(resp.next_step(), Step::Done);
            let _ = resp.finish();
        }
    }

    // Raw bytes into the initiator as message 2.
    let mut init = handshake(Role::Initiator, 2);
    let mut out = Vec::new();
    init.write_message(&mut out).expect("message 1");
    let _ = init.read_message(m2);

    // A genuine exchange whose messages 2 and 3 get the fuzzer's bytes XORed in and may be
    // cut short: any corruption must be an error, never a panic.
    let mut init = handshake(Role::Initiator, 3);
    let mut resp = handshake(Role::Responder, 4);
    let mut frame = Vec::new();
    init.write_message(&mut frame).expect("message 1");
    resp.read_message(&frame[2..]).expect("genuine message 1");
    frame.clear();
    resp.write_message(&mut frame).expect("message 2");
    let mut msg2 = frame[2..].to_vec();
    for (byte, flip) in msg2.iter_mut().zip(m2) {
        *byte ^= flip;
    }
    let keep = m1.first().map_or(msg2.len(), |&k| {
        msg2.len().saturating_sub(usize::from(k) % 4 * 7)
    });
    msg2.truncate(keep);
    if init.read_message(&msg2).is_ok() {
        frame.clear();
        init.write_message(&mut frame).expect("message 3");
        let mut msg3 = frame[2..].to_vec();
        for (byte, flip) in msg3.iter_mut().zip(m3) {
            *byte ^= flip;
        }
        if resp.read_message(&msg3).is_ok() {
            let _ = resp.finish();
            let _ = init.finish();
        }
    }
});
