//! Session tests: a scripted frame-level peer (send exact frames, expect exact frames back)
//! and two sessions wired together.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::unchecked_time_subtraction
)]

use super::recv_buffer::CHUNK_SIZE;
use super::*;
use crate::config::MAX_MESSAGE_SIZE;
use crate::wire::Frame;
use proptest::prelude::*;
use std::time::{Duration, Instant};

type OwnedFrame = (u64, Flag, Vec<u8>);

fn now() -> Instant {
    Instant::now()
}

/// Far enough in the future that every pause has timed out.
fn later() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn session(role: Role) -> Session {
    Session::new(role, MplexConfig::default())
}

fn encode(frames: &[(u64, Flag, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(stream, flag, payload) in frames {
        encode_frame(stream, flag, payload, &mut out);
    }
    out
}

/// Feeds frames and expects them all consumed.
fn feed(s: &mut Session, frames: &[(u64, Flag, &[u8])]) {
    let bytes = encode(frames);
    assert_eq!(s.handle_input(&bytes, now()).unwrap(), bytes.len());
}

/// Everything the session wants to send, as frames.
fn sent(s: &mut Session) -> Vec<OwnedFrame> {
    let mut bytes = Vec::new();
    s.poll_transmit(&mut bytes);
    let mut rest = &bytes[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (f, used) = Frame::parse(rest, MAX_MESSAGE_SIZE).unwrap().unwrap();
        frames.push((f.header.stream, f.header.flag, f.payload.to_vec()));
        rest = &rest[used..];
    }
    frames
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Reads until nothing more is there (or EOF); returns the bytes and whether EOF was seen.
fn drain(s: &mut Session, id: StreamId) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 7000];
    loop {
        match s.read(id, &mut buf, now()).unwrap() {
            Some(0) => return (out, true),
            Some(n) => out.extend_from_slice(&buf[..n]),
            None => return (out, false),
        }
    }
}

/// Takes the next stream the remote opened, as the application would.
fn accept(s: &mut Session) -> StreamId {
    s.accept_stream().unwrap().expect("a stream waits")
}

fn remote(n: u64) -> StreamId {
    StreamId::new(n, false)
}

fn local(n: u64) -> StreamId {
    StreamId::new(n, true)
}

// ------------------------------------------------------------------ frame types and flags

#[test]
fn spec_vectors_as_a_conversation() {
    // wire-formats.md 30.7: the remote opens stream 3 named "3" and says "hi"; we answer
    // "ok"; both close.
    let mut s = session(Role::Responder);
    assert_eq!(s.handle_input(&[0x18, 0x01, 0x33], now()).unwrap(), 3);
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(accept(&mut s), remote(3));
    assert_eq!(s.handle_input(&[0x1a, 0x02, b'h', b'i'], now()).unwrap(), 4);
    assert_eq!(events(&mut s), [Event::Readable(remote(3))]);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(remote(3), &mut buf, now()).unwrap(), Some(2));
    assert_eq!(&buf[..2], b"hi");
    assert_eq!(s.read(remote(3), &mut buf, now()).unwrap(), None);

    assert_eq!(s.write(remote(3), b"ok").unwrap(), Some(2));
    s.close_stream(remote(3)).unwrap();
    let mut wire = Vec::new();
    s.poll_transmit(&mut wire);
    assert_eq!(wire, [0x19, 0x02, b'o', b'k', 0x1b, 0x00]);

    assert_eq!(s.handle_input(&[0x1c, 0x00], now()).unwrap(), 2);
    assert_eq!(events(&mut s), [Event::Readable(remote(3))]);
    assert_eq!(s.read(remote(3), &mut buf, now()).unwrap(), Some(0), "EOF");
    assert_eq!(s.num_streams(), 0, "closed both ways");

    // Stream 16 (a two-byte header), reset by us.
    assert_eq!(s.handle_input(&[0x80, 0x01, 0x00], now()).unwrap(), 3);
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(accept(&mut s), remote(16));
    s.reset_stream(remote(16)).unwrap();
    let mut wire = Vec::new();
    s.poll_transmit(&mut wire);
    assert_eq!(wire, [0x85, 0x01, 0x00]); // ResetReceiver, stream 16

    // Stream 5, reset by the remote: 0x28 = 5 << 3 | NewStream, 0x2e = 5 << 3 | ResetInitiator.
    assert_eq!(s.handle_input(&[0x28, 0x00], now()).unwrap(), 2);
    assert_eq!(accept(&mut s), remote(5));
    assert_eq!(s.handle_input(&[0x2e, 0x00], now()).unwrap(), 2);
    assert_eq!(
        events(&mut s),
        [
            Event::InboundStream,
            Event::Readable(remote(5)),
            Event::Writable(remote(5))
        ]
    );
    assert!(matches!(
        s.read(remote(5), &mut buf, now()),
        Err(MplexError::StreamReset(_))
    ));
    // Stream 7, opened and reset before anyone accepted it: forgotten.
    assert_eq!(s.handle_input(&[0x38, 0x00, 0x3e, 0x00], now()).unwrap(), 4);
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(s.accept_stream().unwrap(), None);
    assert_eq!(s.num_streams(), 0);
}

#[test]
fn our_frames_use_initiator_flags_on_our_streams() {
    let mut s = session(Role::Initiator);
    let id = s.open_stream().unwrap();
    assert_eq!(id, local(1));
    s.write(id, b"abc").unwrap();
    s.close_stream(id).unwrap();
    let id2 = s.open_named_stream(b"chat").unwrap();
    assert_eq!(id2, local(3));
    s.reset_stream(id2).unwrap();
    assert_eq!(
        sent(&mut s),
        [
            (1, Flag::NewStream, b"1".to_vec()),
            (1, Flag::MessageInitiator, b"abc".to_vec()),
            (1, Flag::CloseInitiator, vec![]),
            (3, Flag::NewStream, b"chat".to_vec()),
            (3, Flag::ResetInitiator, vec![]),
        ]
    );
}

#[test]
fn our_frames_use_receiver_flags_on_their_streams() {
    let mut s = session(Role::Initiator);
    feed(&mut s, &[(7, Flag::NewStream, b"")]);
    let id = remote(7);
    s.write(id, b"xyz").unwrap();
    s.close_stream(id).unwrap();
    feed(&mut s, &[(9, Flag::NewStream, b"")]);
    s.reset_stream(remote(9)).unwrap();
    assert_eq!(
        sent(&mut s),
        [
            (7, Flag::MessageReceiver, b"xyz".to_vec()),
            (7, Flag::CloseReceiver, vec![]),
            (9, Flag::ResetReceiver, vec![]),
        ]
    );
}

