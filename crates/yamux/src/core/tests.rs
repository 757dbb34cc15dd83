//! Sans-IO tests: a scripted frame-level peer (send exact frames, expect exact frames) and
//! two connections wired together under a fake clock.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::unchecked_time_subtraction
)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::config::{DEFAULT_KEEP_ALIVE_INTERVAL, DEFAULT_PING_TIMEOUT};
use crate::wire::Flags;

const KIB: u32 = 1024;

#[derive(Clone, PartialEq, Eq)]
struct Frame {
    header: Header,
    body: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {:?} stream={} len={} body={}B",
            self.header.kind,
            self.header.flags,
            self.header.stream,
            self.header.length,
            self.body.len()
        )
    }
}

fn sid(n: u32) -> StreamId {
    StreamId::new(n)
}

fn data(stream: u32, flags: Flags, body: &[u8]) -> Frame {
    Frame {
        header: Header::data(sid(stream), flags, body.len() as u32),
        body: body.to_vec(),
    }
}

fn wu(stream: u32, flags: Flags, credit: u32) -> Frame {
    Frame {
        header: Header::window_update(sid(stream), flags, credit),
        body: Vec::new(),
    }
}

fn session(header: Header) -> Frame {
    Frame {
        header,
        body: Vec::new(),
    }
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.header.emit(&mut out);
        out.extend_from_slice(&f.body);
    }
    out
}

fn decode(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap()).unwrap();
        bytes = &bytes[HEADER_LEN..];
        let len = if header.kind == FrameKind::Data {
            header.length as usize
        } else {
            0
        };
        frames.push(Frame {
            header,
            body: bytes[..len].to_vec(),
        });
        bytes = &bytes[len..];
    }
    frames
}

/// A connection under test, driven frame by frame by the test playing the remote.
struct Peer {
    conn: Connection,
    now: Instant,
}

impl Peer {
    /// A connection in `role` whose initial RTT ping has been taken (and left unanswered, so
    /// no auto-tuning happens unless a test answers it).
    fn new(role: Role) -> Peer {
        Peer::with_config(role, YamuxConfig::default())
    }

