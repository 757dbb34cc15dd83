//! The sans-IO yamux connection never panics and stays within its caps, whatever bytes arrive,
//! in whatever pieces, in either role, while the application side opens, accepts, reads,
//! writes, half-closes, resets and drops streams. Input goes in both ways the shell uses:
//! copied (`handle_input`) and read straight into a stream's buffer (`body_input_buffer`).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lp2p_core::Role;
use lp2p_yamux::{Connection, StreamId, YamuxConfig};

const MAX_STREAMS: usize = 8;
const MAX_WINDOW: usize = 4 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let role = if control & 1 == 0 {
        Role::Initiator
    } else {
        Role::Responder
    };
    let split = usize::from(control >> 1) + 1;
    let config = YamuxConfig::default()
        .with_max_streams(MAX_STREAMS)
        .with_max_accept_backlog(4)
        .with_max_ack_backlog(4)
        .with_max_connection_window(MAX_WINDOW)
        .with_max_send_buffer(16 * 1024)
        .with_max_control_backlog(4096);
    let start = Instant::now();
    let mut conn = Connection::new(role, config, start);
    let mut out = Vec::new();
    let mut buf = [0u8; 300];
    let mut ids: Vec<StreamId> = Vec::new();

    for (i, chunk) in rest.chunks(split).enumerate() {
        let now = start + Duration::from_millis(u64::try_from(i).unwrap_or(0) * 7);
        let mut chunk = chunk;
        if i % 2 == 0
            && let Some(spare) = conn.body_input_buffer()
        {
            let n = spare.len().min(chunk.len());
            spare[..n].copy_from_slice(&chunk[..n]);
            conn.commit_body_input(n, now);
            chunk = &chunk[n..];
        }
        if conn.wants_input() {
            let _ = conn.handle_input(chunk, now);
        }
        while let Ok(Some(id)) = conn.accept_stream() {
            ids.push(id);
        }
        // The application reacts, steered by the data itself.
        let action = chunk.first().copied().unwrap_or(0);
        if let Some(&id) = ids.get(usize::from(action >> 4) % ids.len().max(1)) {
            match action & 7 {
                0 | 1 => {
                    let _ = conn.read(id, &mut buf, now);
                }
                2 => {
                    let _ = conn.write(id, chunk);
                }
                3 => {
                    let _ = conn.close_stream(id);
                }
                4 => conn.reset_stream(id),
                5 => {
                    conn.drop_stream(id);
                    ids.retain(|&x| x != id);
                }
                _ => {}
            }
        }
        if action & 7 == 6
            && let Ok(Some(id)) = conn.open_stream()
        {
            ids.push(id);
        }
        if action == 0xff {
            conn.close();
        }
        conn.handle_timeout(now);
        out.clear();
        conn.poll_transmit(&mut out);
        while conn.poll_event().is_some() {}
        assert!(conn.num_streams() <= 2 * MAX_STREAMS);
        assert!(conn.window_budget() <= MAX_WINDOW);
        for &id in &ids {
            if let Some(status) = conn.stream_status(id) {
                assert!(status.buffered <= status.window_max as usize);
            }
        }
    }
    conn.handle_eof();
    assert!(conn.is_closed());
});