#[test]
fn stream_numbers_follow_the_role() {
    let mut dialer = session(Role::Initiator);
    let mut listener = session(Role::Responder);
    let d: Vec<u64> = (0..3)
        .map(|_| dialer.open_stream().unwrap().number())
        .collect();
    let l: Vec<u64> = (0..3)
        .map(|_| listener.open_stream().unwrap().number())
        .collect();
    assert_eq!(d, [1, 3, 5]);
    assert_eq!(l, [0, 2, 4]);
    // Names are the numbers in decimal.
    assert_eq!(sent(&mut listener)[2], (4, Flag::NewStream, b"4".to_vec()));
}

#[test]
fn stream_numbers_run_out_cleanly() {
    let mut s = session(Role::Initiator);
    s.next_number = MAX_STREAM_NUMBER;
    let id = s.open_stream().unwrap();
    assert_eq!(id.number(), MAX_STREAM_NUMBER);
    assert!(matches!(
        s.open_stream(),
        Err(MplexError::StreamIdsExhausted)
    ));
    // The name is the number in decimal.
    let frames = sent(&mut s);
    assert_eq!(frames[0].2, MAX_STREAM_NUMBER.to_string().into_bytes());
}

#[test]
fn streams_are_keyed_by_number_and_opener() {
    // We open stream 1 and the remote opens its own stream 1: two different streams.
    let mut s = session(Role::Initiator);
    let mine = s.open_stream().unwrap();
    assert_eq!(mine, local(1));
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageReceiver, b"to mine"),
            (1, Flag::MessageInitiator, b"to theirs"),
            (1, Flag::CloseReceiver, b""),
        ],
    );
    assert_eq!(
        events(&mut s),
        [
            Event::InboundStream,
            Event::Readable(local(1)),
            Event::Readable(remote(1)),
            Event::Readable(local(1)), // the Close: EOF is readable
        ]
    );
    assert_eq!(accept(&mut s), remote(1));
    assert_eq!(drain(&mut s, local(1)), (b"to mine".to_vec(), true));
    assert_eq!(drain(&mut s, remote(1)), (b"to theirs".to_vec(), false));
    assert_eq!(s.num_streams(), 2);
}

#[test]
fn empty_messages_are_fine() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[(1, Flag::NewStream, b""), (1, Flag::MessageInitiator, b"")],
    );
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(drain(&mut s, remote(1)), (vec![], false));
}

#[test]
fn close_and_reset_bodies_are_skipped() {
    // The spec says Close and Reset carry no data; a peer that sends some anyway does not
    // desynchronise the parser.
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (3, Flag::NewStream, b""),
            (1, Flag::CloseInitiator, b"junk"),
            (3, Flag::ResetInitiator, b"more junk"),
            (1, Flag::MessageInitiator, b"late"),
        ],
    );
    // Stream 1 saw its Close and then data: the junk bodies did not desynchronise anything.
    assert_eq!(s.stats().streams_violated, 1, "data after close");
    assert_eq!(s.stats().bytes_discarded, 4 + 9 + 4);
    // Both were reset before anyone accepted them: nothing is left of them.
    assert_eq!(s.accept_stream().unwrap(), None);
    assert_eq!(s.num_streams(), 0);
}

// ------------------------------------------------------------------ state transitions

#[test]
fn half_close_both_ways() {
    let mut s = session(Role::Initiator);
    let id = s.open_stream().unwrap();
    s.write(id, b"request").unwrap();
    s.close_stream(id).unwrap();
    assert!(matches!(
        s.write(id, b"more"),
        Err(MplexError::WriteClosed(_))
    ));
    s.close_stream(id).unwrap(); // twice is fine
    assert_eq!(s.num_streams(), 1, "the remote may still write");
    let _ = sent(&mut s);

    feed(
        &mut s,
        &[
            (1, Flag::MessageReceiver, b"response"),
            (1, Flag::CloseReceiver, b""),
        ],
    );
    assert_eq!(drain(&mut s, id), (b"response".to_vec(), true));
    assert_eq!(
        s.read(id, &mut [0; 4], now()).unwrap(),
        Some(0),
        "EOF stays EOF"
    );
    assert_eq!(s.num_streams(), 0);
    assert!(sent(&mut s).is_empty(), "nothing more to say");
}

#[test]
fn remote_close_first_then_we_keep_writing() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (2, Flag::NewStream, b""),
            (2, Flag::MessageInitiator, b"q"),
            (2, Flag::CloseInitiator, b""),
        ],
    );
    let id = remote(2);
    assert_eq!(drain(&mut s, id), (b"q".to_vec(), true));
    // Our side is still open.
    assert_eq!(s.write(id, b"answer").unwrap(), Some(6));
    s.close_stream(id).unwrap();
    assert_eq!(
        sent(&mut s),
        [
            (2, Flag::MessageReceiver, b"answer".to_vec()),
            (2, Flag::CloseReceiver, vec![]),
        ]
    );
    assert_eq!(s.num_streams(), 0);
}

#[test]
fn remote_reset_drops_buffered_data_and_fails_both_ways() {
    let mut s = session(Role::Initiator);
    let id = s.open_stream().unwrap();
    let _ = sent(&mut s);
    feed(
        &mut s,
        &[
            (1, Flag::MessageReceiver, b"unread"),
            (1, Flag::ResetReceiver, b""),
        ],
    );
    assert_eq!(
        events(&mut s),
        [
            Event::Readable(id),
            Event::Readable(id),
            Event::Writable(id)
        ]
    );
    assert_eq!(s.buffered_bytes(), 0, "data dropped");
    assert!(matches!(
        s.read(id, &mut [0; 8], now()),
        Err(MplexError::StreamReset(_))
    ));
    assert!(matches!(s.write(id, b"x"), Err(MplexError::StreamReset(_))));
    assert!(matches!(
        s.close_stream(id),
        Err(MplexError::StreamReset(_))
    ));
    s.reset_stream(id).unwrap(); // no-op
    assert!(sent(&mut s).is_empty(), "no reset is sent back");
    assert_eq!(s.num_streams(), 0);
    // Frames still in flight for it are ignored.
    feed(&mut s, &[(1, Flag::MessageReceiver, b"late")]);
    assert!(events(&mut s).is_empty());
}