    fn with_config(role: Role, config: YamuxConfig) -> Peer {
        let now = Instant::now();
        let mut peer = Peer {
            conn: Connection::new(role, config, now),
            now,
        };
        peer.expect(&[session(Header::ping(0))]);
        peer
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn send(&mut self, frames: &[Frame]) -> Result<(), YamuxError> {
        self.conn.handle_input(&encode(frames), self.now)
    }

    fn recv(&mut self) -> Vec<Frame> {
        let mut buf = Vec::new();
        self.conn.poll_transmit(&mut buf);
        decode(&buf)
    }

    fn expect(&mut self, frames: &[Frame]) {
        assert_eq!(self.recv(), frames);
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn read_all(&mut self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Some(n)) = self.conn.read(sid(id), &mut buf, self.now) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Opens an outbound stream and sends its SYN.
    fn open(&mut self) -> u32 {
        let id = self.conn.open_stream().unwrap().unwrap();
        self.expect(&[wu(id.get(), Flags::SYN, 0)]);
        id.get()
    }

    /// The remote opens stream `id`; we accept it and wait to read, which sends the ACK.
    fn accept(&mut self, id: u32) {
        self.accept_unread(id);
        assert!(matches!(
            self.conn.read(sid(id), &mut [0; 8], self.now),
            Ok(None)
        ));
        self.expect(&[wu(id, Flags::ACK, 0)]);
    }

    /// The remote opens stream `id`; we accept it and do nothing with it yet, so its ACK is
    /// still pending.
    fn accept_unread(&mut self, id: u32) {
        self.send(&[wu(id, Flags::SYN, 0)]).unwrap();
        assert_eq!(self.conn.accept_stream().unwrap(), Some(sid(id)));
        self.expect(&[]);
    }

    fn assert_protocol_error(&mut self, result: Result<(), YamuxError>) -> YamuxError {
        let err = result.unwrap_err();
        assert!(err.is_protocol_violation(), "{err:?}");
        assert!(self.conn.is_closed());
        self.expect(&[session(Header::go_away(GoAwayCode::ProtocolError))]);
        assert!(self.events().contains(&Event::Closed));
        err
    }
}

// ---------------------------------------------------------------------- opening streams

#[test]
fn outbound_stream_ids_follow_the_role() {
    let mut client = Peer::new(Role::Initiator);
    assert_eq!(client.open(), 1);
    assert_eq!(client.open(), 3);
    let mut server = Peer::new(Role::Responder);
    assert_eq!(server.open(), 2);
    assert_eq!(server.open(), 4);
}

#[test]
fn open_sends_syn_on_a_window_update_per_the_vector() {
    let mut p = Peer::new(Role::Initiator);
    p.conn.open_stream().unwrap();
    let mut buf = Vec::new();
    assert!(p.conn.poll_transmit(&mut buf));
    assert_eq!(buf, [0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn syn_rides_on_the_first_data_frame() {
    let mut p = Peer::new(Role::Initiator);
    let id = p.conn.open_stream().unwrap().unwrap();
    assert_eq!(p.conn.write(id, b"hi").unwrap(), Some(2));
    p.expect(&[data(1, Flags::SYN, b"hi")]);
    assert_eq!(p.conn.write(id, b"yo").unwrap(), Some(2));
    p.expect(&[data(1, Flags::NONE, b"yo")]);
}

#[test]
fn ack_clears_the_backlog_entry() {
    let mut p = Peer::new(Role::Initiator);
    let id = p.open();
    assert!(p.conn.stream_status(sid(id)).unwrap().awaiting_ack);
    p.send(&[wu(id, Flags::ACK, 0)]).unwrap();
    assert!(!p.conn.stream_status(sid(id)).unwrap().awaiting_ack);
}

#[test]
fn inbound_stream_is_acked_once_its_reader_waits() {
    let mut p = Peer::new(Role::Responder);
    assert_eq!(p.conn.accept_stream().unwrap(), None);
    p.send(&[wu(1, Flags::SYN, 0)]).unwrap();
    assert_eq!(p.events(), [Event::InboundStream]);
    // Nothing is sent before the application takes the stream, nor when it takes it.
    p.expect(&[]);
    assert_eq!(p.conn.accept_stream().unwrap(), Some(sid(1)));
    p.expect(&[]);
    // The application waits for data: the ACK goes alone.
    assert_eq!(p.conn.read(sid(1), &mut [0; 8], p.now).unwrap(), None);
    p.expect(&[wu(1, Flags::ACK, 0)]);
}

#[test]
fn ack_rides_on_the_first_data_frame_after_accept() {
    // A request answered at once: one frame back, which carries the ACK (D67).
    let mut p = Peer::new(Role::Responder);
    p.send(&[data(1, Flags::SYN, b"hello"), data(1, Flags::FIN, b"")])
        .unwrap();
    let id = p.conn.accept_stream().unwrap().unwrap();
    p.expect(&[]);
    let mut request = [0; 5];
    assert_eq!(p.conn.read(id, &mut request, p.now).unwrap(), Some(5));
    assert_eq!(&request, b"hello");
    assert_eq!(p.conn.read(id, &mut request, p.now).unwrap(), Some(0));
    p.expect(&[]);
    p.conn.write(id, b"world").unwrap();
    p.expect(&[data(1, Flags::ACK, b"world")]);
}

#[test]
fn a_pending_ack_rides_along_with_other_frames() {
    let mut p = Peer::new(Role::Responder);
    p.accept_unread(1);
    // Any frame the connection sends takes the pending ACK into the same write.
    p.conn.open_stream().unwrap().unwrap();
    p.expect(&[wu(2, Flags::SYN, 0), wu(1, Flags::ACK, 0)]);
    // Once sent, it is not sent again.
    p.conn.write(sid(1), b"late").unwrap();
    p.expect(&[data(1, Flags::NONE, b"late")]);
}

#[test]
fn syn_with_extra_credit_grows_the_send_window() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[wu(1, Flags::SYN, 100)]).unwrap();
    p.conn.accept_stream().unwrap();
    assert_eq!(
        p.conn.stream_status(sid(1)).unwrap().send_window,
        INITIAL_WINDOW + 100
    );
}

#[test]
fn ack_backlog_makes_open_wait() {
    let config = YamuxConfig::default().with_max_ack_backlog(4);
    let mut p = Peer::with_config(Role::Initiator, config);
    let ids: Vec<u32> = (0..4).map(|_| p.open()).collect();
    assert_eq!(p.conn.open_stream().unwrap(), None);
    p.send(&[wu(ids[0], Flags::ACK, 0)]).unwrap();
    assert_eq!(p.events(), [Event::OutboundAvailable]);
    assert_eq!(p.conn.open_stream().unwrap(), Some(sid(9)));
}

#[test]
fn default_ack_backlog_is_256() {
    let mut p = Peer::new(Role::Initiator);
    for _ in 0..256 {
        p.conn.open_stream().unwrap().unwrap();
    }
    assert_eq!(p.conn.open_stream().unwrap(), None);
}

#[test]
fn outbound_stream_limit() {
    let config = YamuxConfig::default().with_max_outbound_streams(2);
    let mut p = Peer::with_config(Role::Initiator, config);
    let a = p.open();
    p.open();
    assert!(matches!(
        p.conn.open_stream(),
        Err(YamuxError::TooManyStreams(2))
    ));
    // A stream that ends frees its slot.
    p.conn.reset_stream(sid(a));
    p.expect(&[wu(a, Flags::RST, 0)]);
    assert!(p.events().contains(&Event::OutboundAvailable) || p.conn.num_streams() == 1);
    assert_eq!(p.conn.open_stream().unwrap(), Some(sid(5)));
}

#[test]
fn default_stream_limit_is_512_each_way() {
    let config = YamuxConfig::default().with_max_ack_backlog(10_000);
    let mut p = Peer::with_config(Role::Initiator, config);
    for _ in 0..512 {
        p.conn.open_stream().unwrap().unwrap();
    }
    assert!(matches!(
        p.conn.open_stream(),
        Err(YamuxError::TooManyStreams(512))
    ));
    p.recv();
    // And 512 inbound on top.
    // (In two rounds: only 256 may wait for the application at a time.)
    for round in 0..2 {
        let frames: Vec<Frame> = (0..256)
            .map(|i| wu(2 + 2 * (i + 256 * round), Flags::SYN, 0))
            .collect();
        p.send(&frames).unwrap();
        for _ in 0..256 {
            p.conn.accept_stream().unwrap().unwrap();
        }
    }
    assert_eq!(p.conn.num_streams(), 1024);
    p.send(&[wu(1026, Flags::SYN, 0)]).unwrap();
    // The refusal, and along with it the ACKs of the 512 accepted streams.
    let frames = p.recv();
    assert_eq!(frames[0], wu(1026, Flags::RST, 0));
    assert_eq!(frames.len(), 513);
    assert!(frames[1..].iter().all(|f| f.header.flags == Flags::ACK));
}

#[test]
fn stream_ids_run_out() {
    let mut p = Peer::new(Role::Initiator);
    p.conn.next_outbound_id = Some(u32::MAX);
    assert_eq!(p.conn.open_stream().unwrap(), Some(sid(u32::MAX)));
    assert!(matches!(
        p.conn.open_stream(),
        Err(YamuxError::StreamIdsExhausted)
    ));
}

// ---------------------------------------------------------------------- data and flow control

#[test]
fn data_is_delivered_in_order() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, b"abc"), data(1, Flags::NONE, b"def")])
        .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(p.conn.read(sid(1), &mut buf, p.now).unwrap(), Some(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(p.read_all(1), b"ef");
    assert_eq!(p.conn.read(sid(1), &mut buf, p.now).unwrap(), None);
}

#[test]
fn readable_event_only_for_a_waiting_reader() {
    let mut p = Peer::new(Role::Responder);
    p.accept_unread(1);
    p.send(&[data(1, Flags::NONE, b"a")]).unwrap();
    assert_eq!(p.events(), []);
    p.read_all(1);
    assert_eq!(p.conn.read(sid(1), &mut [0; 8], p.now).unwrap(), None);
    p.send(&[data(1, Flags::NONE, b"b"), data(1, Flags::NONE, b"c")])
        .unwrap();
    assert_eq!(p.events(), [Event::Readable(sid(1))]);
}

#[test]
fn window_update_is_sent_as_the_reader_consumes() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    // The whole initial window in one frame.
    let body = vec![7u8; INITIAL_WINDOW as usize];
    p.send(&[data(1, Flags::NONE, &body)]).unwrap();
    assert_eq!(p.conn.stream_status(sid(1)).unwrap().recv_window, 0);
    // Nothing is granted on arrival.
    p.expect(&[]);
    let mut buf = vec![0u8; 100 * 1024];
    p.conn.read(sid(1), &mut buf, p.now).unwrap();
    p.expect(&[]);
    // Past half the window: credit for everything read so far.
    p.conn.read(sid(1), &mut buf[..30 * 1024], p.now).unwrap();
    p.expect(&[wu(1, Flags::NONE, 130 * KIB)]);
    assert_eq!(p.conn.stream_status(sid(1)).unwrap().recv_window, 130 * KIB);
}

#[test]
fn data_over_the_window_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, &vec![0; 200 * 1024])])
        .unwrap();
    let result = p.send(&[data(1, Flags::NONE, &vec![0; 100 * 1024])]);
    let err = p.assert_protocol_error(result);
    assert!(matches!(
        err,
        YamuxError::WindowExceeded { len, window, .. } if len == 100 * KIB && window == 56 * KIB
    ));
}

#[test]
fn first_frame_over_the_initial_window_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    let mut bytes = Header::data(sid(1), Flags::SYN, INITIAL_WINDOW + 1)
        .to_bytes()
        .to_vec();
    bytes.extend_from_slice(&[0; 16]);
    let result = p.conn.handle_input(&bytes, p.now);
    p.assert_protocol_error(result);
}

