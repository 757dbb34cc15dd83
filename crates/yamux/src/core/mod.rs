//! The core layer: the sans-IO yamux connection, bytes and `now` in, frames and events out.
//!
//! [`Connection`] owns no socket, spawns no task and reads no clock. The async shell (or a
//! test) feeds it what the socket produced with [`handle_input`](Connection::handle_input),
//! sends what [`poll_transmit`](Connection::poll_transmit) gives, wakes tasks according to
//! [`poll_event`](Connection::poll_event), and calls
//! [`handle_timeout`](Connection::handle_timeout) at [`poll_timeout`](Connection::poll_timeout).
//! Streams are driven with [`open_stream`](Connection::open_stream),
//! [`accept_stream`](Connection::accept_stream), [`write`](Connection::write),
//! [`read`](Connection::read), [`close_stream`](Connection::close_stream),
//! [`reset_stream`](Connection::reset_stream) and [`drop_stream`](Connection::drop_stream).
//!
//! Every rule of the spec lives here: frame handling, stream ids and states, flow control with
//! window auto-tuning, the ACK and accept backlogs, stream limits, Ping and GoAway.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod recv_buffer;
mod stream;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lp2p_core::{MemoryAccount, Role, UnlimitedMemory};

use lp2p_muxer_shell::id_map::IdMap;

use crate::config::{INITIAL_WINDOW, YamuxConfig};
use crate::error::YamuxError;
use crate::id::StreamId;
use crate::wire::{Flags, FrameKind, GoAwayCode, HEADER_LEN, Header};
use stream::StreamState;
pub use stream::StreamStatus;

/// A receive buffer that drained empty keeps its allocation for the next data, unless it grew
/// beyond this on a stream whose window was never grown (a reader that lags let it fill):
/// then it is freed, so idle streams do not pin their whole window. Streams with an
/// auto-tuned window keep theirs: they are moving bulk data, the memory is within the window
/// budget, and freeing it would mean reallocating it at once.
const SHRINK_RECV_BUFFER_ABOVE: usize = 64 * 1024;

/// A window update that did not grow its window also sends a ping when the RTT sample is
/// older than this many of its RTTs (and no ping is out). Auto-tuning grows a window when
/// the reader consumed half of it within two RTTs, judged against the last sample. That
/// sample is often the connection's first ping, taken idle: a fraction of the RTT a bulk
/// transfer then sees, once data queues in send buffers, sockets and, over a relayed
/// connection, the relay. Judged against it, no window ever grew: a circuit through a relay
/// moved 256 KiB per loaded round trip, and `cargo bench --bench relay` (interop/) had 0.61x
/// / 0.70x rust-libp2p's throughput, 1.00x / 0.94x with windows that grow (decision D65).
/// go-yamux and rust-yamux refresh the sample with periodic pings (every 10 s in
/// rust-yamux); a probe after 8 RTTs refreshes it within a transfer, and costs one ping
/// frame each way per window update at most.
const RTT_PROBE_AFTER_RTTS: u32 = 8;

/// Most bytes one direct body read asks for: the receive ring grows toward the window in
/// steps of at most this.
const DIRECT_READ_MAX: usize = 256 * 1024;

/// A Data body at least this large marks the traffic as bulk: the next read then takes just a
/// header, so that the body after it can be read straight into the stream's buffer (one copy
/// less). Smaller frames are read many at a time.
const DIRECT_READ_MIN: u32 = 4 * 1024;

/// Something the owner of a [`Connection`] must react to, usually by waking a task: the
/// shared shell's event vocabulary over yamux stream ids.
///
/// - `InboundStream`: a stream the remote opened is waiting ([`Connection::accept_stream`]).
/// - `Readable(id)`: a reader that found nothing can read again (data, FIN or reset arrived).
/// - `Writable(id)`: a blocked writer can write again (window update, buffer drained, reset).
/// - `OutboundAvailable`: [`Connection::open_stream`] may succeed again (the ACK backlog
///   shrank or a stream ended).
/// - `Closed`: the connection closed; every stream operation now fails.
pub type Event = lp2p_muxer_shell::Event<StreamId>;

/// Counters of remote misbehaviour that did not close the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Inbound streams refused with RST (stream limit, accept backlog, memory cap, GoAway).
    pub refused_streams: u64,
    /// Of those, the streams refused because the memory account (the resource manager's
    /// peer or system scope) had no room for their initial window.
    pub refused_for_memory: u64,
    /// Window growths skipped because the memory account refused them (the stream keeps
    /// its window).
    pub growth_refused_for_memory: u64,
    /// Frames for streams never opened, answered with RST.
    pub unknown_stream_frames: u64,
    /// Streams reset because data arrived after the application dropped them.
    pub reset_after_drop: u64,
}

#[derive(Debug)]
enum Decoder {
    /// Collecting a 12-byte header.
    Header {
        buf: [u8; HEADER_LEN],
        filled: usize,
    },
    /// Inside the body of a Data frame.
    Body {
        stream: StreamId,
        remaining: u32,
        /// FIN to apply once the body is in.
        fin: bool,
        /// The body is thrown away (reset, refused or closed stream).
        discard: bool,
    },
}

impl Decoder {
    const fn new() -> Decoder {
        Decoder::Header {
            buf: [0; HEADER_LEN],
            filled: 0,
        }
    }

    fn skip(stream: StreamId, len: u32) -> Decoder {
        if len == 0 {
            Decoder::new()
        } else {
            Decoder::Body {
                stream,
                remaining: len,
                fin: false,
                discard: true,
            }
        }
    }