#[test]
fn local_reset_drops_data_and_later_frames() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (4, Flag::NewStream, b""),
            (4, Flag::MessageInitiator, b"abc"),
        ],
    );
    let _ = events(&mut s);
    s.reset_stream(remote(4)).unwrap();
    assert_eq!(s.buffered_bytes(), 0);
    assert_eq!(sent(&mut s), [(4, Flag::ResetReceiver, vec![])]);
    // Data in flight after our reset is dropped silently.
    feed(
        &mut s,
        &[
            (4, Flag::MessageInitiator, b"in flight"),
            (4, Flag::CloseInitiator, b""),
        ],
    );
    assert!(events(&mut s).is_empty());
    assert!(matches!(
        s.read(remote(4), &mut [0; 8], now()),
        Err(MplexError::StreamReset(_))
    ));
    assert!(sent(&mut s).is_empty());
}

#[test]
fn reset_after_both_closed_sends_nothing() {
    let mut s = session(Role::Initiator);
    let id = s.open_stream().unwrap();
    s.close_stream(id).unwrap();
    let _ = sent(&mut s);
    feed(&mut s, &[(1, Flag::CloseReceiver, b"")]);
    s.reset_stream(id).unwrap();
    assert!(sent(&mut s).is_empty());
}

#[test]
fn dropping_a_stream_half_closes_and_discards() {
    let mut s = session(Role::Initiator);
    let id = s.open_stream().unwrap();
    s.write(id, b"bye").unwrap();
    feed(&mut s, &[(1, Flag::MessageReceiver, b"unread")]);
    s.release_stream(id);
    assert_eq!(
        sent(&mut s),
        [
            (1, Flag::NewStream, b"1".to_vec()),
            (1, Flag::MessageInitiator, b"bye".to_vec()),
            (1, Flag::CloseInitiator, vec![]),
        ]
    );
    assert_eq!(s.buffered_bytes(), 0, "unread data dropped");
    assert_eq!(s.num_streams(), 1, "until the remote closes too");
    let _ = events(&mut s);
    feed(&mut s, &[(1, Flag::MessageReceiver, b"more")]);
    assert!(events(&mut s).is_empty(), "nobody to tell");
    assert_eq!(s.buffered_bytes(), 0);
    feed(&mut s, &[(1, Flag::CloseReceiver, b"")]);
    assert_eq!(s.num_streams(), 0);
    assert!(s.streams.is_empty(), "forgotten");
    assert!(sent(&mut s).is_empty());
}

#[test]
fn dropping_a_finished_stream_forgets_it() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[(0, Flag::NewStream, b""), (0, Flag::CloseInitiator, b"")],
    );
    s.close_stream(remote(0)).unwrap();
    assert_eq!(s.streams.len(), 1, "held by the application");
    s.release_stream(remote(0));
    assert!(s.streams.is_empty());
    // A reset stream is forgotten on release too, without a Close.
    feed(&mut s, &[(2, Flag::NewStream, b"")]);
    s.reset_stream(remote(2)).unwrap();
    s.release_stream(remote(2));
    assert!(s.streams.is_empty());
    assert_eq!(
        sent(&mut s),
        [
            (0, Flag::CloseReceiver, vec![]),
            (2, Flag::ResetReceiver, vec![])
        ]
    );
}

#[test]
fn local_close_fails_everything_but_buffered_reads() {
    let mut s = session(Role::Initiator);
    let a = s.open_stream().unwrap();
    let b = s.open_stream().unwrap();
    feed(
        &mut s,
        &[
            (1, Flag::MessageReceiver, b"left"),
            (3, Flag::CloseReceiver, b""),
        ],
    );
    s.close();
    assert!(s.is_closed());
    assert!(matches!(s.open_stream(), Err(MplexError::ConnectionClosed)));
    assert!(matches!(
        s.write(a, b"x"),
        Err(MplexError::ConnectionClosed)
    ));
    assert!(matches!(
        s.close_stream(a),
        Err(MplexError::ConnectionClosed)
    ));
    assert!(!s.wants_input());
    assert!(matches!(
        s.handle_input(&[0], now()),
        Err(MplexError::ConnectionClosed)
    ));
    let mut buf = [0u8; 8];
    assert_eq!(s.read(a, &mut buf, now()).unwrap(), Some(4));
    assert!(matches!(
        s.read(a, &mut buf, now()),
        Err(MplexError::ConnectionClosed)
    ));
    assert_eq!(
        s.read(b, &mut buf, now()).unwrap(),
        Some(0),
        "b was closed by the remote"
    );
    // Frames queued before the close are still handed out.
    assert_eq!(sent(&mut s).len(), 2);
    s.release_stream(a);
    s.release_stream(b);
    assert!(s.streams.is_empty());
}

#[test]
fn eof_at_a_frame_boundary_closes_cleanly() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (0, Flag::NewStream, b""),
            (0, Flag::MessageInitiator, b"tail"),
        ],
    );
    s.handle_eof().unwrap();
    assert!(s.is_closed());
    let mut buf = [0u8; 8];
    assert_eq!(s.read(remote(0), &mut buf, now()).unwrap(), Some(4));
    assert!(matches!(
        s.read(remote(0), &mut buf, now()),
        Err(MplexError::ConnectionClosed)
    ));
}

// ------------------------------------------------------------------ bad input

#[test]
fn flag_seven_is_fatal() {
    let mut s = session(Role::Responder);
    // Stream 2, flag 7: header 0x17.
    assert!(matches!(
        s.handle_input(&[0x17, 0x00], now()),
        Err(MplexError::UnknownFlag { stream: 2, flag: 7 })
    ));
    assert!(s.is_closed());
    assert!(!s.wants_input());
    assert!(matches!(
        s.handle_input(&[0x00, 0x00], now()),
        Err(MplexError::ConnectionClosed)
    ));
}

#[test]
fn length_over_the_maximum_is_fatal() {
    let mut s = session(Role::Responder);
    let mut bytes = vec![0x00, 0x00, 0x02];
    lp2p_core::varint::encode_into(MAX_MESSAGE_SIZE as u64 + 1, &mut bytes);
    assert!(matches!(
        s.handle_input(&bytes, now()),
        Err(MplexError::MessageTooLarge { .. })
    ));
    assert!(s.is_closed());
    // A smaller configured maximum applies, to every frame kind.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_message_size(10),
    );
    assert!(matches!(
        s.handle_input(&encode(&[(0, Flag::NewStream, &[b'n'; 11])]), now()),
        Err(MplexError::MessageTooLarge { len: 11, max: 10 })
    ));
}

#[test]
fn bad_varints_are_fatal() {
    let mut s = session(Role::Responder);
    assert!(matches!(
        s.handle_input(&[0x80, 0x00, 0x00], now()),
        Err(MplexError::InvalidVarint(_))
    ));
    let mut s = session(Role::Responder);
    assert!(matches!(
        s.handle_input(&[0xff; 12], now()),
        Err(MplexError::InvalidVarint(_))
    ));
}