#[test]
fn write_is_bounded_by_the_send_window() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    let big = vec![1u8; 300 * 1024];
    assert_eq!(p.conn.write(id, &big).unwrap(), Some(256 * 1024));
    assert_eq!(p.conn.write(id, &big).unwrap(), None);
    let frames = p.recv();
    assert_eq!(
        frames.iter().map(|f| f.body.len()).sum::<usize>(),
        256 * 1024
    );
    p.send(&[wu(1, Flags::ACK, 1000)]).unwrap();
    assert_eq!(p.events(), [Event::Writable(id)]);
    assert_eq!(p.conn.write(id, &big).unwrap(), Some(1000));
}

#[test]
fn writes_are_split_into_frames_of_the_split_size() {
    let config = YamuxConfig::default().with_split_size(16 * 1024);
    let mut p = Peer::with_config(Role::Initiator, config);
    let id = sid(p.open());
    let payload: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    assert_eq!(p.conn.write(id, &payload).unwrap(), Some(40_000));
    let frames = p.recv();
    let sizes: Vec<usize> = frames.iter().map(|f| f.body.len()).collect();
    assert_eq!(sizes, [16384, 16384, 7232]);
    let joined: Vec<u8> = frames.into_iter().flat_map(|f| f.body).collect();
    assert_eq!(joined, payload);
}

#[test]
fn a_full_send_buffer_blocks_writers_until_transmit() {
    let config = YamuxConfig::default()
        .with_max_send_buffer(64 * 1024)
        .with_split_size(16 * 1024);
    let mut p = Peer::with_config(Role::Initiator, config);
    let a = sid(p.open());
    let b = sid(p.open());
    let big = vec![0u8; 200 * 1024];
    assert_eq!(p.conn.write(a, &big).unwrap(), Some(64 * 1024));
    assert_eq!(p.conn.write(b, &big).unwrap(), None);
    assert_eq!(p.recv().len(), 4);
    assert_eq!(p.events(), [Event::Writable(b)]);
    assert_eq!(p.conn.write(b, &big).unwrap(), Some(64 * 1024));
}

#[test]
fn window_update_overflowing_the_send_window_is_a_protocol_error() {
    let mut p = Peer::new(Role::Initiator);
    let id = p.open();
    let result = p.send(&[wu(id, Flags::ACK, u32::MAX)]);
    let err = p.assert_protocol_error(result);
    assert!(matches!(err, YamuxError::CreditOverflow(_)));
}

#[test]
fn large_frame_up_to_a_grown_window_is_accepted() {
    // js-libp2p sends one frame as large as the whole window it was granted.
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[wu(1, Flags::NONE, 0)]).unwrap();
    // Grant 4 MiB more by hand through auto-tuning's state: simulate reads with an RTT.
    p.conn.rtt = Some(RttSample {
        rtt: Duration::from_secs(10),
        at: p.now,
    });
    let mut total_granted = INITIAL_WINDOW;
    let mut sent = 0u32;
    // Feed, read, repeat until the window has grown to 4 MiB or more.
    while p.conn.stream_status(sid(1)).unwrap().window_max < 4 * 1024 * 1024 {
        let window = p.conn.stream_status(sid(1)).unwrap().recv_window;
        p.send(&[data(1, Flags::NONE, &vec![0; window as usize])])
            .unwrap();
        sent += window;
        p.read_all(1);
        for f in p.recv() {
            total_granted += f.header.length;
        }
    }
    let window = p.conn.stream_status(sid(1)).unwrap().recv_window;
    assert!(window >= 2 * 1024 * 1024, "window {window}");
    assert_eq!(total_granted - sent, window);
    // One frame as large as the whole window.
    p.send(&[data(1, Flags::NONE, &vec![9; window as usize])])
        .unwrap();
    assert_eq!(p.read_all(1).len(), window as usize);
    assert!(!p.conn.is_closed());
}

// ---------------------------------------------------------------------- auto-tuning

/// Answers the initial ping after `rtt`, so auto-tuning has a measurement.
fn measure_rtt(p: &mut Peer, rtt: Duration) {
    p.advance(rtt);
    p.send(&[session(Header::pong(0))]).unwrap();
    assert_eq!(p.conn.rtt(), Some(rtt));
}

#[test]
fn window_grows_when_the_reader_keeps_up_within_two_rtts() {
    let mut p = Peer::new(Role::Responder);
    measure_rtt(&mut p, Duration::from_millis(50));
    p.accept(1);
    p.send(&[data(1, Flags::NONE, &vec![0; 128 * 1024])])
        .unwrap();
    p.advance(Duration::from_millis(20));
    p.read_all(1);
    // 128 KiB consumed plus 256 KiB of growth.
    p.expect(&[wu(1, Flags::NONE, 384 * KIB)]);
    let status = p.conn.stream_status(sid(1)).unwrap();
    assert_eq!(status.window_max, 512 * KIB);
    assert_eq!(status.recv_window, 512 * KIB);
    assert_eq!(p.conn.window_budget(), 512 * KIB as usize);
}

#[test]
fn window_does_not_grow_for_a_slow_reader() {
    let mut p = Peer::new(Role::Responder);
    measure_rtt(&mut p, Duration::from_millis(50));
    p.accept(1);
    p.send(&[data(1, Flags::NONE, &vec![0; 128 * 1024])])
        .unwrap();
    p.advance(Duration::from_millis(150));
    p.read_all(1);
    p.expect(&[wu(1, Flags::NONE, 128 * KIB)]);
    assert_eq!(
        p.conn.stream_status(sid(1)).unwrap().window_max,
        INITIAL_WINDOW
    );
}

/// Stream 1 on a connection whose RTT sample (1 ms, taken idle as a connection's first ping
/// takes it) is 24 RTTs old; the remote sends half a window, which we read 5 ms later: more
/// than two sampled RTTs, so the update that follows does not grow the window.
fn slow_half_window_after_a_stale_sample(config: YamuxConfig) -> Peer {
    let mut p = Peer::with_config(Role::Responder, config);
    measure_rtt(&mut p, Duration::from_millis(1));
    p.accept(1);
    p.advance(Duration::from_millis(20));
    slow_half_window(&mut p);
    p
}

/// The remote sends half a window on stream 1; we read it all 5 ms later.
fn slow_half_window(p: &mut Peer) {
    p.send(&[data(1, Flags::NONE, &vec![0; 128 * 1024])])
        .unwrap();
    p.advance(Duration::from_millis(5));
    p.read_all(1);
}

#[test]
fn a_stale_rtt_sample_is_refreshed_by_a_probe_and_the_window_then_grows() {
    let mut p = slow_half_window_after_a_stale_sample(YamuxConfig::default());
    // No growth, but the sample is stale, so a ping goes out with the update.
    p.expect(&[wu(1, Flags::NONE, 128 * KIB), session(Header::ping(1))]);
    // Another slow half window while that ping is out: no second ping.
    slow_half_window(&mut p);
    p.expect(&[wu(1, Flags::NONE, 128 * KIB)]);
    // The answer comes back behind the transfer's queued data: the RTT as it is now.
    p.advance(Duration::from_millis(5));
    p.send(&[session(Header::pong(1))]).unwrap();
    assert_eq!(p.conn.rtt(), Some(Duration::from_millis(10)));
    // Judged against it, the next half window came within two RTTs: the window grows.
    slow_half_window(&mut p);
    p.expect(&[wu(1, Flags::NONE, 384 * KIB)]);
    assert_eq!(p.conn.stream_status(sid(1)).unwrap().window_max, 512 * KIB);
}

