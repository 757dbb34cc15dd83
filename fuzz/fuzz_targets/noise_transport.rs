//! The Noise transport decoder never panics on arbitrary frames, whatever bytes arrive and
//! however they are split, and genuine frames mixed into the stream decrypt to their
//! plaintext until the first forged one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_core::{Keypair, Role};
use lp2p_noise::{FrameDecoder, FrameEncoder, Handshake, HandshakeConfig, Step};

/// A fixed-key handshake: the same transport keys every run.
fn transport() -> (FrameEncoder, FrameDecoder) {
    let id = |seed: u8| Keypair::ed25519_from_bytes([seed; 32]).expect("seed");
    let mut init = Handshake::with_keys(
        Role::Initiator,
        id(1),
        HandshakeConfig::default(),
        [1; 32],
        [2; 32],
    );
    let mut resp = Handshake::with_keys(
        Role::Responder,
        id(3),
        HandshakeConfig::default(),
        [3; 32],
        [4; 32],
    );
    let mut frame = Vec::new();
    while init.next_step() != Step::Done || resp.next_step() != Step::Done {
        let (writer, reader) = if init.next_step() == Step::Send {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        frame.clear();
        writer.write_message(&mut frame).expect("write");
        reader.read_message(&frame[2..]).expect("read");
    }
    let init = init.finish().expect("initiator");
    let resp = resp.finish().expect("responder");
    (init.encoder, resp.decoder)
}

fuzz_target!(|data: &[u8]| {
    let (mut encoder, mut decoder) = transport();
    let mut out = vec![0u8; 70_000];
    let mut chunks = data.chunks(257);
    while let Some(chunk) = chunks.next() {
        let Some((&op, body)) = chunk.split_first() else {
            continue;
        };
        let bytes: Vec<u8> = if op & 1 == 0 {
            // Raw attacker bytes.
            body.to_vec()
        } else {
            // A genuine frame of this plaintext.
            encoder.stage(body).expect("stage");
            encoder.seal().expect("seal");
            let frame = encoder.pending_output().to_vec();
            encoder.advance(frame.len());
            frame
        };
        let mut at = 0;
        let step = usize::from(op >> 1) + 1;
        while at < bytes.len() {
            let end = (at + step).min(bytes.len());
            let n = decoder.input(&bytes[at..end]);
            at += n;
            loop {
                let progressed = if op & 2 == 0 {
                    let cap = (usize::from(op) * 300).min(out.len());
                    match decoder.decode_into(&mut out[..cap]) {
                        Ok(Some(n)) => {
                            assert!(n <= 65519);
                            true
                        }
                        Ok(None) => match decoder.decode() {
                            Ok(decoded) => decoded,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    }
                } else {
                    match decoder.decode() {
                        Ok(decoded) => decoded,
                        Err(_) => return,
                    }
                };
                let plain = decoder.plaintext().len();
                assert!(plain <= 65519);
                decoder.consume(plain);
                if !progressed {
                    break;
                }
            }
            if n == 0 {
                // The buffer is full of undecodable data: must not happen, a frame always fits.
                panic!("decoder accepted no bytes with nothing left to decode");
            }
        }
    }
});