#[test]
fn truncated_headers_wait_for_more_bytes() {
    // A frame with a 3-byte header varint and a 2-byte length, fed one byte at a time.
    let payload = vec![9u8; 300];
    let bytes = encode(&[
        (20_000, Flag::NewStream, b"name"),
        (20_000, Flag::MessageInitiator, &payload),
    ]);
    let mut s = session(Role::Responder);
    for byte in &bytes {
        assert_eq!(
            s.handle_input(std::slice::from_ref(byte), now()).unwrap(),
            1
        );
    }
    assert_eq!(drain(&mut s, remote(20_000)).0, payload);
    // A header split over two inputs at every position.
    for cut in 1..bytes.len() {
        let mut s = session(Role::Responder);
        s.handle_input(&bytes[..cut], now()).unwrap();
        s.handle_input(&bytes[cut..], now()).unwrap();
        assert_eq!(drain(&mut s, remote(20_000)).0, payload, "cut at {cut}");
    }
}

#[test]
fn eof_inside_a_frame_is_an_error() {
    let bytes = encode(&[
        (3, Flag::NewStream, b""),
        (3, Flag::MessageInitiator, b"abcd"),
    ]);
    // Inside the second header, and inside its payload.
    for cut in [3, 5] {
        let mut s = session(Role::Responder);
        s.handle_input(&bytes[..cut], now()).unwrap();
        assert!(matches!(s.handle_eof(), Err(MplexError::TruncatedFrame)));
        assert!(s.is_closed());
    }
}

#[test]
fn new_stream_reusing_an_open_id_is_fatal() {
    let mut s = session(Role::Responder);
    feed(&mut s, &[(5, Flag::NewStream, b"")]);
    assert!(matches!(
        s.handle_input(&encode(&[(5, Flag::NewStream, b"")]), now()),
        Err(MplexError::DuplicateStream(5))
    ));
    assert!(s.is_closed());
}

#[test]
fn frames_for_unknown_streams_are_ignored() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (10, Flag::MessageInitiator, b"who?"),
            (11, Flag::MessageReceiver, b"me?"),
            (12, Flag::CloseInitiator, b""),
            (13, Flag::ResetReceiver, b""),
        ],
    );
    assert!(events(&mut s).is_empty());
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.stats().frames_for_unknown_streams, 4);
    assert_eq!(s.stats().bytes_discarded, 7);
    assert!(!s.is_closed());
}

#[test]
fn a_flood_of_new_streams_is_refused_over_the_limit() {
    let mut s = Session::new(Role::Responder, MplexConfig::default().with_max_streams(4));
    let frames: Vec<(u64, Flag, &[u8])> = (0..10).map(|n| (n, Flag::NewStream, &b""[..])).collect();
    feed(&mut s, &frames);
    let opened = events(&mut s);
    assert_eq!(opened, [Event::InboundStream; 4]);
    assert_eq!(s.num_streams(), 4);
    assert_eq!(s.pending_accept(), 4);
    assert_eq!(s.stats().streams_refused, 6);
    let resets = sent(&mut s);
    assert_eq!(
        resets,
        (4..10)
            .map(|n| (n, Flag::ResetReceiver, vec![]))
            .collect::<Vec<_>>()
    );
    // Refused streams are unknown: their data is ignored.
    feed(&mut s, &[(7, Flag::MessageInitiator, b"ignored")]);
    assert!(events(&mut s).is_empty());
    // Once a stream finishes, a new one fits.
    assert_eq!(accept(&mut s), remote(0));
    s.reset_stream(remote(0)).unwrap();
    feed(&mut s, &[(100, Flag::NewStream, b"")]);
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(s.pending_accept(), 4);
    // The limit applies to our own streams too, separately.
    for _ in 0..4 {
        s.open_stream().unwrap();
    }
    assert!(matches!(
        s.open_stream(),
        Err(MplexError::TooManyStreams(4))
    ));
}

fn stall() -> Duration {
    MplexConfig::default().stall_timeout()
}

fn grace() -> Duration {
    MplexConfig::default().reader_grace()
}

/// Feeds frames at time `at` and expects them all consumed.
fn feed_at(s: &mut Session, frames: &[(u64, Flag, &[u8])], at: Instant) {
    let bytes = encode(frames);
    assert_eq!(s.handle_input(&bytes, at).unwrap(), bytes.len());
}

#[test]
fn a_stream_past_its_share_borrows_memory_until_its_reader_stalls() {
    // Issue 16: one stream nobody reads must not stall the others. It goes past its share
    // without pausing input, and is reset once its reader has read nothing for the stall
    // timeout.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_stream_buffer(100),
    );
    let start = now();
    feed_at(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (3, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &[1; 60]),
            (1, Flag::MessageInitiator, &[2; 40]), // exactly at its share
        ],
        start,
    );
    // Its reader had the grace (from the first data) to start reading, and did not.
    let t0 = start + grace();
    feed_at(
        &mut s,
        &[
            (1, Flag::MessageInitiator, &[3; 1]), // one past: borrowed
            (1, Flag::MessageInitiator, &[4; 10]),
        ],
        t0,
    );
    assert!(s.wants_input(), "input never paused");
    assert_eq!(s.stats().input_pauses, 0);
    assert_eq!(s.stats().streams_over_share, 1);
    assert_eq!(s.poll_timeout(), Some(t0 + stall()));
    assert_eq!(accept(&mut s), remote(1));
    assert_eq!(accept(&mut s), remote(3));
    let _ = events(&mut s);
    // The other stream flows meanwhile.
    feed_at(&mut s, &[(3, Flag::MessageInitiator, &[5; 100])], t0);
    assert_eq!(drain(&mut s, remote(3)).0, vec![5; 100]);
    // Nothing happens before the deadline.
    s.handle_timeout(t0 + stall() - Duration::from_millis(1));
    assert_eq!(s.stats().streams_overflowed, 0);
    let _ = events(&mut s);
    assert!(sent(&mut s).is_empty());
    // At the deadline the stream is reset and its data dropped.
    s.handle_timeout(t0 + stall());
    assert_eq!(
        events(&mut s),
        [Event::Readable(remote(1)), Event::Writable(remote(1))]
    );
    assert_eq!(sent(&mut s), [(1, Flag::ResetReceiver, vec![])]);
    assert_eq!(s.stats().streams_overflowed, 1);
    assert_eq!(s.buffered_bytes(), 0);
    assert_eq!(s.poll_timeout(), None);
    assert!(matches!(
        s.read(remote(1), &mut [0; 8], now()),
        Err(MplexError::StreamReset(_))
    ));
    // Frames still in flight for it are dropped; other streams are unaffected.
    feed(
        &mut s,
        &[
            (1, Flag::MessageInitiator, &[6; 10]),
            (3, Flag::MessageInitiator, &[7; 100]),
        ],
    );
    assert_eq!(drain(&mut s, remote(3)).0, vec![7; 100]);
}