#[test]
fn no_rtt_probe_once_the_window_is_at_its_cap() {
    let config = YamuxConfig::default().with_max_stream_window(INITIAL_WINDOW);
    let mut p = slow_half_window_after_a_stale_sample(config);
    // The window cannot grow, so a fresher RTT would change nothing: no ping.
    p.expect(&[wu(1, Flags::NONE, 128 * KIB)]);
}

#[test]
fn window_growth_stops_at_the_stream_cap() {
    let config = YamuxConfig::default().with_max_stream_window(1024 * 1024);
    let mut p = Peer::with_config(Role::Responder, config);
    measure_rtt(&mut p, Duration::from_secs(60));
    p.accept(1);
    for _ in 0..10 {
        let window = p.conn.stream_status(sid(1)).unwrap().recv_window;
        p.send(&[data(1, Flags::NONE, &vec![0; window as usize])])
            .unwrap();
        p.read_all(1);
        p.recv();
    }
    assert_eq!(
        p.conn.stream_status(sid(1)).unwrap().window_max,
        1024 * 1024
    );
}

/// The remote fills stream `id`'s whole window `rounds` times; each time we read it all at
/// once (a reader that keeps up, so the window may grow).
fn fill_and_drain(p: &mut Peer, id: u32, rounds: usize) {
    for _ in 0..rounds {
        let window = p.conn.stream_status(sid(id)).unwrap().recv_window;
        p.send(&[data(id, Flags::NONE, &vec![0; window as usize])])
            .unwrap();
        p.read_all(id);
        p.recv();
    }
}

#[test]
fn window_growth_stops_at_the_connection_cap() {
    let config = YamuxConfig::default()
        .with_max_connection_window(2 * INITIAL_WINDOW as usize + 100 * 1024)
        .with_max_stream_window(16 * 1024 * 1024);
    let mut p = Peer::with_config(Role::Responder, config);
    measure_rtt(&mut p, Duration::from_secs(60));
    p.accept(1);
    p.accept(3);
    fill_and_drain(&mut p, 1, 5);
    assert_eq!(
        p.conn.stream_status(sid(1)).unwrap().window_max,
        INITIAL_WINDOW + 100 * 1024
    );
    assert_eq!(
        p.conn.window_budget(),
        2 * INITIAL_WINDOW as usize + 100 * 1024
    );
    // No room for a third stream's initial window: refused.
    p.send(&[wu(5, Flags::SYN, 0)]).unwrap();
    p.expect(&[wu(5, Flags::RST, 0)]);
    assert_eq!(p.conn.stats().refused_streams, 1);
}

#[test]
fn streams_and_window_growth_are_reserved_from_the_memory_account_first() {
    let account = lp2p_core::SharedLimit::new(2 * INITIAL_WINDOW as usize + 100 * 1024);
    let now = Instant::now();
    let mut p = Peer {
        conn: Connection::with_memory(
            Role::Responder,
            YamuxConfig::default(),
            now,
            Box::new(account.account()),
        ),
        now,
    };
    p.expect(&[session(Header::ping(0))]);
    measure_rtt(&mut p, Duration::from_secs(60));
    p.accept(1);
    p.accept(3);
    assert_eq!(account.used(), 2 * INITIAL_WINDOW as usize);

    // Growth takes what the account has left, and then nothing more.
    fill_and_drain(&mut p, 1, 5);
    assert_eq!(
        p.conn.stream_status(sid(1)).unwrap().window_max,
        INITIAL_WINDOW + 100 * 1024
    );
    assert_eq!(account.used(), account.limit());
    assert!(p.conn.stats().growth_refused_for_memory > 0);

    // A third inbound stream is refused with RST; opening one fails with the denial.
    p.send(&[wu(5, Flags::SYN, 0)]).unwrap();
    p.expect(&[wu(5, Flags::RST, 0)]);
    assert_eq!(p.conn.stats().refused_for_memory, 1);
    match p.conn.open_stream() {
        Err(YamuxError::OutOfMemory(denied)) => assert_eq!(denied.scope, "shared limit"),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }

    // A finished stream returns its whole window; the account then admits a new stream.
    p.conn.reset_stream(sid(3));
    p.send(&[wu(3, Flags::RST, 0)]).unwrap();
    p.recv();
    assert_eq!(account.used(), INITIAL_WINDOW as usize + 100 * 1024);
    p.accept(7);
    assert_eq!(account.used(), account.limit());

    // Dropping the connection returns everything.
    drop(p);
    assert_eq!(account.used(), 0);
}

// ---------------------------------------------------------------------- half-close and reset

#[test]
fn half_close_per_the_vector_and_then_both_ways() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    p.conn.close_stream(id).unwrap();
    let mut buf = Vec::new();
    p.conn.poll_transmit(&mut buf);
    assert_eq!(buf, [0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(matches!(
        p.conn.write(id, b"x"),
        Err(YamuxError::WriteClosed(_))
    ));
    // Closing twice is harmless.
    p.conn.close_stream(id).unwrap();
    p.expect(&[]);
    // We can still read until the remote's FIN.
    p.send(&[data(1, Flags::ACK, b"reply"), data(1, Flags::FIN, b"")])
        .unwrap();
    assert_eq!(p.conn.num_streams(), 0);
    assert_eq!(p.read_all(1), b"reply");
    assert_eq!(p.conn.read(id, &mut [0; 8], p.now).unwrap(), Some(0));
    p.conn.drop_stream(id);
    assert!(p.conn.stream_status(id).is_none());
}

#[test]
fn remote_fin_gives_eof_after_the_data_and_writing_goes_on() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::FIN, b"last")]).unwrap();
    assert_eq!(p.read_all(1), b"last");
    assert_eq!(p.conn.read(sid(1), &mut [0; 8], p.now).unwrap(), Some(0));
    assert_eq!(p.conn.write(sid(1), b"still").unwrap(), Some(5));
    p.expect(&[data(1, Flags::NONE, b"still")]);
    // FIN on a window update works too, and a reader waiting gets an event.
    p.send(&[wu(3, Flags::SYN, 0)]).unwrap();
    p.conn.accept_stream().unwrap();
    assert_eq!(p.conn.read(sid(3), &mut [0; 8], p.now).unwrap(), None);
    p.send(&[wu(3, Flags::FIN, 0)]).unwrap();
    assert!(p.events().contains(&Event::Readable(sid(3))));
    assert_eq!(p.conn.read(sid(3), &mut [0; 8], p.now).unwrap(), Some(0));
}