    fn is_idle(&self) -> bool {
        matches!(self, Decoder::Header { filled: 0, .. })
    }
}

/// The last answered ping: its round trip, and when the answer came.
#[derive(Clone, Copy, Debug)]
struct RttSample {
    rtt: Duration,
    at: Instant,
}

#[derive(Clone, Copy, Debug)]
struct OutstandingPing {
    value: u32,
    sent_at: Instant,
}

/// The sans-IO state machine of one yamux connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    id: u64,
    role: Role,
    config: YamuxConfig,
    now: Instant,

    streams: IdMap<StreamId, StreamState>,
    /// Our next stream id; `None` once all ids of our parity are used.
    next_outbound_id: Option<u32>,
    /// The highest id the remote opened (or tried to).
    max_inbound_id: u32,
    inbound_active: usize,
    outbound_active: usize,
    outbound_unacked: usize,
    /// Sum of `window_max` over streams not finished: the memory we may have to hold.
    /// `memory` holds the same amount: it grows before `window_budget` does.
    window_budget: usize,
    /// The connection's memory account (see `lp2p_core::memory`).
    memory: Box<dyn MemoryAccount>,
    /// Inbound streams waiting for the application (not ACKed yet).
    pending_accept: VecDeque<StreamId>,

    decoder: Decoder,
    /// The last Data body was large: see [`DIRECT_READ_MIN`].
    bulk_input: bool,
    /// Frames ready to be sent, in order.
    out: Vec<u8>,
    /// Bytes of control frames in `out` (the part that grows with the remote's input).
    control_pending: usize,
    /// Streams with a SYN to send at the next transmit if no frame took it before.
    flag_queue: Vec<StreamId>,
    /// Accepted streams whose ACK waits for a frame to ride on (see
    /// [`accept_stream`](Connection::accept_stream)).
    ack_queue: Vec<StreamId>,
    /// Streams whose writer waits for `out` to drain.
    buffer_waiters: Vec<StreamId>,

    events: VecDeque<Event>,
    accept_waiting: bool,
    open_waiting: bool,

    goaway_sent: bool,
    goaway_received: Option<u32>,
    closed: Option<YamuxError>,

    ping: Option<OutstandingPing>,
    next_ping_value: u32,
    next_ping_at: Option<Instant>,
    rtt: Option<RttSample>,

    stats: ConnectionStats,
}

fn next_connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `a - b` for counters that must not go below zero.
fn dec(a: &mut usize, b: usize) {
    *a = a.saturating_sub(b);
}

fn inc(a: &mut usize, b: usize) {
    *a = a.saturating_add(b);
}

impl Connection {
    /// A new connection. `role` is [`Role::Initiator`] on the side that dialed: it is the
    /// yamux client and opens odd stream ids. A ping is queued at once to measure the RTT
    /// that window auto-tuning needs.
    pub fn new(role: Role, config: YamuxConfig, now: Instant) -> Connection {
        Connection::with_memory(role, config, now, UnlimitedMemory::boxed())
    }

    /// A new connection whose receive windows are reserved from `memory` before they are
    /// granted: a new stream's 256 KiB initial window (an inbound stream is refused with RST,
    /// opening one fails with [`YamuxError::OutOfMemory`]) and every window growth (skipped
    /// when refused). Finished streams return theirs; dropping the connection returns all.
    pub fn with_memory(
        role: Role,
        config: YamuxConfig,
        now: Instant,
        memory: Box<dyn MemoryAccount>,
    ) -> Connection {
        let mut conn = Connection {
            id: next_connection_id(),
            role,
            config,
            now,
            streams: IdMap::default(),
            next_outbound_id: Some(if role.is_initiator() { 1 } else { 2 }),
            max_inbound_id: 0,
            inbound_active: 0,
            outbound_active: 0,
            outbound_unacked: 0,
            window_budget: 0,
            memory,
            pending_accept: VecDeque::new(),
            decoder: Decoder::new(),
            bulk_input: false,
            out: Vec::new(),
            control_pending: 0,
            flag_queue: Vec::new(),
            ack_queue: Vec::new(),
            buffer_waiters: Vec::new(),
            events: VecDeque::new(),
            accept_waiting: false,
            open_waiting: false,
            goaway_sent: false,
            goaway_received: None,
            closed: None,
            ping: None,
            next_ping_value: 0,
            next_ping_at: None,
            rtt: None,
            stats: ConnectionStats::default(),
        };
        conn.send_ping(now);
        conn
    }