#[test]
fn a_live_reader_holds_input_at_its_share_and_an_idle_one_lets_it_borrow() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_stream_buffer(100),
    );
    let t0 = now();
    feed_at(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &[1; 60]),
        ],
        t0,
    );
    assert_eq!(accept(&mut s), remote(1));
    assert_eq!(s.read(remote(1), &mut [0; 10], t0).unwrap(), Some(10));
    // 50 + 60 is past the share of 100 and the reader is alive: input waits for it.
    let bytes = encode(&[(1, Flag::MessageInitiator, &[2; 60])]);
    let t1 = t0 + Duration::from_millis(1);
    let used = s.handle_input(&bytes, t1).unwrap();
    assert!(used < bytes.len(), "the header only");
    assert!(!s.wants_input());
    assert_eq!(s.stats().input_pauses, 1);
    assert_eq!(s.poll_timeout(), Some(t1 + grace()));
    // It reads: room within the share, input goes on; nothing was borrowed.
    assert_eq!(s.read(remote(1), &mut [0; 20], t1).unwrap(), Some(20));
    assert!(s.wants_input());
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, t1).unwrap(), rest.len());
    assert_eq!(s.stats().streams_over_share, 0);
    assert_eq!(s.poll_timeout(), None);
    // Past the share again, and this time the reader stops: after the grace the stream
    // borrows and input goes on; its stall timeout starts.
    let bytes = encode(&[(1, Flag::MessageInitiator, &[3; 90])]);
    let used = s.handle_input(&bytes, t1).unwrap();
    assert!(used < bytes.len());
    let t2 = t1 + grace();
    s.handle_timeout(t2 - Duration::from_millis(1));
    assert!(!s.wants_input());
    s.handle_timeout(t2);
    assert!(s.wants_input());
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, t2).unwrap(), rest.len());
    assert_eq!(s.stats().streams_over_share, 1);
    assert_eq!(s.poll_timeout(), Some(t2 + stall()));
    assert_eq!(drain(&mut s, remote(1)).0.len(), 180);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.stats().streams_overflowed, 0);
}

#[test]
fn a_reader_that_keeps_reading_is_never_reset() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_stream_buffer(100),
    );
    let start = now();
    feed_at(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &[1; 60]),
        ],
        start,
    );
    let t0 = start + grace();
    feed_at(
        &mut s,
        &[
            (1, Flag::MessageInitiator, &[2; 60]),
            (1, Flag::MessageInitiator, &[3; 60]),
            (1, Flag::CloseInitiator, b""),
        ],
        t0,
    );
    assert_eq!(s.poll_timeout(), Some(t0 + stall()));
    // Just before the deadline the reader reads a little: still past its share, but alive.
    let t1 = t0 + stall() - Duration::from_millis(1);
    let mut buf = [0u8; 30];
    assert_eq!(s.read(remote(1), &mut buf, t1).unwrap(), Some(30));
    assert_eq!(s.poll_timeout(), Some(t1 + stall()));
    s.handle_timeout(t0 + stall());
    assert_eq!(s.stats().streams_overflowed, 0);
    // Back within its share (180 - 30 - 50 = 100): no deadline any more.
    assert_eq!(s.read(remote(1), &mut [0; 50], t1).unwrap(), Some(50));
    assert_eq!(s.poll_timeout(), None);
    let (data, eof) = drain(&mut s, remote(1));
    assert_eq!(data.len(), 100);
    assert!(eof);
    assert_eq!(s.stats().streams_overflowed, 0);
    assert_eq!(s.stats().streams_over_share, 1);
}

#[test]
fn memory_needed_within_a_share_resets_the_stream_furthest_past_its_share() {
    // Five chunks for the connection, a share of 20,000 bytes per stream.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default()
            .with_max_connection_buffer(5 * CHUNK_SIZE)
            .with_max_stream_buffer(20_000),
    );
    let start = now();
    feed_at(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (3, Flag::NewStream, b""),
            (5, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &vec![1; 20_000]),
            (5, Flag::MessageInitiator, &vec![5; 20_000]),
        ],
        start,
    );
    // Neither reader started within the grace: both streams borrow.
    feed_at(
        &mut s,
        &[
            (1, Flag::MessageInitiator, &vec![1; 20_000]), // 20,000 past: three chunks
            (5, Flag::MessageInitiator, &vec![5; 5_000]),  // 5,000 past: two chunks
        ],
        start + grace(),
    );
    assert_eq!(s.buffered_bytes(), 5 * CHUNK_SIZE, "the connection is full");
    for n in [1, 3, 5] {
        assert_eq!(accept(&mut s), remote(n));
    }
    let _ = events(&mut s);
    // Stream 3 is within its share: stream 1, the furthest past its share, makes room.
    feed_at(
        &mut s,
        &[(3, Flag::MessageInitiator, b"within its share")],
        start + grace(),
    );
    assert_eq!(
        events(&mut s),
        [
            Event::Readable(remote(1)),
            Event::Writable(remote(1)),
            Event::Readable(remote(3))
        ]
    );
    assert_eq!(s.stats().streams_overflowed, 1);
    assert_eq!(s.stats().input_pauses, 0);
    assert_eq!(drain(&mut s, remote(3)).0, b"within its share");
    // Stream 5 asks for more than is free while past its share: it goes itself.
    feed_at(
        &mut s,
        &[(5, Flag::MessageInitiator, &vec![5; 60_000])],
        start + grace(),
    );
    assert_eq!(
        events(&mut s),
        [Event::Readable(remote(5)), Event::Writable(remote(5))]
    );
    assert_eq!(s.stats().streams_overflowed, 2);
    assert_eq!(s.stats().bytes_discarded, 60_000);
    assert_eq!(
        sent(&mut s),
        [
            (1, Flag::ResetReceiver, vec![]),
            (5, Flag::ResetReceiver, vec![])
        ]
    );
    // Stream 3 still works.
    feed_at(
        &mut s,
        &[(3, Flag::MessageInitiator, b"still fine")],
        start + grace(),
    );
    assert_eq!(drain(&mut s, remote(3)).0, b"still fine");
    assert_eq!(s.stats().input_pauses, 0);
}