#[test]
fn data_after_fin_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::FIN, b"")]).unwrap();
    let result = p.send(&[data(1, Flags::NONE, b"more")]);
    let err = p.assert_protocol_error(result);
    assert!(matches!(err, YamuxError::DataAfterFin(_)));
}

#[test]
fn local_reset_per_the_vector() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    p.conn.reset_stream(id);
    let mut buf = Vec::new();
    p.conn.poll_transmit(&mut buf);
    assert_eq!(buf, [0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(matches!(
        p.conn.write(id, b"x"),
        Err(YamuxError::StreamReset(_))
    ));
    assert!(matches!(
        p.conn.read(id, &mut [0; 1], p.now),
        Err(YamuxError::StreamReset(_))
    ));
    // Frames in flight for it are dropped quietly.
    p.send(&[data(1, Flags::ACK, b"late")]).unwrap();
    p.expect(&[]);
    assert!(!p.conn.is_closed());
    assert_eq!(p.conn.num_streams(), 0);
}

#[test]
fn remote_reset_fails_writes_and_reads_after_the_buffered_data() {
    let mut p = Peer::new(Role::Responder);
    p.accept_unread(1);
    p.send(&[data(1, Flags::NONE, b"unread")]).unwrap();
    let id = sid(1);
    p.conn.write(id, &vec![0; 300 * 1024]).unwrap();
    assert_eq!(p.conn.write(id, b"more").unwrap(), None);
    p.send(&[wu(1, Flags::RST, 0)]).unwrap();
    assert_eq!(p.events(), [Event::Writable(id)]);
    assert!(matches!(
        p.conn.write(id, b"x"),
        Err(YamuxError::StreamReset(_))
    ));
    // The stream no longer counts, but what arrived before the reset is still there
    // (rust-yamux's handlers write an answer and drop the stream, which sends RST).
    assert_eq!(p.conn.num_streams(), 0);
    assert_eq!(p.conn.window_budget(), 0);
    let mut buf = [0; 4];
    p.recv();
    assert_eq!(p.conn.read(id, &mut buf, p.now).unwrap(), Some(4));
    assert_eq!(&buf, b"unre");
    let mut buf = [0; 8];
    assert_eq!(p.conn.read(id, &mut buf, p.now).unwrap(), Some(2));
    assert_eq!(&buf[..2], b"ad");
    // Drained: the reset is reported, never a clean end of stream.
    assert!(matches!(
        p.conn.read(id, &mut buf, p.now),
        Err(YamuxError::StreamReset(_))
    ));
    // No window update is sent for a reset stream.
    p.expect(&[]);
    p.conn.drop_stream(id);
    assert!(p.conn.stream_status(id).is_none());
}

#[test]
fn remote_reset_of_a_dropped_stream_frees_it() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, b"unread")]).unwrap();
    let id = sid(1);
    p.conn.drop_stream(id);
    p.recv();
    p.send(&[wu(1, Flags::RST, 0)]).unwrap();
    assert!(p.conn.stream_status(id).is_none());
    assert_eq!(p.conn.num_streams(), 0);
}

#[test]
fn local_reset_drops_buffered_data() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, b"unread")]).unwrap();
    let id = sid(1);
    p.conn.reset_stream(id);
    assert!(matches!(
        p.conn.read(id, &mut [0; 8], p.now),
        Err(YamuxError::StreamReset(_))
    ));
}

#[test]
fn reset_before_syn_left_sends_nothing() {
    let mut p = Peer::new(Role::Initiator);
    let id = p.conn.open_stream().unwrap().unwrap();
    p.conn.reset_stream(id);
    p.expect(&[]);
}

#[test]
fn reset_with_data_frame_is_honoured() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::RST, b"ignored")]).unwrap();
    assert!(p.conn.stream_status(sid(1)).unwrap().reset);
    // The body was skipped: the next frame parses.
    p.send(&[session(Header::ping(5))]).unwrap();
    p.expect(&[session(Header::pong(5))]);
}

#[test]
fn inbound_stream_reset_before_accept_is_skipped() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[
        wu(1, Flags::SYN, 0),
        wu(1, Flags::RST, 0),
        wu(3, Flags::SYN, 0),
    ])
    .unwrap();
    assert_eq!(p.conn.accept_stream().unwrap(), Some(sid(3)));
    assert!(p.conn.stream_status(sid(1)).is_none());
}

// ---------------------------------------------------------------------- dropping a stream

#[test]
fn dropping_a_stream_half_closes_it() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    p.conn.write(id, b"req").unwrap();
    p.conn.drop_stream(id);
    p.expect(&[data(1, Flags::NONE, b"req"), data(1, Flags::FIN, b"")]);
    // The remote finishing cleanly frees it without a reset.
    p.send(&[data(1, Flags::ACK | Flags::FIN, b"")]).unwrap();
    p.expect(&[]);
    assert!(p.conn.stream_status(id).is_none());
    assert_eq!(p.conn.num_streams(), 0);
}

#[test]
fn data_for_a_dropped_stream_resets_it() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.conn.drop_stream(sid(1));
    p.expect(&[data(1, Flags::FIN, b"")]);
    p.send(&[data(1, Flags::NONE, b"keeps talking")]).unwrap();
    p.expect(&[wu(1, Flags::RST, 0)]);
    assert!(p.conn.stream_status(sid(1)).is_none());
    assert_eq!(p.conn.stats().reset_after_drop, 1);
    // Later frames for it are ignored.
    p.send(&[data(1, Flags::NONE, b"x")]).unwrap();
    p.expect(&[]);
}

#[test]
fn dropping_with_unread_data_returns_the_credit() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, &vec![0; INITIAL_WINDOW as usize])])
        .unwrap();
    p.conn.drop_stream(sid(1));
    // The remote is out of credit: it gets it back so it is not stuck, then a FIN.
    p.expect(&[wu(1, Flags::NONE, INITIAL_WINDOW), data(1, Flags::FIN, b"")]);
}

#[test]
fn dropping_an_unsent_stream_sends_nothing() {
    let mut p = Peer::new(Role::Initiator);
    let id = p.conn.open_stream().unwrap().unwrap();
    p.conn.drop_stream(id);
    p.expect(&[]);
    assert!(p.conn.stream_status(id).is_none());
    assert_eq!(p.conn.num_streams(), 0);
}

#[test]
fn dropping_after_accept_carries_the_ack_on_the_fin() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[wu(1, Flags::SYN, 0)]).unwrap();
    let id = p.conn.accept_stream().unwrap().unwrap();
    p.conn.drop_stream(id);
    p.expect(&[data(1, Flags::ACK | Flags::FIN, b"")]);
}

// ---------------------------------------------------------------------- ping, keep-alive

#[test]
fn ping_is_answered_per_the_vector() {
    let mut p = Peer::new(Role::Responder);
    p.conn
        .handle_input(&[0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42], p.now)
        .unwrap();
    let mut buf = Vec::new();
    p.conn.poll_transmit(&mut buf);
    assert_eq!(buf, [0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 42]);
}

