//! Arbitrary bytes into the sans-IO mplex session, split into arbitrary pieces, with the
//! application accepting streams and reacting to events, and time passing whenever input
//! pauses. The session never panics, never hangs, never holds more receive memory than its
//! cap allows, and never lets frames waiting to be sent pile up.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lp2p_core::Role;
use lp2p_mplex::{Event, MplexConfig, Session};

const CONNECTION_CAP: usize = 64 * 1024;
/// The session's receive chunk size: a frame may overshoot the cap by one chunk.
const CHUNK: usize = 16 * 1024;
const SEND_CAP: usize = 1024;
const SPLIT: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let config = MplexConfig::default()
        .with_max_connection_buffer(CONNECTION_CAP)
        .with_max_stream_buffer(8 * 1024)
        .with_max_streams(16)
        .with_max_send_buffer(SEND_CAP)
        .with_split_size(SPLIT);
    let role = if control & 1 == 0 {
        Role::Initiator
    } else {
        Role::Responder
    };
    let mut session = Session::new(role, config);
    if control & 0x80 != 0 {
        // A few streams of our own, so Receiver-flagged frames find something.
        for _ in 0..3 {
            let _ = session.open_stream();
        }
    }
    let piece_len = usize::from((control >> 1) & 0x3f) + 1;
    let mut now = Instant::now();
    let mut rest = input;
    let mut out = Vec::new();
    let mut buf = [0u8; 300];
    let mut idle_rounds = 0;
    while !rest.is_empty() {
        let piece = &rest[..piece_len.min(rest.len())];
        match session.handle_input(piece, now) {
            Ok(used) => {
                rest = &rest[used..];
                if used == 0 {
                    // Paused: let the stall timeout pass.
                    idle_rounds += 1;
                    assert!(idle_rounds < 1000, "input stays paused");
                    now += Duration::from_secs(3600);
                    session.handle_timeout(now);
                } else {
                    idle_rounds = 0;
                }
            }
            Err(_) => {
                assert!(session.is_closed());
                assert!(!session.wants_input());
                return;
            }
        }
        while let Ok(Some(id)) = session.accept_stream() {
            let _ = session.write(id, b"hello");
            if id.number() % 3 == 0 {
                let _ = session.close_stream(id);
            }
        }
        while let Some(event) = session.poll_event() {
            if let Event::Readable(id) = event {
                if session.is_reset(id) {
                    session.release_stream(id);
                } else if id.number() % 2 == 0 {
                    // Read a little: some streams fall behind on purpose.
                    let _ = session.read(id, &mut buf, now);
                }
            }
        }
        assert!(session.buffered_bytes() <= CONNECTION_CAP + CHUNK);
        out.clear();
        session.poll_transmit(&mut out);
        // Writers stop at the send cap plus a frame; replies to input at twice the cap plus a
        // frame, plus the frame being answered.
        assert!(
            out.len() <= 2 * SEND_CAP + 2 * SPLIT + 64,
            "queued {}",
            out.len()
        );
    }
    let _ = session.handle_eof();
});