#[test]
fn streams_reset_before_accept_leave_the_queue() {
    // A peer opens and resets 20,000 streams nobody accepts, then opens one that stays.
    let mut s = session(Role::Responder);
    let mut flood = Vec::new();
    for n in 0..20_000u64 {
        encode_frame(n, Flag::NewStream, b"", &mut flood);
        encode_frame(n, Flag::ResetInitiator, b"", &mut flood);
    }
    encode_frame(99_999, Flag::NewStream, b"", &mut flood);
    for piece in flood.chunks(4096) {
        assert_eq!(s.handle_input(piece, now()).unwrap(), piece.len());
        let _ = events(&mut s);
    }
    assert_eq!(s.pending_accept(), 1);
    assert_eq!(s.stream_ids().collect::<Vec<_>>(), [remote(99_999)]);
    assert_eq!(s.num_streams(), 1);
    assert_eq!(accept(&mut s), remote(99_999));
}

#[test]
fn unaccepted_streams_survive_a_clean_end_only() {
    let frames: &[(u64, Flag, &[u8])] = &[
        (1, Flag::NewStream, b""),
        (1, Flag::MessageInitiator, b"last words"),
        (1, Flag::CloseInitiator, b""),
    ];
    // The remote closed the connection cleanly: what it sent can still be taken and read.
    let mut s = session(Role::Responder);
    feed(&mut s, frames);
    s.handle_eof().unwrap();
    assert_eq!(
        events(&mut s),
        [
            Event::InboundStream,
            Event::Readable(remote(1)),
            Event::Readable(remote(1)),
            Event::Closed
        ]
    );
    assert_eq!(accept(&mut s), remote(1));
    assert_eq!(drain(&mut s, remote(1)), (b"last words".to_vec(), true));
    assert!(matches!(
        s.accept_stream(),
        Err(MplexError::ConnectionClosed)
    ));
    // Closed locally, or broken: they are dropped.
    let mut s = session(Role::Responder);
    feed(&mut s, frames);
    s.close();
    assert!(matches!(
        s.accept_stream(),
        Err(MplexError::ConnectionClosed)
    ));
    assert!(s.streams.is_empty());
    let mut s = session(Role::Responder);
    feed(&mut s, frames);
    s.handle_io_error(&std::io::ErrorKind::ConnectionReset.into());
    assert!(matches!(
        s.accept_stream(),
        Err(MplexError::ConnectionClosed)
    ));
    assert!(s.streams.is_empty());
    assert_eq!(events(&mut s).last(), Some(&Event::Closed));
}

#[test]
fn a_frame_bigger_than_the_stream_cap_resets_at_once() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_stream_buffer(100),
    );
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &[1; 101]),
        ],
    );
    assert_eq!(events(&mut s), [Event::InboundStream]);
    assert_eq!(
        s.accept_stream().unwrap(),
        None,
        "reset before it was accepted"
    );
    assert_eq!(s.stats().streams_overflowed, 1);
    assert_eq!(s.stats().bytes_discarded, 101);
}

#[test]
fn connection_memory_full_for_the_stall_timeout_resets_the_biggest_stream() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_connection_buffer(3 * CHUNK_SIZE),
    );
    let t0 = now();
    let bytes = encode(&[
        (1, Flag::NewStream, b""),
        (3, Flag::NewStream, b""),
        (5, Flag::NewStream, b""),
        (1, Flag::MessageInitiator, &[1; 10]), // one chunk
        (3, Flag::MessageInitiator, &vec![3; CHUNK_SIZE + 1]), // two chunks: the biggest
        (5, Flag::MessageInitiator, b"waits"),
    ]);
    let used = s.handle_input(&bytes, t0).unwrap();
    assert!(!s.wants_input());
    for n in [1, 3, 5] {
        assert_eq!(accept(&mut s), remote(n));
    }
    let _ = events(&mut s);
    s.handle_timeout(t0 + stall());
    assert_eq!(
        events(&mut s),
        [Event::Readable(remote(3)), Event::Writable(remote(3))]
    );
    assert_eq!(s.stats().streams_reset_for_memory, 1);
    assert_eq!(s.stats().streams_overflowed, 0);
    assert!(s.wants_input());
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, now()).unwrap(), rest.len());
    assert_eq!(drain(&mut s, remote(5)).0, b"waits");
    assert_eq!(drain(&mut s, remote(1)).0, vec![1; 10]);
}

#[test]
fn a_frame_bigger_than_the_connection_cap_resets_at_once() {
    // A connection cap below the stream cap: a frame that could never fit is not waited for.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_connection_buffer(CHUNK_SIZE),
    );
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &vec![1; CHUNK_SIZE + 1]),
            (3, Flag::NewStream, b""),
            (3, Flag::MessageInitiator, &vec![3; CHUNK_SIZE]),
        ],
    );
    assert_eq!(s.stats().streams_overflowed, 1);
    assert_eq!(drain(&mut s, remote(3)).0, vec![3; CHUNK_SIZE]);
}

#[test]
fn a_paused_frame_whose_stream_went_away_is_dropped_at_the_timeout() {
    // One chunk for the whole connection, held by stream 1 (within its share): stream 3's
    // frame waits for memory.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_connection_buffer(CHUNK_SIZE),
    );
    let t0 = now();
    let bytes = encode(&[
        (1, Flag::NewStream, b""),
        (3, Flag::NewStream, b""),
        (1, Flag::MessageInitiator, &[1; 10]),
        (3, Flag::MessageInitiator, &[3; 10]),
    ]);
    let used = s.handle_input(&bytes, t0).unwrap();
    assert!(used < bytes.len());
    assert!(!s.wants_input());
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + grace()),
        "looked at again after the grace"
    );
    s.release_stream(remote(3));
    assert!(s.wants_input());
    s.handle_timeout(later());
    assert_eq!(s.stats().streams_reset_for_memory, 0);
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, now()).unwrap(), rest.len());
    assert_eq!(drain(&mut s, remote(1)).0, vec![1; 10]);
}

#[test]
fn reading_keeps_a_stream_under_its_cap() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_stream_buffer(100),
    );
    feed(&mut s, &[(1, Flag::NewStream, b"")]);
    for round in 0..50u8 {
        feed(&mut s, &[(1, Flag::MessageInitiator, &[round; 80])]);
        assert_eq!(drain(&mut s, remote(1)).0, vec![round; 80]);
    }
    assert_eq!(s.stats().streams_overflowed, 0);
}