#[test]
fn unexpected_pong_is_ignored() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[session(Header::pong(77))]).unwrap();
    assert!(!p.conn.is_closed());
    assert_eq!(p.conn.rtt(), None);
}

#[test]
fn keep_alive_pings_and_times_out() {
    let mut p = Peer::new(Role::Initiator);
    // The initial ping is outstanding: its deadline is the timeout.
    assert_eq!(p.conn.poll_timeout(), Some(p.now + DEFAULT_PING_TIMEOUT));
    measure_rtt(&mut p, Duration::from_millis(5));
    assert_eq!(
        p.conn.poll_timeout(),
        Some(p.now + DEFAULT_KEEP_ALIVE_INTERVAL)
    );
    p.advance(DEFAULT_KEEP_ALIVE_INTERVAL - Duration::from_millis(1));
    p.conn.handle_timeout(p.now);
    p.expect(&[]);
    p.advance(Duration::from_millis(1));
    p.conn.handle_timeout(p.now);
    p.expect(&[session(Header::ping(1))]);
    p.advance(Duration::from_millis(7));
    p.send(&[session(Header::pong(1))]).unwrap();
    assert_eq!(p.conn.rtt(), Some(Duration::from_millis(7)));
    // Next one goes unanswered.
    p.advance(DEFAULT_KEEP_ALIVE_INTERVAL);
    p.conn.handle_timeout(p.now);
    p.expect(&[session(Header::ping(2))]);
    p.advance(DEFAULT_PING_TIMEOUT);
    p.conn.handle_timeout(p.now);
    assert!(matches!(
        p.conn.close_reason(),
        Some(YamuxError::KeepAliveTimeout(_))
    ));
    assert_eq!(p.conn.poll_timeout(), None);
}

#[test]
fn keep_alive_off_never_times_out() {
    let config = YamuxConfig::default().with_keep_alive(None);
    let mut p = Peer::with_config(Role::Initiator, config);
    assert_eq!(p.conn.poll_timeout(), None);
    p.advance(Duration::from_secs(3600));
    p.conn.handle_timeout(p.now);
    assert!(!p.conn.is_closed());
    p.expect(&[]);
}

// ---------------------------------------------------------------------- GoAway and closing

#[test]
fn close_sends_go_away_normal_and_fails_everything() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    p.conn.close();
    let mut buf = Vec::new();
    p.conn.poll_transmit(&mut buf);
    assert_eq!(buf, [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(p.events(), [Event::Closed]);
    assert!(matches!(
        p.conn.write(id, b"x"),
        Err(YamuxError::ConnectionClosed)
    ));
    assert!(matches!(
        p.conn.read(id, &mut [0; 1], p.now),
        Err(YamuxError::ConnectionClosed)
    ));
    assert!(matches!(
        p.conn.open_stream(),
        Err(YamuxError::ConnectionClosed)
    ));
    assert!(matches!(
        p.conn.accept_stream(),
        Err(YamuxError::ConnectionClosed)
    ));
    // Closing again sends nothing more; input is ignored.
    p.conn.close();
    p.send(&[session(Header::ping(1))]).unwrap();
    p.expect(&[]);
    assert!(!p.conn.wants_input());
}

#[test]
fn buffered_data_stays_readable_after_close() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    p.send(&[data(1, Flags::NONE, b"tail")]).unwrap();
    p.conn.handle_eof();
    assert!(p.conn.is_closed());
    assert_eq!(p.read_all(1), b"tail");
    assert!(matches!(
        p.conn.read(sid(1), &mut [0; 1], p.now),
        Err(YamuxError::ConnectionClosed)
    ));
}

#[test]
fn remote_go_away_normal_stops_new_streams_only() {
    let mut p = Peer::new(Role::Initiator);
    let id = sid(p.open());
    p.send(&[session(Header::go_away(GoAwayCode::Normal))])
        .unwrap();
    assert_eq!(p.conn.remote_go_away(), Some(0));
    assert!(matches!(
        p.conn.open_stream(),
        Err(YamuxError::GoAwayReceived)
    ));
    assert_eq!(p.conn.write(id, b"ok").unwrap(), Some(2));
    assert!(!p.conn.is_closed());
}

#[test]
fn remote_go_away_with_error_closes() {
    let mut p = Peer::new(Role::Initiator);
    p.send(&[session(Header::go_away(GoAwayCode::ProtocolError))])
        .unwrap();
    assert!(matches!(
        p.conn.close_reason(),
        Some(YamuxError::RemoteGoAway(1))
    ));
    // We do not answer a GoAway with another.
    p.expect(&[]);
}

#[test]
fn syn_after_our_go_away_is_refused() {
    let mut p = Peer::new(Role::Responder);
    p.conn.goaway_sent = true;
    p.send(&[wu(1, Flags::SYN, 0)]).unwrap();
    p.expect(&[wu(1, Flags::RST, 0)]);
}

// ---------------------------------------------------------------------- bad input

#[test]
fn unknown_version_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    let mut bytes = Header::ping(1).to_bytes();
    bytes[0] = 2;
    let result = p.conn.handle_input(&bytes, p.now);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::UnsupportedVersion(2)
    ));
}

#[test]
fn unknown_type_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    let mut bytes = Header::ping(1).to_bytes();
    bytes[1] = 9;
    let result = p.conn.handle_input(&bytes, p.now);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::UnknownFrameType(9)
    ));
}

#[test]
fn unknown_flag_bits_are_ignored() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[Frame {
        header: Header::window_update(sid(1), Flags::from_bits(0x0101), 0),
        body: Vec::new(),
    }])
    .unwrap();
    assert_eq!(p.conn.accept_stream().unwrap(), Some(sid(1)));
}

#[test]
fn data_for_a_never_opened_remote_stream_is_reset() {
    let mut p = Peer::new(Role::Responder);
    p.send(&[data(7, Flags::NONE, b"who?")]).unwrap();
    p.expect(&[wu(7, Flags::RST, 0)]);
    assert_eq!(p.conn.stats().unknown_stream_frames, 1);
    // A RST for a stream never opened (rust-yamux sends these) gets no answer.
    p.send(&[wu(9, Flags::RST, 0)]).unwrap();
    p.expect(&[]);
    assert!(!p.conn.is_closed());
}

#[test]
fn data_for_a_never_opened_local_stream_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    let result = p.send(&[data(4, Flags::NONE, b"x")]);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::UnknownStream(_)
    ));
}

#[test]
fn syn_reusing_an_open_id_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    p.accept(1);
    let result = p.send(&[wu(1, Flags::SYN, 0)]);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::StreamIdReused(_)
    ));
}

#[test]
fn wrong_parity_syn_is_a_protocol_error() {
    let mut p = Peer::new(Role::Responder);
    let result = p.send(&[wu(2, Flags::SYN, 0)]);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::WrongParity(_)
    ));
    let mut p = Peer::new(Role::Initiator);
    let result = p.send(&[data(3, Flags::SYN, b"x")]);
    p.assert_protocol_error(result);
}

