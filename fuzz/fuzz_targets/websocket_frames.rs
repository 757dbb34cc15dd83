//! Arbitrary bytes into the sans-IO WebSocket session (either side, small limits), split
//! into arbitrary pieces and read through output buffers of arbitrary sizes, sometimes
//! through the shell's in-place path. The session never panics, never produces more payload
//! than it consumed, never queues more than one pong and one close, and after an error
//! reads nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_websocket::Limits;
use lp2p_websocket::frame::MAX_HEADER_LEN;
use lp2p_websocket::session::{Session, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let side = if control & 1 == 0 {
        Side::Server
    } else {
        Side::Client
    };
    let limits = Limits {
        max_frame_len: 4096,
        max_message_len: 8192,
        max_write_frame: 512,
    };
    let mut session = Session::new(side, limits);
    let piece = usize::from(control >> 4).max(1);
    let out_len = usize::from((control >> 1) & 0x7) * 13;
    let mut out = vec![0u8; out_len];
    let mut failed = false;
    for chunk in input.chunks(piece) {
        let mut at = 0;
        while at < chunk.len() {
            // The shell's zero-copy path: payload read straight into the caller's buffer.
            if control & 0x08 != 0
                && let Some(remaining) = session.data_remaining()
            {
                let n = (chunk.len() - at).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let mut direct = chunk[at..at + n].to_vec();
                assert_eq!(session.unmask_in_place(&mut direct), n);
                at += n;
                continue;
            }
            match session.decode(&chunk[at..], &mut out) {
                Ok(d) => {
                    assert!(d.consumed <= chunk.len() - at);
                    assert!(d.produced <= out.len());
                    assert!(d.produced <= d.consumed);
                    assert!(!failed, "read after a failure");
                    if d.consumed == 0 {
                        break;
                    }
                    at += d.consumed;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    let mut tx = Vec::new();
    session.poll_transmit(&mut tx);
    // At most a pong and a close, each a control frame of at most 125 bytes.
    assert!(tx.len() <= 2 * (MAX_HEADER_LEN + 125));
    // Writing after that either works or says the connection is closed.
    let _ = session.encode_data(input, &mut tx);
});