#[test]
fn data_after_the_remote_closed_resets_the_stream() {
    let mut s = session(Role::Responder);
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::CloseInitiator, b""),
            (1, Flag::MessageInitiator, b"too late"),
        ],
    );
    assert_eq!(
        events(&mut s),
        [Event::InboundStream, Event::Readable(remote(1))]
    );
    assert_eq!(sent(&mut s), [(1, Flag::ResetReceiver, vec![])]);
    assert_eq!(s.stats().streams_violated, 1);
    // An accepted stream learns of the reset.
    feed(
        &mut s,
        &[(3, Flag::NewStream, b""), (3, Flag::CloseInitiator, b"")],
    );
    assert_eq!(accept(&mut s), remote(3));
    let _ = events(&mut s);
    feed(&mut s, &[(3, Flag::MessageInitiator, b"too late")]);
    assert_eq!(
        events(&mut s),
        [Event::Readable(remote(3)), Event::Writable(remote(3))]
    );
    assert_eq!(s.stats().streams_violated, 2);
}

#[test]
fn connection_cap_pauses_input_until_readers_drain() {
    // Room for two chunks in the whole connection.
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_connection_buffer(2 * CHUNK_SIZE),
    );
    let big = vec![7u8; CHUNK_SIZE + 1]; // takes both chunks
    let bytes = encode(&[
        (1, Flag::NewStream, b""),
        (3, Flag::NewStream, b""),
        (1, Flag::MessageInitiator, &big),
        (3, Flag::MessageInitiator, b"waits"),
        (3, Flag::CloseInitiator, b""),
    ]);
    let used = s.handle_input(&bytes, now()).unwrap();
    assert!(used < bytes.len(), "paused before the second message");
    assert!(!s.wants_input());
    assert_eq!(s.stats().input_pauses, 1);
    assert_eq!(s.buffered_bytes(), 2 * CHUNK_SIZE);
    // Still paused when offered the rest.
    assert_eq!(s.handle_input(&bytes[used..], now()).unwrap(), 0);
    // Reading stream 1 frees the chunks and input resumes.
    assert_eq!(drain(&mut s, remote(1)).0, big);
    assert!(s.wants_input());
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, now()).unwrap(), rest.len());
    assert_eq!(drain(&mut s, remote(3)), (b"waits".to_vec(), true));
    assert!(s.allocated_bytes() <= 2 * CHUNK_SIZE);
}

#[test]
fn a_paused_frame_for_a_stream_reset_meanwhile_is_dropped() {
    let mut s = Session::new(
        Role::Responder,
        MplexConfig::default().with_max_connection_buffer(CHUNK_SIZE),
    );
    let bytes = encode(&[
        (1, Flag::NewStream, b""),
        (3, Flag::NewStream, b""),
        (1, Flag::MessageInitiator, &[1; 10]),
        (3, Flag::MessageInitiator, &[3; 10]),
        (5, Flag::NewStream, b""),
    ]);
    let used = s.handle_input(&bytes, now()).unwrap();
    assert!(!s.wants_input());
    s.reset_stream(remote(3)).unwrap();
    assert!(s.wants_input(), "the waiting frame will be dropped");
    let rest = &bytes[used..];
    assert_eq!(s.handle_input(rest, now()).unwrap(), rest.len());
    let ev = events(&mut s);
    assert_eq!(ev.iter().filter(|e| **e == Event::InboundStream).count(), 3);
    assert_eq!(drain(&mut s, remote(1)).0, vec![1; 10]);
}

#[test]
fn writes_wait_for_a_full_send_buffer_and_split_into_frames() {
    let mut s = Session::new(
        Role::Initiator,
        MplexConfig::default()
            .with_split_size(1000)
            .with_max_send_buffer(2500),
    );
    let id = s.open_stream().unwrap();
    let data = vec![0xabu8; 10_000];
    // 2500 bytes of buffer plus at most one frame over.
    let n = s.write(id, &data).unwrap().unwrap();
    assert_eq!(n, 3000);
    assert!(!s.can_write());
    assert_eq!(s.write(id, &data[n..]).unwrap(), None);
    let frames = sent(&mut s);
    assert_eq!(frames.len(), 4);
    assert!(
        frames[1..]
            .iter()
            .all(|f| f.1 == Flag::MessageInitiator && f.2.len() == 1000)
    );
    assert_eq!(
        events(&mut s),
        [Event::Writable(id)],
        "the refused writer may go on"
    );
    assert!(s.can_write());
    assert_eq!(s.write(id, &data[n..]).unwrap(), Some(3000));
    assert_eq!(s.write(id, b"").unwrap(), Some(0));
}

#[test]
fn replies_the_remote_does_not_read_pause_input() {
    // A remote that opens streams over the limit and never reads our resets.
    let config = MplexConfig::default()
        .with_max_streams(0)
        .with_max_send_buffer(64)
        .with_split_size(16);
    let threshold = config.input_pause_threshold();
    let mut s = Session::new(Role::Responder, config);
    let frames: Vec<(u64, Flag, &[u8])> =
        (0..1000).map(|n| (n, Flag::NewStream, &b""[..])).collect();
    let bytes = encode(&frames);
    let used = s.handle_input(&bytes, now()).unwrap();
    assert!(used < bytes.len());
    assert!(!s.wants_input());
    assert!(s.has_transmit());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.len() < threshold + 16, "bounded: {}", out.len());
    assert!(s.wants_input());
}

#[test]
fn writing_to_unknown_streams_fails() {
    let mut s = session(Role::Initiator);
    let ghost = local(99);
    assert!(matches!(
        s.write(ghost, b"x"),
        Err(MplexError::UnknownStream(_))
    ));
    assert!(matches!(
        s.read(ghost, &mut [0], now()),
        Err(MplexError::UnknownStream(_))
    ));
    assert!(matches!(
        s.close_stream(ghost),
        Err(MplexError::UnknownStream(_))
    ));
    assert!(matches!(
        s.reset_stream(ghost),
        Err(MplexError::UnknownStream(_))
    ));
    s.release_stream(ghost);
}

#[test]
fn poll_transmit_appends_when_out_is_not_empty() {
    let mut s = session(Role::Initiator);
    s.open_stream().unwrap();
    let mut out = b"prefix".to_vec();
    assert!(s.poll_transmit(&mut out));
    assert_eq!(out, b"prefix\x08\x011");
    assert!(!s.poll_transmit(&mut out));
    assert!(!s.has_transmit());
}

// ------------------------------------------------------------------ two sessions

/// Moves every byte each session wants to send to the other, with the given chunk size,
/// until neither has anything more to say.
fn pump(a: &mut Session, b: &mut Session, chunk: usize) {
    while transfer(a, b, chunk) | transfer(b, a, chunk) {}
}