#[test]
fn stream_frames_on_stream_zero_and_session_frames_on_streams_are_errors() {
    let mut p = Peer::new(Role::Responder);
    let result = p.send(&[data(0, Flags::SYN, b"x")]);
    assert!(matches!(
        p.assert_protocol_error(result),
        YamuxError::WrongStreamId { .. }
    ));
    let mut p = Peer::new(Role::Responder);
    let mut ping = Header::ping(1);
    ping.stream = sid(1);
    let result = p.send(&[session(ping)]);
    p.assert_protocol_error(result);
    let mut p = Peer::new(Role::Responder);
    let mut go_away = Header::go_away(GoAwayCode::Normal);
    go_away.stream = sid(3);
    let result = p.send(&[session(go_away)]);
    p.assert_protocol_error(result);
}

#[test]
fn stream_flood_is_refused_past_the_accept_backlog() {
    let mut p = Peer::new(Role::Responder);
    let frames: Vec<Frame> = (0..300).map(|i| wu(1 + 2 * i, Flags::SYN, 0)).collect();
    p.send(&frames).unwrap();
    // 256 wait for the application, the rest are reset.
    let resets = p.recv();
    assert_eq!(resets.len(), 44);
    assert!(resets.iter().all(|f| f.header.flags == Flags::RST));
    assert_eq!(p.conn.stats().refused_streams, 44);
    assert_eq!(p.conn.num_streams(), 256);
    assert!(!p.conn.is_closed());
    // Accepting frees room: the next SYN waits too instead of being reset.
    p.conn.accept_stream().unwrap().unwrap();
    p.send(&[wu(1001, Flags::SYN, 0)]).unwrap();
    assert_eq!(p.recv(), []);
    assert_eq!(p.conn.num_streams(), 257);
}

#[test]
fn stream_flood_is_refused_past_the_inbound_limit() {
    let config = YamuxConfig::default().with_max_inbound_streams(3);
    let mut p = Peer::with_config(Role::Responder, config);
    for i in 0..3 {
        p.accept(1 + 2 * i);
    }
    p.send(&[data(7, Flags::SYN, b"payload is skipped")])
        .unwrap();
    p.expect(&[wu(7, Flags::RST, 0)]);
    // The refused stream's body was skipped cleanly.
    p.send(&[session(Header::ping(3))]).unwrap();
    p.expect(&[session(Header::pong(3))]);
}

#[test]
fn truncated_header_at_eof_is_an_error() {
    let mut p = Peer::new(Role::Responder);
    p.conn.handle_input(&[0, 2, 0], p.now).unwrap();
    p.conn.handle_eof();
    assert!(matches!(
        p.conn.close_reason(),
        Some(YamuxError::TruncatedFrame)
    ));
    // Truncated body too.
    let mut p = Peer::new(Role::Responder);
    let mut bytes = Header::data(sid(1), Flags::SYN, 10).to_bytes().to_vec();
    bytes.extend_from_slice(b"abc");
    p.conn.handle_input(&bytes, p.now).unwrap();
    p.conn.handle_eof();
    assert!(matches!(
        p.conn.close_reason(),
        Some(YamuxError::TruncatedFrame)
    ));
}

#[test]
fn clean_eof_closes_without_error() {
    let mut p = Peer::new(Role::Responder);
    p.conn.handle_eof();
    assert!(matches!(
        p.conn.close_reason(),
        Some(YamuxError::ConnectionClosed)
    ));
}