    /// A number identifying this connection in logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &YamuxConfig {
        &self.config
    }

    /// The round-trip time measured by the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.map(|sample| sample.rtt)
    }

    /// Counters of remote misbehaviour that did not close the connection.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<&YamuxError> {
        self.closed.as_ref()
    }

    /// The GoAway code the remote sent, if it sent one.
    pub fn remote_go_away(&self) -> Option<u32> {
        self.goaway_received
    }

    /// Streams open in either direction (not yet closed both ways or reset).
    pub fn num_streams(&self) -> usize {
        self.inbound_active.saturating_add(self.outbound_active)
    }

    /// A snapshot of one stream's state.
    pub fn stream_status(&self, id: StreamId) -> Option<StreamStatus> {
        self.streams.get(&id).map(StreamStatus::from)
    }

    /// The sum of the receive windows of all open streams: the most the remote can make us
    /// buffer. Never above the configured connection window.
    pub fn window_budget(&self) -> usize {
        self.window_budget
    }

    // ------------------------------------------------------------------ input

    /// Feeds bytes read from the socket. Frames may be split anywhere across calls.
    ///
    /// A protocol violation queues GoAway (protocol error), closes the connection and is
    /// returned; after that (or after any close) input is ignored.
    pub fn handle_input(&mut self, mut input: &[u8], now: Instant) -> Result<(), YamuxError> {
        self.now = now;
        while !input.is_empty() && self.closed.is_none() {
            match &mut self.decoder {
                Decoder::Header { buf, filled } => {
                    let start = *filled;
                    let take = HEADER_LEN.saturating_sub(start).min(input.len());
                    let (head, rest) = input.split_at(take);
                    if let Some(dst) = buf.get_mut(start..start.saturating_add(take)) {
                        dst.copy_from_slice(head);
                    }
                    input = rest;
                    *filled = start.saturating_add(take);
                    if *filled < HEADER_LEN {
                        break;
                    }
                    let bytes = *buf;
                    self.decoder = Decoder::new();
                    let result = Header::parse(&bytes).and_then(|h| self.on_header(h));
                    if let Err(err) = result {
                        self.fail(err.clone());
                        return Err(err);
                    }
                }
                Decoder::Body { remaining, .. } => {
                    let take = input.len().min(*remaining as usize);
                    let (chunk, rest) = input.split_at(take);
                    input = rest;
                    self.body_progress(take, Some(chunk));
                }
            }
        }
        Ok(())
    }

    /// Accounts for `n` bytes of the current Data body: copies `chunk` into the stream, or,
    /// when `chunk` is `None`, takes the bytes as already read into the stream's buffer.
    fn body_progress(&mut self, n: usize, chunk: Option<&[u8]>) {
        let Decoder::Body {
            stream,
            remaining,
            fin,
            discard,
        } = &mut self.decoder
        else {
            return;
        };
        let take = n.min(*remaining as usize);
        // `take <= remaining`, so this cannot wrap.
        *remaining = remaining.saturating_sub(u32::try_from(take).unwrap_or(u32::MAX));
        let (id, done, fin, discard) = (*stream, *remaining == 0, *fin, *discard);
        if done {
            self.decoder = Decoder::new();
        }
        if !discard {
            match chunk {
                Some(chunk) => self.on_body(id, chunk),
                None => self.on_body_read(id, take),
            }
        }
        if done && fin && !discard {
            self.on_remote_fin(id);
        }
    }

    /// Where the next input bytes may be read directly, when they are the body of a Data
    /// frame for a live stream: free space in that stream's receive buffer, no longer than
    /// the body. After reading into it, call
    /// [`commit_body_input`](Connection::commit_body_input). `None` means: read into a buffer
    /// of your own and use [`handle_input`](Connection::handle_input).
    pub fn body_input_buffer(&mut self) -> Option<&mut [u8]> {
        if self.closed.is_some() {
            return None;
        }
        let Decoder::Body {
            stream,
            remaining,
            discard: false,
            ..
        } = self.decoder
        else {
            return None;
        };
        let s = self.streams.get_mut(&stream)?;
        if s.reset || s.detached {
            return None;
        }
        let limit = s.window_max as usize;
        let spare = s
            .recv_buf
            .spare_mut((remaining as usize).min(DIRECT_READ_MAX), limit);
        if spare.is_empty() { None } else { Some(spare) }
    }

    /// `n` bytes were read into the start of the slice from
    /// [`body_input_buffer`](Connection::body_input_buffer).
    pub fn commit_body_input(&mut self, n: usize, now: Instant) {
        self.now = now;
        self.body_progress(n, None);
    }

    /// How many bytes the next read should take at most, if it matters: just the header when
    /// bulk data is flowing (so the body after it can be read directly), or the rest of a
    /// body being skipped. `None`: as many as are available.
    pub fn input_hint(&self) -> Option<usize> {
        match self.decoder {
            Decoder::Header { filled, .. } if self.bulk_input => {
                Some(HEADER_LEN.saturating_sub(filled))
            }
            Decoder::Body { remaining, .. } => Some(remaining as usize),
            Decoder::Header { .. } => None,
        }
    }

    /// The socket reached EOF. A frame cut in the middle is [`YamuxError::TruncatedFrame`];
    /// otherwise the connection closes cleanly. Buffered data stays readable.
    pub fn handle_eof(&mut self) {
        if self.closed.is_some() {
            return;
        }
        if self.decoder.is_idle() {
            tracing::debug!(conn = self.id, "remote closed the connection");
            self.set_closed(YamuxError::ConnectionClosed);
        } else {
            self.fail(YamuxError::TruncatedFrame);
        }
    }

    /// Reading or writing the socket failed: the connection is closed with that error.
    pub fn handle_io_error(&mut self, err: std::io::Error) {
        self.fail(YamuxError::from(err));
    }

    /// Whether the owner should read more input. False once closed, and while too many
    /// control frames (answers to the remote's input) wait to be sent: reading resumes once
    /// [`poll_transmit`](Connection::poll_transmit) took them.
    pub fn wants_input(&self) -> bool {
        self.closed.is_none() && self.control_pending < self.config.max_control_backlog
    }

    fn on_header(&mut self, h: Header) -> Result<(), YamuxError> {
        tracing::trace!(conn = self.id, header = ?h, "frame received");
        if h.kind == FrameKind::Data {
            self.bulk_input = h.length >= DIRECT_READ_MIN;
        }
        match h.kind {
            FrameKind::Ping | FrameKind::GoAway if !h.stream.is_session() => {
                Err(YamuxError::WrongStreamId {
                    kind: h.kind.name(),
                    stream: h.stream,
                })
            }
            FrameKind::Ping => {
                self.on_ping(h);
                Ok(())
            }
            FrameKind::GoAway => {
                self.on_go_away(h.length);
                Ok(())
            }
            FrameKind::Data | FrameKind::WindowUpdate if h.stream.is_session() => {
                Err(YamuxError::WrongStreamId {
                    kind: h.kind.name(),
                    stream: h.stream,
                })
            }
            FrameKind::Data | FrameKind::WindowUpdate => self.on_stream_frame(h),
        }
    }

    fn is_remote_id(&self, id: StreamId) -> bool {
        match self.role {
            Role::Initiator => id.is_server(),
            Role::Responder => id.is_client(),
        }
    }

    /// Why a new inbound stream must be refused, if it must.
    fn refuse_reason(&self) -> Option<&'static str> {
        if self.goaway_sent {
            Some("we sent GoAway")
        } else if self.inbound_active >= self.config.max_inbound_streams {
            Some("inbound stream limit reached")
        } else if self.pending_accept.len() >= self.config.max_accept_backlog {
            Some("accept backlog full")
        } else if self.window_budget.saturating_add(INITIAL_WINDOW as usize)
            > self.config.max_connection_window
        {
            Some("connection window budget exhausted")
        } else {
            None
        }
    }

    fn on_stream_frame(&mut self, h: Header) -> Result<(), YamuxError> {
        let id = h.stream;
        let body = if h.kind == FrameKind::Data {
            h.length
        } else {
            0
        };
        let syn = h.flags.contains(Flags::SYN);
        let rst = h.flags.contains(Flags::RST);
        let fin = h.flags.contains(Flags::FIN);
        let ack = h.flags.contains(Flags::ACK);

        if syn {
            if !self.is_remote_id(id) {
                return Err(YamuxError::WrongParity(id));
            }
            if self.streams.contains_key(&id) {
                return Err(YamuxError::StreamIdReused(id));
            }
            if body > INITIAL_WINDOW {
                return Err(YamuxError::WindowExceeded {
                    stream: id,
                    len: body,
                    window: INITIAL_WINDOW,
                });
            }
            let credit = if h.kind == FrameKind::WindowUpdate {
                h.length
            } else {
                0
            };
            let send_window = INITIAL_WINDOW
                .checked_add(credit)
                .ok_or(YamuxError::CreditOverflow(id))?;
            self.max_inbound_id = self.max_inbound_id.max(id.get());
            if let Some(why) = self.refuse_reason() {
                self.stats.refused_streams = self.stats.refused_streams.saturating_add(1);
                tracing::debug!(conn = self.id, stream = %id, reason = why, "refusing inbound stream");
                if !rst {
                    self.emit_control(Header::window_update(id, Flags::RST, 0));
                }
                self.decoder = Decoder::skip(id, body);
                return Ok(());
            }
            if let Err(denied) = self.memory.try_grow(INITIAL_WINDOW as usize) {
                self.stats.refused_streams = self.stats.refused_streams.saturating_add(1);
                self.stats.refused_for_memory = self.stats.refused_for_memory.saturating_add(1);
                tracing::debug!(conn = self.id, stream = %id, %denied, "refusing inbound stream");
                if !rst {
                    self.emit_control(Header::window_update(id, Flags::RST, 0));
                }
                self.decoder = Decoder::skip(id, body);
                return Ok(());
            }
            tracing::debug!(conn = self.id, stream = %id, "inbound stream opened");
            self.streams
                .insert(id, StreamState::new(false, send_window, self.now));
            self.pending_accept.push_back(id);
            inc(&mut self.inbound_active, 1);
            inc(&mut self.window_budget, INITIAL_WINDOW as usize);
            if self.accept_waiting {
                self.accept_waiting = false;
                self.events.push_back(Event::InboundStream);
            }
        }

        let Some(s) = self.streams.get_mut(&id) else {
            return self.on_unknown_stream(h, body, rst);
        };

        if ack && s.awaiting_ack {
            s.awaiting_ack = false;
            dec(&mut self.outbound_unacked, 1);
            if self.open_waiting {
                self.open_waiting = false;
                self.events.push_back(Event::OutboundAvailable);
            }
        }

        if rst {
            if !s.reset {
                tracing::debug!(conn = self.id, stream = %id, "stream reset by the remote");
                s.reset = true;
                // Data that arrived before the reset stays readable (D46): rust-yamux resets
                // a stream its handler wrote an answer on and then dropped, and that answer
                // must not be lost to a race with our reader. Reads report the reset once
                // it is drained; dropping the handle frees it (a dropped stream buffers
                // nothing).
                wake_both(s, id, &mut self.events);
                self.check_finished(id);
            }
            self.decoder = Decoder::skip(id, body);
            return Ok(());
        }
        if s.reset {
            // In flight when we reset it.
            self.decoder = Decoder::skip(id, body);
            return Ok(());
        }

        if h.kind == FrameKind::WindowUpdate && !syn && h.length > 0 {
            s.send_window = s
                .send_window
                .checked_add(h.length)
                .ok_or(YamuxError::CreditOverflow(id))?;
            if s.write_blocked {
                s.write_blocked = false;
                self.events.push_back(Event::Writable(id));
            }
        }

        if body > 0 {
            if s.read_closed {
                return Err(YamuxError::DataAfterFin(id));
            }
            if body > s.recv_window {
                return Err(YamuxError::WindowExceeded {
                    stream: id,
                    len: body,
                    window: s.recv_window,
                });
            }
            s.recv_window = s.recv_window.saturating_sub(body);
            if s.detached {
                self.reset_after_drop(id);
                self.decoder = Decoder::skip(id, body);
                return Ok(());
            }
            self.decoder = Decoder::Body {
                stream: id,
                remaining: body,
                fin,
                discard: false,
            };
            return Ok(());
        }
        if fin {
            self.on_remote_fin(id);
        }
        Ok(())
    }

    /// A frame without SYN for a stream not in the table.
    fn on_unknown_stream(&mut self, h: Header, body: u32, rst: bool) -> Result<(), YamuxError> {
        let id = h.stream;
        self.decoder = Decoder::skip(id, body);
        if self.is_remote_id(id) {
            if id.get() > self.max_inbound_id {
                // Never opened. rust-yamux sends FIN or RST without SYN for streams it opened
                // and dropped before writing, so this is answered with RST, not GoAway.
                self.stats.unknown_stream_frames =
                    self.stats.unknown_stream_frames.saturating_add(1);
                let err = YamuxError::UnknownStream(id);
                tracing::debug!(conn = self.id, stream = %id, error = %err, "frame for a stream never opened");
                if !rst {
                    self.emit_control(Header::window_update(id, Flags::RST, 0));
                }
            }
            // Otherwise a stream that closed: frames still in flight are dropped.
            Ok(())
        } else {
            match self.next_outbound_id {
                Some(next) if id.get() >= next => Err(YamuxError::UnknownStream(id)),
                _ => Ok(()),
            }
        }
    }

    fn on_body(&mut self, id: StreamId, chunk: &[u8]) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset {
            return;
        }
        if s.detached {
            // Dropped while its data was arriving.
            self.reset_after_drop(id);
            self.decoder = match self.decoder {
                Decoder::Body { remaining, .. } => Decoder::skip(id, remaining),
                Decoder::Header { .. } => Decoder::new(),
            };
            return;
        }
        let limit = s.window_max as usize;
        s.recv_buf.push(chunk, limit);
        if s.read_blocked {
            s.read_blocked = false;
            self.events.push_back(Event::Readable(id));
        }
    }

    fn on_body_read(&mut self, id: StreamId, n: usize) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.recv_buf.commit(n);
        if s.read_blocked {
            s.read_blocked = false;
            self.events.push_back(Event::Readable(id));
        }
    }

    fn on_remote_fin(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.read_closed || s.reset {
            return;
        }
        tracing::trace!(conn = self.id, stream = %id, "remote half-closed the stream");
        s.read_closed = true;
        if s.read_blocked {
            s.read_blocked = false;
            self.events.push_back(Event::Readable(id));
        }
        self.check_finished(id);
    }

    fn on_ping(&mut self, h: Header) {
        if h.flags.contains(Flags::SYN) {
            self.emit_control(Header::pong(h.length));
        } else if h.flags.contains(Flags::ACK) {
            match self.ping {
                Some(p) if p.value == h.length => {
                    let rtt = self.now.saturating_duration_since(p.sent_at);
                    tracing::debug!(conn = self.id, ?rtt, "ping answered");
                    self.rtt = Some(RttSample { rtt, at: self.now });
                    self.ping = None;
                    self.next_ping_at = self
                        .config
                        .keep_alive_interval
                        .and_then(|i| self.now.checked_add(i));
                }
                _ => tracing::debug!(
                    conn = self.id,
                    value = h.length,
                    "unexpected ping answer ignored"
                ),
            }
        }
    }

    fn on_go_away(&mut self, code: u32) {
        tracing::debug!(conn = self.id, code, "remote sent GoAway");
        self.goaway_received = Some(code);
        if code == GoAwayCode::Normal.code() {
            // No new streams; the ones open may finish.
            if self.open_waiting {
                self.open_waiting = false;
                self.events.push_back(Event::OutboundAvailable);
            }
        } else {
            self.set_closed(YamuxError::RemoteGoAway(code));
        }
    }

    // ------------------------------------------------------------------ output

    fn emit_control(&mut self, header: Header) {
        header.emit(&mut self.out);
        inc(&mut self.control_pending, HEADER_LEN);
    }

    fn send_ping(&mut self, now: Instant) {
        let value = self.next_ping_value;
        self.next_ping_value = value.wrapping_add(1);
        self.emit_control(Header::ping(value));
        self.ping = Some(OutstandingPing {
            value,
            sent_at: now,
        });
        self.next_ping_at = None;
    }

    /// Moves the frames ready to send into `buf` (appending when `buf` is not empty, else
    /// swapping buffers so nothing is copied or allocated). Returns whether anything was
    /// added. Writers that waited for the send buffer are signalled writable.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.closed.is_none() {
            let mut syns = std::mem::take(&mut self.flag_queue);
            self.emit_pending_flags(&mut syns);
            self.flag_queue = syns;
            // Deferred ACKs go only along with frames that are sent anyway: the same write.
            if !self.out.is_empty() {
                let mut acks = std::mem::take(&mut self.ack_queue);
                self.emit_pending_flags(&mut acks);
                self.ack_queue = acks;
            }
        }
        if self.out.is_empty() {
            return false;
        }
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.extend_from_slice(&self.out);
            self.out.clear();
        }
        self.control_pending = 0;
        for id in self.buffer_waiters.drain(..) {
            if let Some(s) = self.streams.get_mut(&id)
                && s.waiting_for_buffer
            {
                s.waiting_for_buffer = false;
                self.events.push_back(Event::Writable(id));
            }
        }
        true
    }

    /// Sends the pending flag of each stream in `queue` that no frame took yet, in a window
    /// update of its own, and empties `queue`.
    fn emit_pending_flags(&mut self, queue: &mut Vec<StreamId>) {
        for id in queue.drain(..) {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if s.pending_flag.is_empty() || s.reset {
                continue;
            }
            let flag = s.take_flag();
            Header::window_update(id, flag, 0).emit(&mut self.out);
        }
    }

    /// Whether [`poll_transmit`](Connection::poll_transmit) has something to give.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty() || (self.closed.is_none() && !self.flag_queue.is_empty())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------ timers

    /// When [`handle_timeout`](Connection::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        self.config.keep_alive_interval?;
        match self.ping {
            Some(p) => p.sent_at.checked_add(self.config.ping_timeout),
            None => self.next_ping_at,
        }
    }

    /// Time has passed: sends the keep-alive ping when due, and closes the connection with
    /// [`YamuxError::KeepAliveTimeout`] when a ping went unanswered too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closed.is_some() || self.config.keep_alive_interval.is_none() {
            return;
        }
        match self.ping {
            Some(p) => {
                let deadline = p.sent_at.checked_add(self.config.ping_timeout);
                if deadline.is_some_and(|d| now >= d) {
                    self.fail(YamuxError::KeepAliveTimeout(self.config.ping_timeout));
                }
            }
            None => {
                if self.next_ping_at.is_some_and(|at| now >= at) {
                    self.send_ping(now);
                }
            }
        }
    }

    // ------------------------------------------------------------------ streams

    /// Opens a stream. `Ok(None)` means the ACK backlog is full: wait for
    /// [`Event::OutboundAvailable`]. Fails once the connection is closed, after the remote's
    /// GoAway, and at the outbound stream limit.
    ///
    /// The SYN rides on the stream's first frame, or goes alone at the next transmit.
    pub fn open_stream(&mut self) -> Result<Option<StreamId>, YamuxError> {
        if let Some(err) = &self.closed {
            return Err(err.clone());
        }
        if self.goaway_received.is_some() {
            return Err(YamuxError::GoAwayReceived);
        }
        if self.outbound_active >= self.config.max_outbound_streams {
            return Err(YamuxError::TooManyStreams(self.config.max_outbound_streams));
        }
        if self.window_budget.saturating_add(INITIAL_WINDOW as usize)
            > self.config.max_connection_window
        {
            return Err(YamuxError::TooManyStreams(self.num_streams()));
        }
        if self.outbound_unacked >= self.config.max_ack_backlog {
            self.open_waiting = true;
            return Ok(None);
        }
        let raw = self
            .next_outbound_id
            .ok_or(YamuxError::StreamIdsExhausted)?;
        self.memory
            .try_grow(INITIAL_WINDOW as usize)
            .map_err(YamuxError::OutOfMemory)?;
        self.next_outbound_id = raw.checked_add(2);
        let id = StreamId::new(raw);
        self.streams
            .insert(id, StreamState::new(true, INITIAL_WINDOW, self.now));
        self.flag_queue.push(id);
        inc(&mut self.outbound_active, 1);
        inc(&mut self.outbound_unacked, 1);
        inc(&mut self.window_budget, INITIAL_WINDOW as usize);
        tracing::debug!(conn = self.id, stream = %id, "outbound stream opened");
        Ok(Some(id))
    }

    /// Takes the next stream the remote opened. `Ok(None)` means none is waiting: wait for
    /// [`Event::InboundStream`]. Fails once the connection is closed (streams not yet taken
    /// then are dropped).
    ///
    /// The stream is acknowledged (ACK) on its first frame: the first write, a window
    /// update, a close or a reset. Before that, it rides in a window update of its own along
    /// with any other frame the connection sends, and goes alone as soon as the application
    /// waits to read from the stream (D67). So a request answered at once costs the server
    /// one frame, and a stream whose application reads before it writes is acknowledged as
    /// soon as it asks for data. The ACK only releases an entry of the opener's ACK backlog
    /// (256 streams); the libp2p yamux spec lets the opener write before it arrives.
    pub fn accept_stream(&mut self) -> Result<Option<StreamId>, YamuxError> {
        while let Some(id) = self.pending_accept.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            if s.reset {
                // Reset before anyone took it.
                s.detached = true;
                self.check_finished(id);
                continue;
            }
            s.pending_flag = Flags::ACK;
            self.ack_queue.push(id);
            return Ok(Some(id));
        }
        if let Some(err) = &self.closed {
            return Err(err.clone());
        }
        self.accept_waiting = true;
        Ok(None)
    }

    /// Writes as much of `data` as the send window and the send buffer allow, split into
    /// frames of at most the configured split size. `Ok(None)` means nothing could be
    /// written: wait for [`Event::Writable`].
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<Option<usize>, YamuxError> {
        let closed = self.closed.clone();
        let split = self.config.split_size.max(1);
        let room = self.config.max_send_buffer.saturating_sub(self.out.len());
        let s = self
            .streams
            .get_mut(&id)
            .ok_or(YamuxError::NoSuchStream(id))?;
        if s.reset {
            return Err(YamuxError::StreamReset(id));
        }
        if let Some(err) = closed {
            return Err(err);
        }
        if s.write_closed {
            return Err(YamuxError::WriteClosed(id));
        }
        if data.is_empty() {
            return Ok(Some(0));
        }
        let want = data.len().min(s.send_window as usize);
        if want == 0 {
            s.write_blocked = true;
            return Ok(None);
        }
        if room < want.min(split) {
            if !s.waiting_for_buffer {
                s.waiting_for_buffer = true;
                self.buffer_waiters.push(id);
            }
            return Ok(None);
        }
        let n = want.min(room);
        let Some(data) = data.get(..n) else {
            return Ok(None);
        };
        let mut flags = s.take_flag();
        for chunk in data.chunks(split) {
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            Header::data(id, flags, len).emit(&mut self.out);
            self.out.extend_from_slice(chunk);
            flags = Flags::NONE;
        }
        s.send_window = s
            .send_window
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        Ok(Some(n))
    }

    /// Reads buffered data into `buf`. `Ok(Some(0))` is the end of the stream (the remote
    /// sent FIN and everything was read, or `buf` is empty). After a remote reset, data that
    /// arrived before it is still returned, then [`YamuxError::StreamReset`]; a local
    /// [`reset_stream`](Connection::reset_stream) drops it at once (D46). `Ok(None)` means nothing yet:
    /// wait for [`Event::Readable`]. Reading returns window credit to the remote (a window
    /// update once half the window was consumed), growing the window when the reader keeps
    /// up within two round trips.
    pub fn read(
        &mut self,
        id: StreamId,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, YamuxError> {
        self.now = now;
        let s = self
            .streams
            .get_mut(&id)
            .ok_or(YamuxError::NoSuchStream(id))?;
        if s.reset && s.recv_buf.is_empty() {
            return Err(YamuxError::StreamReset(id));
        }
        if buf.is_empty() {
            return Ok(Some(0));
        }
        if !s.recv_buf.is_empty() {
            let n = s.recv_buf.pop(buf);
            if s.recv_buf.is_empty()
                && s.recv_buf.capacity() > SHRINK_RECV_BUFFER_ABOVE
                && s.window_max <= INITIAL_WINDOW
            {
                s.recv_buf.clear_and_free();
            }
            s.pending_credit = s
                .pending_credit
                .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
            self.maybe_window_update(id, now);
            return Ok(Some(n));
        }
        if s.read_closed {
            return Ok(Some(0));
        }
        if let Some(err) = &self.closed {
            return Err(err.clone());
        }
        s.read_blocked = true;
        if s.pending_flag == Flags::ACK {
            // The application now waits on the opener, maybe for long: acknowledge now
            // rather than hold the opener's backlog entry until our first write.
            let flag = s.take_flag();
            Header::window_update(id, flag, 0).emit(&mut self.out);
        }
        Ok(None)
    }

    /// Sends a window update for `id` once the application consumed half its window, growing
    /// the window first when that took less than two RTTs (the reader keeps up and the
    /// window, not the reader, limits the sender). When it took longer and the RTT sample is
    /// stale ([`RTT_PROBE_AFTER_RTTS`]), a ping goes out with the update to measure the RTT
    /// as it is now (see that constant).
    fn maybe_window_update(&mut self, id: StreamId, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.read_closed || s.reset || s.pending_credit < s.window_max / 2 {
            return;
        }
        let may_grow = s.window_max < self.config.max_stream_window;
        let took = now.saturating_duration_since(s.last_update);
        let probe = self.rtt.is_some_and(|sample| {
            may_grow
                && self.ping.is_none()
                && took >= sample.rtt.saturating_mul(2)
                && now.saturating_duration_since(sample.at)
                    >= sample.rtt.saturating_mul(RTT_PROBE_AFTER_RTTS)
        });
        if let Some(RttSample { rtt, .. }) = self.rtt
            && took < rtt.saturating_mul(2)
            && may_grow
        {
            let target = s
                .window_max
                .saturating_mul(2)
                .min(self.config.max_stream_window);
            let budget_left = self
                .config
                .max_connection_window
                .saturating_sub(self.window_budget);
            let grow = target
                .saturating_sub(s.window_max)
                .min(u32::try_from(budget_left).unwrap_or(u32::MAX));
            let grow = if grow > 0 {
                // Refused: grow by what the refusing scope has left, if another scope does
                // not refuse that too (as the connection cap above grows partly).
                match self.memory.try_grow(grow as usize) {
                    Ok(()) => grow,
                    Err(denied) => {
                        let room = denied.limit.saturating_sub(denied.used);
                        let room = u32::try_from(room).unwrap_or(u32::MAX).min(grow);
                        if room > 0 && self.memory.try_grow(room as usize).is_ok() {
                            room
                        } else {
                            self.stats.growth_refused_for_memory =
                                self.stats.growth_refused_for_memory.saturating_add(1);
                            tracing::trace!(conn = self.id, stream = %id, %denied, "receive window not grown");
                            0
                        }
                    }
                }
            } else {
                0
            };
            if grow > 0 {
                s.window_max = s.window_max.saturating_add(grow);
                s.pending_credit = s.pending_credit.saturating_add(grow);
                inc(&mut self.window_budget, grow as usize);
                tracing::trace!(conn = self.id, stream = %id, window = s.window_max, "receive window grown");
            }
        }
        let credit = s.pending_credit;
        s.pending_credit = 0;
        s.recv_window = s.recv_window.saturating_add(credit);
        s.last_update = now;
        let flags = s.take_flag();
        Header::window_update(id, flags, credit).emit(&mut self.out);
        if probe {
            tracing::trace!(conn = self.id, stream = %id, "RTT probe for window auto-tuning");
            self.send_ping(now);
        }
    }

    /// Half-closes the stream: FIN, the remote reads EOF once it has the data sent before.
    /// Closing twice is fine.
    pub fn close_stream(&mut self, id: StreamId) -> Result<(), YamuxError> {
        let closed = self.closed.clone();
        let s = self
            .streams
            .get_mut(&id)
            .ok_or(YamuxError::NoSuchStream(id))?;
        if s.reset {
            return Err(YamuxError::StreamReset(id));
        }
        if s.write_closed {
            return Ok(());
        }
        if let Some(err) = closed {
            return Err(err);
        }
        let flags = s.take_flag() | Flags::FIN;
        s.write_closed = true;
        self.emit_control(Header::data(id, flags, 0));
        self.check_finished(id);
        Ok(())
    }

    /// Resets the stream in both directions (RST). Buffered data is dropped. Resetting an
    /// unknown or already reset stream does nothing.
    pub fn reset_stream(&mut self, id: StreamId) {
        let open = self.closed.is_none();
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset {
            return;
        }
        s.reset = true;
        s.recv_buf.clear_and_free();
        // A stream whose SYN never left is unknown to the remote: nothing to send.
        let syn_sent = s.syn_sent;
        s.pending_flag = Flags::NONE;
        wake_both(s, id, &mut self.events);
        if open && syn_sent && !(s.read_closed && s.write_closed) {
            self.emit_control(Header::window_update(id, Flags::RST, 0));
        }
        tracing::debug!(conn = self.id, stream = %id, "stream reset");
        self.check_finished(id);
    }

    /// The application dropped its handle. Like `poll_close`, our side is half-closed (FIN)
    /// if it was not already; data that was buffered is dropped, and if the remote sends more
    /// the stream is reset. The state is freed once the stream is done.
    pub fn drop_stream(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.detached = true;
        s.read_blocked = false;
        s.write_blocked = false;
        if !s.syn_sent {
            // Opened and dropped before anything was sent: the remote never knew of it.
            self.reset_stream(id);
            return;
        }
        let discarded = u32::try_from(s.recv_buf.len()).unwrap_or(u32::MAX);
        s.recv_buf.clear_and_free();
        let open = self.closed.is_none() && !s.reset;
        if open && !s.read_closed {
            // Return the credit of what was buffered and the part not yet returned, so a
            // remote blocked on an exhausted window can move on: its next data (or its FIN)
            // then ends the stream.
            let credit = s.pending_credit.saturating_add(discarded);
            if credit > 0 {
                s.pending_credit = 0;
                s.recv_window = s.recv_window.saturating_add(credit);
                let flags = s.take_flag();
                self.emit_control(Header::window_update(id, flags, credit));
            }
        }
        if open {
            let _ = self.close_stream(id);
        }
        self.check_finished(id);
    }

    fn reset_after_drop(&mut self, id: StreamId) {
        self.stats.reset_after_drop = self.stats.reset_after_drop.saturating_add(1);
        tracing::debug!(conn = self.id, stream = %id, "data for a dropped stream: resetting it");
        self.reset_stream(id);
    }

    /// Accounts for a stream that became done, and frees it once its handle is gone too.
    fn check_finished(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if !s.finished && s.is_done() {
            s.finished = true;
            if s.outbound {
                dec(&mut self.outbound_active, 1);
            } else {
                dec(&mut self.inbound_active, 1);
            }
            if s.awaiting_ack {
                s.awaiting_ack = false;
                dec(&mut self.outbound_unacked, 1);
            }
            dec(&mut self.window_budget, s.window_max as usize);
            self.memory.shrink(s.window_max as usize);
            if self.open_waiting {
                self.open_waiting = false;
                self.events.push_back(Event::OutboundAvailable);
            }
        }
        if s.finished && s.detached {
            self.streams.remove(&id);
        }
    }

    // ------------------------------------------------------------------ closing

    /// Closes the connection: GoAway (normal) is queued, every stream operation fails from
    /// now on (buffered data stays readable). Flush with
    /// [`poll_transmit`](Connection::poll_transmit), then close the socket.
    pub fn close(&mut self) {
        if self.closed.is_some() {
            return;
        }
        self.emit_control(Header::go_away(GoAwayCode::Normal));
        self.goaway_sent = true;
        tracing::debug!(conn = self.id, "closing: GoAway sent");
        self.set_closed(YamuxError::ConnectionClosed);
    }

    /// Closes the connection because of `err`, telling the remote with GoAway when the remote
    /// violated the protocol.
    fn fail(&mut self, err: YamuxError) {
        if self.closed.is_some() {
            return;
        }
        if err.is_protocol_violation() {
            tracing::warn!(conn = self.id, error = %err, "protocol violation: sending GoAway");
            self.emit_control(Header::go_away(GoAwayCode::ProtocolError));
            self.goaway_sent = true;
        } else {
            tracing::debug!(conn = self.id, error = %err, "connection failed");
        }
        self.set_closed(err);
    }

    fn set_closed(&mut self, reason: YamuxError) {
        self.closed = Some(reason);
        // Streams nobody accepted can never be used now.
        while let Some(id) = self.pending_accept.pop_front() {
            if let Some(s) = self.streams.get_mut(&id) {
                s.detached = true;
            }
        }
        self.flag_queue.clear();
        self.ack_queue.clear();
        for s in self.streams.values_mut() {
            s.read_blocked = false;
            s.write_blocked = false;
            s.waiting_for_buffer = false;
        }
        self.buffer_waiters.clear();
        self.events.push_back(Event::Closed);
    }
}

fn wake_both(s: &mut StreamState, id: StreamId, events: &mut VecDeque<Event>) {
    if s.read_blocked {
        s.read_blocked = false;
        events.push_back(Event::Readable(id));
    }
    if s.write_blocked || s.waiting_for_buffer {
        s.write_blocked = false;
        s.waiting_for_buffer = false;
        events.push_back(Event::Writable(id));
    }
}

#[cfg(test)]
mod tests;
