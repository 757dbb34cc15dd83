//! The multistream-select cores (listener, dialer, `ls` request) never panic, never consume
//! more than they are given, and only ever agree on a protocol they offered or accept,
//! whatever bytes arrive and however they are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_multiselect::{Config, Dialer, ListRequest, Listener, Protocols, Version, message};

/// Feeds `data` in pieces of `piece` bytes through a buffer the way the async shell does;
/// returns the bytes left unconsumed when the core stopped.
fn drive(
    data: &[u8],
    piece: usize,
    mut handle: impl FnMut(&[u8]) -> Result<usize, lp2p_multiselect::MultiselectError>,
) -> usize {
    let mut buf = Vec::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match handle(&buf) {
                Ok(0) => break,
                Ok(used) => {
                    assert!(used <= buf.len());
                    buf.drain(..used);
                }
                Err(_) => return buf.len(),
            }
        }
    }
    buf.len()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 16) + 1;
    let config = Config::default()
        .with_max_message_len(usize::from(first) * 8 + 8)
        .with_max_rounds(usize::from(first % 8) + 1);

    // Listener: an exact set plus a predicate.
    let mut listener = Listener::new(
        Protocols::new()
            .with("/a/1")
            .with("/b/1")
            .with_predicate(|id| id.starts_with("/fam/")),
        config,
    );
    drive(rest, piece, |input| listener.handle_input(input));
    let mut out = Vec::new();
    listener.poll_transmit(&mut out);
    if let Some(selected) = listener.selected() {
        let id = selected.as_str();
        assert!(id == "/a/1" || id == "/b/1" || id.starts_with("/fam/"));
        // The answer ends with the echo of the agreed protocol.
        let mut echo = Vec::new();
        message::encode_message(id, &mut echo);
        assert!(out.ends_with(&echo));
    }
    assert!(listener.rounds() <= config.max_rounds);

    // Dialer, lazy or not.
    let version = if first & 0x80 == 0 {
        Version::V1
    } else {
        Version::V1Lazy
    };
    if let Ok(mut dialer) = Dialer::new(["/x/1", "/y/1", "/z/1"], version, config) {
        drive(rest, piece, |input| dialer.handle_input(input));
        if let Some(selected) = dialer.selected() {
            assert!(dialer.offered().contains(selected));
        }
        let mut out = Vec::new();
        dialer.poll_transmit(&mut out);
    }

    // `ls` request.
    let mut ls = ListRequest::new(config);
    drive(rest, piece, |input| ls.handle_input(input));
    if let Some(listed) = ls.protocols() {
        assert!(listed.iter().all(|id| id.as_str().starts_with('/')));
    }
});