#[test]
fn io_error_closes() {
    let mut p = Peer::new(Role::Responder);
    p.conn
        .handle_io_error(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
    assert!(matches!(p.conn.close_reason(), Some(YamuxError::Io(_))));
}

#[test]
fn ping_flood_pauses_input_until_answers_are_sent() {
    let config = YamuxConfig::default().with_max_control_backlog(1200);
    let mut p = Peer::with_config(Role::Responder, config);
    let pings: Vec<Frame> = (0..100).map(|i| session(Header::ping(i))).collect();
    assert!(p.conn.wants_input());
    p.send(&pings).unwrap();
    assert!(!p.conn.wants_input());
    assert_eq!(p.recv().len(), 100);
    assert!(p.conn.wants_input());
}

#[test]
fn input_split_at_every_byte_gives_the_same_result() {
    let frames = [
        wu(1, Flags::SYN, 0),
        data(1, Flags::NONE, b"hello world"),
        session(Header::ping(9)),
        data(1, Flags::FIN, b"!"),
    ];
    let bytes = encode(&frames);
    let mut p = Peer::new(Role::Responder);
    for b in &bytes {
        p.conn.handle_input(std::slice::from_ref(b), p.now).unwrap();
    }
    p.conn.accept_stream().unwrap().unwrap();
    assert_eq!(p.read_all(1), b"hello world!");
    assert_eq!(p.conn.read(sid(1), &mut [0; 1], p.now).unwrap(), Some(0));
    p.expect(&[session(Header::pong(9)), wu(1, Flags::ACK, 0)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever bytes arrive, in whatever pieces: no panic, and when the connection fails it
    /// says so with GoAway or a clean close.
    #[test]
    fn arbitrary_input_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        split in 1usize..64,
        initiator in any::<bool>(),
    ) {
        let role = if initiator { Role::Initiator } else { Role::Responder };
        let mut conn = Connection::new(role, YamuxConfig::default(), Instant::now());
        let mut out = Vec::new();
        for chunk in bytes.chunks(split) {
            if conn.handle_input(chunk, Instant::now()).is_err() {
                break;
            }
            while let Ok(Some(id)) = conn.accept_stream() {
                let _ = conn.read(id, &mut [0; 64], Instant::now());
                let _ = conn.write(id, b"x");
            }
            conn.poll_transmit(&mut out);
        }
        conn.handle_eof();
        prop_assert!(conn.is_closed());
    }

    /// Frames built from valid pieces, fed in random splits, never panic either.
    #[test]
    fn arbitrary_frames_never_panic(
        frames in proptest::collection::vec(
            (0u8..4, 0u16..16, 0u32..8, 0u32..300_000, proptest::collection::vec(any::<u8>(), 0..32)),
            0..40,
        ),
        split in 1usize..200,
    ) {
        let mut conn = Connection::new(Role::Responder, YamuxConfig::default(), Instant::now());
        let mut bytes = Vec::new();
        for (kind, flags, stream, length, body) in frames {
            let kind = FrameKind::from_code(kind).unwrap();
            let length = if kind == FrameKind::Data { body.len() as u32 } else { length };
            let header = Header { kind, flags: Flags::from_bits(flags), stream: sid(stream), length };
            header.emit(&mut bytes);
            if kind == FrameKind::Data {
                bytes.extend_from_slice(&body);
            }
        }
        let mut out = Vec::new();
        for chunk in bytes.chunks(split) {
            let _ = conn.handle_input(chunk, Instant::now());
            while let Ok(Some(id)) = conn.accept_stream() {
                let _ = conn.read(id, &mut [0; 64], Instant::now());
            }
            conn.poll_transmit(&mut out);
        }
    }
}

// ---------------------------------------------------------------------- two connections

/// Two connections wired back to back under a fake clock: every `drive` moves all pending
/// bytes both ways until neither has anything to send. The link adds `latency` per hop.
struct Pair {
    client: Connection,
    server: Connection,
    now: Instant,
    latency: Duration,
}

impl Pair {
    fn new(config: YamuxConfig) -> Pair {
        let now = Instant::now();
        let mut pair = Pair {
            client: Connection::new(Role::Initiator, config.clone(), now),
            server: Connection::new(Role::Responder, config, now),
            now,
            latency: Duration::from_millis(1),
        };
        pair.drive();
        pair
    }

    fn drive(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut moved = false;
            buf.clear();
            if self.client.poll_transmit(&mut buf) {
                self.now += self.latency;
                self.server.handle_input(&buf, self.now).unwrap();
                moved = true;
            }
            buf.clear();
            if self.server.poll_transmit(&mut buf) {
                self.now += self.latency;
                self.client.handle_input(&buf, self.now).unwrap();
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }
}

fn read_some(conn: &mut Connection, id: StreamId, now: Instant, out: &mut Vec<u8>) -> bool {
    let mut buf = vec![0u8; 256 * 1024];
    let mut any = false;
    while let Ok(Some(n)) = conn.read(id, &mut buf, now) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        any = true;
    }
    any
}

#[test]
fn pair_measures_rtt_at_start() {
    let pair = Pair::new(YamuxConfig::default());
    assert_eq!(pair.client.rtt(), Some(Duration::from_millis(2)));
    // The server's ping left with its first transmit, one hop after it was queued.
    assert_eq!(pair.server.rtt(), Some(Duration::from_millis(3)));
}

#[test]
fn pair_transfers_a_large_stream_and_auto_tunes() {
    let mut pair = Pair::new(YamuxConfig::default());
    let id = pair.client.open_stream().unwrap().unwrap();
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut received = Vec::new();
    let mut accepted = None;
    while received.len() < payload.len() {
        while sent < payload.len() {
            match pair.client.write(id, &payload[sent..]).unwrap() {
                Some(n) => sent += n,
                None => break,
            }
        }
        if sent == payload.len() {
            pair.client.close_stream(id).unwrap();
        }
        pair.drive();
        if accepted.is_none() {
            accepted = pair.server.accept_stream().unwrap();
        }
        if let Some(sid) = accepted {
            read_some(&mut pair.server, sid, pair.now, &mut received);
        }
        pair.drive();
    }
    assert!(received == payload);
    let sid = accepted.unwrap();
    assert_eq!(
        pair.server.read(sid, &mut [0; 1], pair.now).unwrap(),
        Some(0)
    );
    // The reader kept up within an RTT all along: the window grew past the initial one.
    let window = pair.server.stream_status(sid).unwrap().window_max;
    assert!(window > INITIAL_WINDOW, "window {window}");
}

#[test]
fn pair_slow_reader_stalls_only_its_stream() {
    let mut pair = Pair::new(YamuxConfig::default());
    let slow = pair.client.open_stream().unwrap().unwrap();
    let fast = pair.client.open_stream().unwrap().unwrap();
    let chunk = vec![3u8; 64 * 1024];
    // Fill the slow stream's window; nobody reads it.
    let mut slow_sent = 0;
    while let Some(n) = pair.client.write(slow, &chunk).unwrap() {
        slow_sent += n;
        pair.drive();
    }
    assert_eq!(slow_sent, INITIAL_WINDOW as usize);
    pair.drive();
    let s1 = pair.server.accept_stream().unwrap().unwrap();
    let s2 = pair.server.accept_stream().unwrap().unwrap();
    assert_eq!(s1, slow);
    // The fast stream moves 4 MiB while the slow one stays stuck.
    let mut got = Vec::new();
    let mut fast_sent = 0;
    while got.len() < 4 * 1024 * 1024 {
        if fast_sent < 4 * 1024 * 1024
            && let Some(n) = pair.client.write(fast, &chunk).unwrap()
        {
            fast_sent += n;
        }
        pair.drive();
        read_some(&mut pair.server, s2, pair.now, &mut got);
        pair.drive();
    }
    assert_eq!(pair.client.write(slow, &chunk).unwrap(), None);
    assert_eq!(
        pair.server.stream_status(s1).unwrap().buffered,
        INITIAL_WINDOW as usize
    );
    // Once the slow reader reads, its writer moves again.
    let mut slow_got = Vec::new();
    read_some(&mut pair.server, s1, pair.now, &mut slow_got);
    pair.drive();
    assert!(pair.client.write(slow, &chunk).unwrap().is_some());
}

#[test]
fn pair_many_streams_both_ways_with_half_close() {
    let mut pair = Pair::new(YamuxConfig::default());
    let mut client_ids = Vec::new();
    let mut server_ids = Vec::new();
    for i in 0..50u8 {
        let c = pair.client.open_stream().unwrap().unwrap();
        pair.client.write(c, &[i; 1000]).unwrap();
        pair.client.close_stream(c).unwrap();
        client_ids.push(c);
        let s = pair.server.open_stream().unwrap().unwrap();
        pair.server.write(s, &[i; 500]).unwrap();
        pair.server.close_stream(s).unwrap();
        server_ids.push(s);
    }
    pair.drive();
    for (i, expect) in server_ids.iter().enumerate() {
        let id = pair.client.accept_stream().unwrap().unwrap();
        assert_eq!(id, *expect);
        let mut got = Vec::new();
        read_some(&mut pair.client, id, pair.now, &mut got);
        assert_eq!(got, vec![i as u8; 500]);
        pair.client.close_stream(id).unwrap();
    }
    for (i, expect) in client_ids.iter().enumerate() {
        let id = pair.server.accept_stream().unwrap().unwrap();
        assert_eq!(id, *expect);
        let mut got = Vec::new();
        read_some(&mut pair.server, id, pair.now, &mut got);
        assert_eq!(got, vec![i as u8; 1000]);
        pair.server.close_stream(id).unwrap();
    }
    pair.drive();
    assert_eq!(pair.client.num_streams(), 0);
    assert_eq!(pair.server.num_streams(), 0);
    assert_eq!(pair.client.window_budget(), 0);
    for id in client_ids {
        assert_eq!(
            pair.client.read(id, &mut [0; 1], pair.now).unwrap(),
            Some(0)
        );
        pair.client.drop_stream(id);
    }
    assert!(pair.client.streams.values().all(|s| !s.detached));
}

#[test]
fn pair_close_reaches_the_other_side() {
    let mut pair = Pair::new(YamuxConfig::default());
    let id = pair.client.open_stream().unwrap().unwrap();
    pair.client.write(id, b"bye").unwrap();
    pair.client.close();
    pair.drive();
    assert_eq!(pair.server.remote_go_away(), Some(0));
    // The data sent before GoAway arrived.
    let sid = pair.server.accept_stream().unwrap().unwrap();
    let mut got = Vec::new();
    read_some(&mut pair.server, sid, pair.now, &mut got);
    assert_eq!(got, b"bye");
    assert!(matches!(
        pair.server.open_stream(),
        Err(YamuxError::GoAwayReceived)
    ));
}
