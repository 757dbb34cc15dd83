//! The Noise transport decoder never panics on arbitrary frames, whatever bytes arrive and
//! however they are split, and genuine frames mixed into the stream decrypt to their
//! plaintext until the first forged one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_noise::{FrameDecoder, FrameEncoder};

/// A transport pair with a fixed key (a handshake per run would dominate the run time; the
/// handshake has its own target).
fn transport() -> (FrameEncoder, FrameDecoder) {
    let key = [7u8; 32];
    (
        FrameEncoder::insecure_with_key(key),
        FrameDecoder::insecure_with_key(key),
    )
}

fuzz_target!(|data: &[u8]| {
    let (mut encoder, mut decoder) = transport();
    let mut out = vec![0u8; 70_000];
    // While only genuine frames have arrived, what decodes must be exactly what was sent.
    let mut clean = true;
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    for chunk in data.chunks(257) {
        let Some((&op, body)) = chunk.split_first() else {
            continue;
        };
        let bytes: Vec<u8> = if op & 1 == 0 {
            // Raw attacker bytes.
            clean &= body.is_empty();
            body.to_vec()
        } else {
            // A genuine frame of this plaintext.
            encoder.stage(body).expect("stage");
            encoder.seal().expect("seal");
            let frame = encoder.pending_output().to_vec();
            encoder.advance(frame.len());
            sent.extend_from_slice(body);
            frame
        };
        let step = usize::from(op >> 1) + 1;
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + step).min(bytes.len());
            let n = decoder.input(&bytes[at..end]);
            // After decoding all it can, the decoder always has room for more.
            assert!(
                n > 0,
                "decoder accepted no bytes with nothing left to decode"
            );
            at += n;
            loop {
                let cap = (usize::from(op) * 300).min(out.len());
                let decoded = match decoder.decode_into(&mut out[..cap]) {
                    Ok(Some(n)) => {
                        assert!(n <= 65519);
                        received.extend_from_slice(&out[..n]);
                        true
                    }
                    Ok(None) => match decoder.decode() {
                        Ok(decoded) => decoded,
                        Err(_) => return,
                    },
                    Err(_) => return,
                };
                let plain = decoder.plaintext();
                assert!(plain.len() <= 65519);
                received.extend_from_slice(plain);
                let len = plain.len();
                decoder.consume(len);
                if !decoded {
                    break;
                }
            }
        }
        if clean {
            assert_eq!(received, sent);
        }
    }
});