/// Moves what `from` wants to send into `to`; returns whether there was anything.
fn transfer(from: &mut Session, to: &mut Session, chunk: usize) -> bool {
    let mut bytes = Vec::new();
    if !from.poll_transmit(&mut bytes) {
        return false;
    }
    for piece in bytes.chunks(chunk.max(1)) {
        assert_eq!(to.handle_input(piece, now()).unwrap(), piece.len());
    }
    true
}

#[test]
fn two_sessions_exchange_data_both_ways() {
    let mut a = session(Role::Initiator);
    let mut b = session(Role::Responder);
    let ids: Vec<StreamId> = (0..20).map(|_| a.open_stream().unwrap()).collect();
    for (i, id) in ids.iter().enumerate() {
        a.write(*id, &vec![i as u8; 1000 * i]).unwrap();
        a.close_stream(*id).unwrap();
    }
    pump(&mut a, &mut b, 777);
    let inbound: Vec<StreamId> = std::iter::from_fn(|| b.accept_stream().unwrap()).collect();
    assert_eq!(inbound.len(), 20);
    for (i, id) in inbound.iter().enumerate() {
        assert_eq!(id.number(), ids[i].number());
        assert_eq!(drain(&mut b, *id), (vec![i as u8; 1000 * i], true));
        b.write(*id, &vec![!(i as u8); 500 * i]).unwrap();
        b.close_stream(*id).unwrap();
        b.release_stream(*id);
    }
    pump(&mut a, &mut b, 4096);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(drain(&mut a, *id), (vec![!(i as u8); 500 * i], true));
        a.release_stream(*id);
    }
    assert_eq!(a.num_streams(), 0);
    assert_eq!(b.num_streams(), 0);
    assert!(a.streams.is_empty() && b.streams.is_empty());
    assert_eq!(a.buffered_bytes() + b.buffered_bytes(), 0);
}

#[test]
fn two_sessions_reset_propagates() {
    let mut a = session(Role::Initiator);
    let mut b = session(Role::Responder);
    let id = a.open_stream().unwrap();
    a.write(id, b"hello").unwrap();
    pump(&mut a, &mut b, 100);
    let theirs = accept(&mut b);
    b.reset_stream(theirs).unwrap();
    pump(&mut a, &mut b, 100);
    assert_eq!(events(&mut a), [Event::Readable(id), Event::Writable(id)]);
    assert!(matches!(a.write(id, b"x"), Err(MplexError::StreamReset(_))));
    assert_eq!(a.num_streams() + b.num_streams(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the sizes and however the bytes are chunked on the way, every stream
    /// delivers exactly what was written, then EOF.
    #[test]
    fn pairs_deliver_exactly(
        sizes in proptest::collection::vec(0usize..70_000, 1..8),
        chunk in 1usize..20_000,
        split in 1usize..100_000,
    ) {
        let config = MplexConfig::default().with_split_size(split);
        let mut a = Session::new(Role::Initiator, config.clone());
        let mut b = Session::new(Role::Responder, config);
        let mut expected = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let id = a.open_stream().unwrap();
            let data: Vec<u8> = (0..*size).map(|j| (i * 31 + j) as u8).collect();
            let mut off = 0;
            while off < data.len() {
                match a.write(id, &data[off..]).unwrap() {
                    Some(n) => off += n,
                    None => pump(&mut a, &mut b, chunk),
                }
            }
            a.close_stream(id).unwrap();
            expected.push(data);
        }
        pump(&mut a, &mut b, chunk);
        let opened: Vec<StreamId> = std::iter::from_fn(|| b.accept_stream().unwrap()).collect();
        prop_assert_eq!(opened.len(), expected.len());
        for (id, data) in opened.iter().zip(&expected) {
            let (got, eof) = drain(&mut b, *id);
            prop_assert!(eof);
            prop_assert_eq!(&got, data);
        }
    }

    /// Arbitrary bytes never panic the session, and it never holds more receive memory
    /// than its cap plus one chunk, nor queues output without bound.
    #[test]
    fn arbitrary_input_is_safe(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..64,
    ) {
        let config = MplexConfig::default()
            .with_max_connection_buffer(4 * CHUNK_SIZE)
            .with_max_stream_buffer(1000)
            .with_max_streams(8)
            .with_max_send_buffer(128)
            .with_split_size(64);
        let threshold = config.input_pause_threshold();
        let mut s = Session::new(Role::Responder, config);
        for piece in bytes.chunks(chunk) {
            match s.handle_input(piece, now()) {
                Ok(_) => {}
                Err(_) => break,
            }
            prop_assert!(s.buffered_bytes() <= 5 * CHUNK_SIZE);
            prop_assert!(s.send.len() < threshold + MAX_HEADER_LEN);
            prop_assert!(s.num_streams() <= 8);
            while s.poll_event().is_some() {}
            while let Ok(Some(id)) = s.accept_stream() {
                let _ = s.write(id, b"echo");
            }
        }
        let _ = s.handle_eof();
    }
}

#[test]
fn receive_chunks_are_reserved_from_the_memory_account_and_reading_waits_when_it_is_full() {
    let limit = lp2p_core::SharedLimit::new(2 * CHUNK_SIZE);
    let mut s = Session::with_memory(
        Role::Responder,
        MplexConfig::default(),
        Box::new(limit.account()),
    );
    feed(
        &mut s,
        &[
            (1, Flag::NewStream, b""),
            (1, Flag::MessageInitiator, &vec![1; 2 * CHUNK_SIZE]),
        ],
    );
    assert_eq!(limit.used(), 2 * CHUNK_SIZE);
    let id = accept(&mut s);

    // The account is full: the next frame is not taken in (the connection's own cap, 32 MiB,
    // is far away), so the remote is held back as by a full connection.
    let frame = encode(&[(1, Flag::MessageInitiator, &[2; 100])]);
    let taken = s.handle_input(&frame, now()).unwrap();
    assert!(taken < frame.len(), "the payload waits");
    assert_eq!(s.buffered_bytes(), 2 * CHUNK_SIZE);
    assert_eq!(limit.used(), 2 * CHUNK_SIZE);

    // Reading gives the chunks back to the account; the frame then goes in.
    assert_eq!(drain(&mut s, id).0.len(), 2 * CHUNK_SIZE);
    assert!(limit.used() < 2 * CHUNK_SIZE);
    let rest = &frame[taken..];
    assert_eq!(s.handle_input(rest, now()).unwrap(), rest.len());
    assert_eq!(drain(&mut s, id).0, [2; 100]);

    drop(s);
    assert_eq!(limit.used(), 0, "dropping the session returns everything");
}
