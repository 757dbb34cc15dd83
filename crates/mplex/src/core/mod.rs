//! The core layer: the sans-IO mplex state machine, bytes in, frames and events out; no
//! socket, no task, no clock.
//!
//! A [`Session`] is fed the bytes read from the connection with
//! [`handle_input`](Session::handle_input), hands out the bytes to write with
//! [`poll_transmit`](Session::poll_transmit), and reports what the application must learn
//! about (a stream opened, data arrived, a stream was reset, room in the send buffer) through
//! [`poll_event`](Session::poll_event). Stream operations ([`open_stream`](Session::open_stream),
//! [`accept_stream`](Session::accept_stream), [`write`](Session::write),
//! [`read`](Session::read), [`close_stream`](Session::close_stream),
//! [`reset_stream`](Session::reset_stream)) act on the state directly and queue frames.
//!
//! mplex has no flow control, so receive memory is where the remote can hurt us. Each stream
//! has a share of it (`max_stream_buffer`) and the connection a cap (`max_connection_buffer`).
//! At its share, a stream whose reader is alive (read within the reader grace) holds input
//! until the reader makes room: the spec's back-pressure, brief for a reader that reads. The
//! stream of an idle reader goes past its share instead, borrowing from the connection so the
//! other streams keep flowing; it is reset when its reader reads nothing for the stall
//! timeout, or as soon as that memory is needed (the idle stream furthest over its share goes
//! first). Input waits for memory only when no idle stream is past its share, for at most the
//! stall timeout.
//!
//! Both peers number their streams independently, so a stream is known by its number *and*
//! by which side opened it ([`StreamId`]): a frame with an Initiator flag (or NewStream)
//! names a stream the remote opened, one with a Receiver flag names a stream we opened.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod recv_buffer;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use lp2p_core::{MemoryAccount, Role, UnlimitedMemory};

use crate::config::MplexConfig;
use crate::error::MplexError;
use crate::id::StreamId;
use crate::wire::{Flag, Header, Kind, MAX_HEADER_LEN, MAX_STREAM_NUMBER, encode_frame};
use recv_buffer::{ChunkPool, RecvBuffer};

#[cfg(test)]
mod tests;

/// What the application must learn about: the shared shell's event vocabulary over mplex
/// stream ids.
///
/// - `InboundStream`: the remote opened a stream; [`Session::accept_stream`] returns it.
/// - `Readable(id)`: data, the remote's Close or a reset arrived for the stream: a reader
///   that found nothing can read again.
/// - `Writable(id)`: room opened in the send buffer (or the stream was reset): a writer that
///   was refused can write again.
/// - `Closed`: the session closed; every stream operation now fails or returns what is left.
///
/// (`OutboundAvailable` is never raised: opening a stream never has to wait.)
pub type Event = lp2p_muxer_shell::Event<StreamId>;

/// Counters of what the session dropped or refused, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inbound streams reset on arrival because the stream limit was reached.
    pub streams_refused: u64,
    /// Times a stream's unread data went past its share of receive memory (its reader lagged)
    /// and the connection lent it memory instead of pausing.
    pub streams_over_share: u64,
    /// Streams reset while over their share: their reader read nothing for the stall timeout,
    /// or the connection's memory was needed for a stream within its share.
    pub streams_overflowed: u64,
    /// Streams reset because the connection's receive memory stayed full for the stall
    /// timeout while every stream was within its share (the stream holding the most unread
    /// data goes).
    pub streams_reset_for_memory: u64,
    /// Streams reset because the remote sent data after closing its side.
    pub streams_violated: u64,
    /// Frames (other than NewStream) for streams this session does not know.
    pub frames_for_unknown_streams: u64,
    /// Payload bytes received and dropped (unknown, reset or released streams, names).
    pub bytes_discarded: u64,
    /// Times reading paused to wait for readers (the connection's receive memory was full
    /// and every stream within its share).
    pub input_pauses: u64,
}

#[derive(Debug, Default)]
struct StreamRecord {
    buffer: RecvBuffer,
    /// We sent Close (or must not write any more).
    send_closed: bool,
    /// The remote sent Close.
    recv_closed: bool,
    /// Reset by either side: reads and writes fail.
    reset: bool,
    /// The application dropped its handle: discard data, forget the stream once done.
    released: bool,
    /// Counts toward the open-stream limit of its direction.
    counted: bool,
    /// Opened by the remote and waiting in the accept queue.
    queued: bool,
    /// A write was refused for lack of room in the send buffer: raise `Writable` on room.
    write_blocked: bool,
    /// Over its share of receive memory: reset unless its reader reads before this.
    stall_deadline: Option<Instant>,
    /// The reader's last sign of life: its last read, or, before any, the arrival of the
    /// stream's first data (a new reader gets the grace to start reading).
    alive_at: Option<Instant>,
}

impl StreamRecord {
    fn is_done(&self) -> bool {
        self.reset || (self.send_closed && self.recv_closed)
    }

    fn accepts_data(&self) -> bool {
        !self.reset && !self.released && !self.recv_closed
    }
}

/// Where the input parser is.
#[derive(Debug, Clone, Copy)]
enum ReadState {
    /// Collecting a frame header; `buf[..len]` holds a partial one split across inputs.
    Header {
        buf: [u8; MAX_HEADER_LEN],
        len: usize,
    },
    /// A Message header waiting, until `deadline` at most: for its stream's live reader to
    /// make room within the stream's share, or for connection receive memory. At `recheck`
    /// the wait is looked at again (`retry`): a reader idle since then no longer holds input.
    Blocked {
        header: Header,
        deadline: Instant,
        recheck: Instant,
        retry: bool,
    },
    /// Inside a frame's payload: `remaining` bytes go to `target` (or are dropped).
    Payload {
        target: Option<StreamId>,
        remaining: usize,
        /// Chunks reserved for this payload and not yet taken.
        reservation: usize,
    },
}

impl ReadState {
    const IDLE: ReadState = ReadState::Header {
        buf: [0; MAX_HEADER_LEN],
        len: 0,
    };

    fn discard(remaining: usize) -> ReadState {
        if remaining == 0 {
            ReadState::IDLE
        } else {
            ReadState::Payload {
                target: None,
                remaining,
                reservation: 0,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    /// Closed locally or by the remote at a frame boundary.
    Closed,
    /// Ended by a fatal error.
    Failed,
}

/// The mplex state machine of one connection.
///
/// ```
/// use std::time::Instant;
/// use lp2p_core::Role;
/// use lp2p_mplex::{Event, MplexConfig, Session};
///
/// let mut dialer = Session::new(Role::Initiator, MplexConfig::default());
/// let mut listener = Session::new(Role::Responder, MplexConfig::default());
///
/// let id = dialer.open_stream()?;
/// dialer.write(id, b"hello")?;
/// let mut wire = Vec::new();
/// dialer.poll_transmit(&mut wire);
///
/// listener.handle_input(&wire, Instant::now())?;
/// assert_eq!(listener.poll_event(), Some(Event::InboundStream));
/// let remote_id = listener.accept_stream()?.expect("the dialer opened a stream");
/// let mut buf = [0u8; 16];
/// assert_eq!(listener.read(remote_id, &mut buf, Instant::now())?, Some(5));
/// assert_eq!(&buf[..5], b"hello");
/// # Ok::<(), lp2p_mplex::MplexError>(())
/// ```
#[derive(Debug)]
pub struct Session {
    config: MplexConfig,
    streams: HashMap<StreamId, StreamRecord>,
    next_number: u64,
    open_inbound: usize,
    open_outbound: usize,
    pool: ChunkPool,
    read_state: ReadState,
    send: Vec<u8>,
    /// Streams whose write waits for room in `send`.
    write_waiters: Vec<StreamId>,
    /// Streams the remote opened, not yet taken by [`accept_stream`](Session::accept_stream).
    accept_queue: VecDeque<StreamId>,
    /// Streams over their share of receive memory (each has a `stall_deadline`); may hold
    /// ids no longer over it, pruned as it is walked.
    overdrawn: Vec<StreamId>,
    events: VecDeque<Event>,
    status: Status,
    stats: Stats,
}

impl Session {
    /// A session for our side of a connection. `role` only decides how we number our
    /// streams: odd as the dialer (the spec's session initiator), even as the listener.
    pub fn new(role: Role, config: MplexConfig) -> Session {
        Session::with_memory(role, config, UnlimitedMemory::boxed())
    }

    /// A session whose receive chunks are also reserved from `memory` (see
    /// `lp2p_core::memory`) before a frame is taken in: when the account refuses, the session
    /// acts as at its own cap (idle streams past their share give way, or reading waits).
    pub fn with_memory(role: Role, config: MplexConfig, memory: Box<dyn MemoryAccount>) -> Session {
        Session {
            pool: ChunkPool::with_memory(config.max_connection_buffer(), memory),
            config,
            streams: HashMap::new(),
            next_number: u64::from(role.is_initiator()),
            open_inbound: 0,
            open_outbound: 0,
            read_state: ReadState::IDLE,
            send: Vec::new(),
            write_waiters: Vec::new(),
            accept_queue: VecDeque::new(),
            overdrawn: Vec::new(),
            events: VecDeque::new(),
            status: Status::Open,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MplexConfig {
        &self.config
    }

    /// What was dropped or refused so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the session has ended (closed by either side or by an error).
    pub fn is_closed(&self) -> bool {
        self.status != Status::Open
    }

    /// Streams open in either direction (not yet reset or closed both ways).
    pub fn num_streams(&self) -> usize {
        self.open_inbound.saturating_add(self.open_outbound)
    }

    /// Receive memory held by streams, in bytes (whole chunks).
    pub fn buffered_bytes(&self) -> usize {
        self.pool.bytes_in_use()
    }

    /// Receive memory allocated, in bytes: held by streams plus chunks kept for reuse.
    pub fn allocated_bytes(&self) -> usize {
        self.pool.bytes_allocated()
    }

    // ---------------------------------------------------------------- input

    /// Feeds bytes read from the connection and returns how many were consumed.
    ///
    /// All of `bytes` is consumed unless input is paused (see
    /// [`wants_input`](Session::wants_input)); the caller keeps the rest and offers it again
    /// once `wants_input` turns true. A partial frame header is kept inside the session.
    /// `now` dates a pause, which lasts at most the stall timeout (see
    /// [`poll_timeout`](Session::poll_timeout)).
    /// An error is fatal: the session is closed and the connection must be dropped.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<usize, MplexError> {
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        let mut rest = bytes;
        match self.consume(&mut rest, now) {
            Ok(()) => Ok(bytes.len().saturating_sub(rest.len())),
            Err(err) => {
                tracing::warn!(error = %err, "mplex protocol error; dropping the connection");
                self.end(Status::Failed);
                Err(err)
            }
        }
    }

    /// Tells the session the remote closed the connection. Fails with
    /// [`MplexError::TruncatedFrame`] when that cut a frame short. Either way the session is
    /// closed: streams read what they have, then EOF if the remote closed them, else an error.
    pub fn handle_eof(&mut self) -> Result<(), MplexError> {
        if self.status != Status::Open {
            return Ok(());
        }
        let mid_frame = match self.read_state {
            ReadState::Header { len, .. } => len > 0,
            ReadState::Blocked { .. } => true,
            ReadState::Payload { remaining, .. } => remaining > 0,
        };
        if mid_frame {
            tracing::debug!("connection ended in the middle of a frame");
            self.end(Status::Failed);
            Err(MplexError::TruncatedFrame)
        } else {
            self.end(Status::Closed);
            Ok(())
        }
    }

    /// Reading or writing the connection failed: the session is closed. Streams read what
    /// they have, then fail.
    pub fn handle_io_error(&mut self, err: &std::io::Error) {
        if self.status == Status::Open {
            tracing::debug!(error = %err, "the connection failed");
            self.end(Status::Failed);
        }
    }

    /// Leaves the open state. Streams the remote opened and nobody accepted are kept after a
    /// clean end (their data was received in full and may still be read), dropped otherwise.
    fn end(&mut self, status: Status) {
        if self.status != Status::Open {
            return;
        }
        self.status = status;
        if status == Status::Failed {
            self.drop_accept_queue();
        }
        self.events.push_back(Event::Closed);
    }

    fn drop_accept_queue(&mut self) {
        while let Some(id) = self.accept_queue.pop_front() {
            self.forget(id);
        }
    }

    /// Whether the session will consume input now. False once closed, while a frame waits
    /// for connection receive memory (until a read makes room or the stall timeout passes),
    /// and while too many bytes wait to be sent (until
    /// [`poll_transmit`](Session::poll_transmit) takes them).
    pub fn wants_input(&self) -> bool {
        if self.status != Status::Open || self.send.len() >= self.config.input_pause_threshold() {
            return false;
        }
        match self.read_state {
            ReadState::Blocked { retry: true, .. } => true,
            ReadState::Blocked { header, .. } => self.admission_possible(header),
            _ => true,
        }
    }

    /// When [`handle_timeout`](Session::handle_timeout) must be called next: the end of the
    /// current input pause, or the stall deadline of a stream over its share, whichever
    /// comes first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.status != Status::Open {
            return None;
        }
        let pause = match self.read_state {
            ReadState::Blocked {
                deadline,
                retry: true,
                ..
            } => Some(deadline),
            ReadState::Blocked {
                deadline, recheck, ..
            } => Some(deadline.min(recheck)),
            _ => None,
        };
        self.overdrawn
            .iter()
            .filter_map(|id| self.streams.get(id).and_then(|rec| rec.stall_deadline))
            .chain(pause)
            .min()
    }

    /// Lets time pass.
    ///
    /// A stream over its share of receive memory whose reader read nothing for the stall
    /// timeout is reset. A paused input is looked at again once the reader grace has passed
    /// (an idle reader no longer holds it). When input has been paused for the stall timeout,
    /// the stream the waiting frame would take past its share is reset, or, when the
    /// connection's memory is what is full, the stream holding the most unread data; input
    /// then resumes (offer the kept bytes again).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.status != Status::Open {
            return;
        }
        self.expire_overdrafts(now);
        let ReadState::Blocked {
            header,
            deadline,
            recheck,
            retry,
        } = self.read_state
        else {
            return;
        };
        if now < deadline {
            if now >= recheck && !retry {
                self.read_state = ReadState::Blocked {
                    header,
                    deadline,
                    recheck,
                    retry: true,
                };
            }
            return;
        }
        let id = StreamId::new(header.stream, !header.flag.sent_by_opener());
        let Some(rec) = self.streams.get(&id).filter(|rec| rec.accepts_data()) else {
            // The stream went away meanwhile: the frame is dropped on the next input.
            return;
        };
        if rec.buffer.len().saturating_add(header.length) > self.config.max_stream_buffer() {
            self.overflow(id, "stream's reader made no room for the stall timeout");
            self.discard(header.length);
            return;
        }
        let victim = self
            .streams
            .iter()
            .filter(|(_, rec)| !rec.buffer.is_empty())
            .max_by_key(|(_, rec)| rec.buffer.len())
            .map(|(id, _)| *id);
        // With no stream holding memory the frame would fit, so this is a safety net: reset
        // the waiting frame's own stream rather than wait forever.
        let victim = victim.unwrap_or(id);
        self.stats.streams_reset_for_memory = self.stats.streams_reset_for_memory.saturating_add(1);
        tracing::debug!(
            stream = %victim,
            buffered = self.pool.bytes_in_use(),
            limit = self.config.max_connection_buffer(),
            "connection receive memory stayed full; resetting the biggest stream"
        );
        self.reset_by_session(victim);
        // Wait again (another stall timeout at most) if that did not make enough room.
        self.block(
            header,
            now,
            now.checked_add(self.config.stall_timeout()).unwrap_or(now),
        );
    }

    /// Input waits with `header` until `deadline` at most, looked at again after the reader
    /// grace.
    fn block(&mut self, header: Header, now: Instant, deadline: Instant) {
        self.read_state = ReadState::Blocked {
            header,
            deadline,
            recheck: now.checked_add(self.config.reader_grace()).unwrap_or(now),
            retry: false,
        };
    }

    /// Whether the stream's reader read within the reader grace.
    fn reader_alive(&self, rec: &StreamRecord, now: Instant) -> bool {
        rec.alive_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.reader_grace())
    }

    /// Resets the streams over their share whose reader read nothing for the stall timeout.
    fn expire_overdrafts(&mut self, now: Instant) {
        let expired: Vec<StreamId> = self
            .overdrawn
            .iter()
            .copied()
            .filter(|id| {
                self.streams
                    .get(id)
                    .and_then(|rec| rec.stall_deadline)
                    .is_some_and(|deadline| now >= deadline)
            })
            .collect();
        for id in expired {
            self.overflow(
                id,
                "stream over its receive share and not read for the stall timeout",
            );
        }
        self.prune_overdrawn();
    }

    /// Drops the ids of streams no longer over their share from `overdrawn`.
    fn prune_overdrawn(&mut self) {
        let streams = &self.streams;
        self.overdrawn.retain(|id| {
            streams
                .get(id)
                .is_some_and(|rec| rec.stall_deadline.is_some())
        });
    }

    /// Resets a stream that took more than its share of receive memory.
    fn overflow(&mut self, id: StreamId, why: &'static str) {
        self.stats.streams_overflowed = self.stats.streams_overflowed.saturating_add(1);
        tracing::debug!(
            stream = %id,
            buffered = self.streams.get(&id).map_or(0, |rec| rec.buffer.len()),
            share = self.config.max_stream_buffer(),
            "{why}; resetting it"
        );
        self.reset_by_session(id);
    }

    fn consume(&mut self, input: &mut &[u8], now: Instant) -> Result<(), MplexError> {
        loop {
            if self.send.len() >= self.config.input_pause_threshold() {
                return Ok(());
            }
            match self.read_state {
                ReadState::Header { mut buf, len } => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let Some(header) = self.take_header(&mut buf, len, input)? else {
                        return Ok(());
                    };
                    self.on_header(header, now)?;
                }
                ReadState::Blocked {
                    header, deadline, ..
                } => {
                    if !self.admit(header, now, deadline) {
                        return Ok(());
                    }
                }
                ReadState::Payload {
                    target,
                    remaining,
                    mut reservation,
                } => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = remaining.min(input.len());
                    let (chunk, later) = input.split_at(n);
                    *input = later;
                    let target = self.deliver(target, chunk, &mut reservation, now);
                    let remaining = remaining.saturating_sub(n);
                    if remaining == 0 {
                        self.pool.unreserve(reservation);
                        self.read_state = ReadState::IDLE;
                    } else {
                        self.read_state = ReadState::Payload {
                            target,
                            remaining,
                            reservation,
                        };
                    }
                }
            }
        }
    }

    /// Completes a header from the stashed bytes and `input`, consuming what it uses. Returns
    /// `None` (with everything stashed) when `input` ends inside the header.
    fn take_header(
        &mut self,
        buf: &mut [u8; MAX_HEADER_LEN],
        len: usize,
        input: &mut &[u8],
    ) -> Result<Option<Header>, MplexError> {
        let max = self.config.max_message_size();
        if len == 0 {
            // The common case: the header lies whole in the input, parse it in place.
            if let Some((header, used)) = Header::parse(input, max)? {
                *input = input.get(used..).unwrap_or_default();
                return Ok(Some(header));
            }
            // An incomplete header is shorter than MAX_HEADER_LEN (a longer one would be a
            // complete header or an invalid varint), so it fits the stash.
            let n = input.len().min(MAX_HEADER_LEN);
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), input.get(..n)) {
                dst.copy_from_slice(src);
            }
            *input = input.get(n..).unwrap_or_default();
            self.read_state = ReadState::Header { buf: *buf, len: n };
            return Ok(None);
        }
        let take = MAX_HEADER_LEN.saturating_sub(len).min(input.len());
        let end = len.saturating_add(take);
        if let (Some(dst), Some(src)) = (buf.get_mut(len..end), input.get(..take)) {
            dst.copy_from_slice(src);
        }
        if let Some((header, used)) = Header::parse(buf.get(..end).unwrap_or_default(), max)? {
            // `used > len`: the stash alone did not hold a whole header.
            let from_input = used.saturating_sub(len);
            *input = input.get(from_input..).unwrap_or_default();
            self.read_state = ReadState::IDLE;
            Ok(Some(header))
        } else {
            *input = input.get(take..).unwrap_or_default();
            self.read_state = ReadState::Header {
                buf: *buf,
                len: end,
            };
            Ok(None)
        }
    }

    fn on_header(&mut self, header: Header, now: Instant) -> Result<(), MplexError> {
        let id = StreamId::new(header.stream, !header.flag.sent_by_opener());
        let kind = header.flag.kind();
        tracing::trace!(stream = %id, flag = %header.flag, len = header.length, "frame");
        match kind {
            Kind::NewStream => {
                if self.streams.contains_key(&id) {
                    return Err(MplexError::DuplicateStream(header.stream));
                }
                if self.open_inbound >= self.config.max_streams() {
                    self.stats.streams_refused = self.stats.streams_refused.saturating_add(1);
                    tracing::debug!(
                        stream = %id,
                        limit = self.config.max_streams(),
                        "inbound stream over the limit; resetting it"
                    );
                    self.queue_frame(id, Kind::Reset, &[]);
                } else {
                    self.streams.insert(
                        id,
                        StreamRecord {
                            counted: true,
                            queued: true,
                            ..StreamRecord::default()
                        },
                    );
                    self.open_inbound = self.open_inbound.saturating_add(1);
                    self.accept_queue.push_back(id);
                    self.events.push_back(Event::InboundStream);
                }
                // The name is for debugging only.
                self.discard(header.length);
            }
            Kind::Message => {
                let deadline = now.checked_add(self.config.stall_timeout()).unwrap_or(now);
                if !self.admit(header, now, deadline) {
                    self.stats.input_pauses = self.stats.input_pauses.saturating_add(1);
                    tracing::debug!(
                        stream = %id,
                        buffered = self.pool.bytes_in_use(),
                        "connection receive memory full; pausing input until readers make room"
                    );
                }
            }
            Kind::Close => {
                match self.streams.get_mut(&id) {
                    Some(rec) => {
                        if !rec.recv_closed && !rec.reset {
                            rec.recv_closed = true;
                            if !rec.released {
                                self.events.push_back(Event::Readable(id));
                            }
                        }
                        self.settle(id);
                    }
                    None => self.count_unknown(id, header.flag),
                }
                self.discard(header.length);
            }
            Kind::Reset => {
                match self.streams.get_mut(&id) {
                    Some(rec) => {
                        if !rec.reset {
                            rec.reset = true;
                            rec.buffer.clear(&mut self.pool);
                            rec.stall_deadline = None;
                            self.after_reset(id);
                        }
                        self.settle(id);
                    }
                    None => self.count_unknown(id, header.flag),
                }
                self.discard(header.length);
            }
        }
        Ok(())
    }

    /// Decides where a Message payload goes. Returns false (and leaves the header waiting
    /// until `deadline`) when it must wait for receive memory.
    ///
    /// A frame that fits the connection's memory is taken, even past its stream's share (the
    /// stream then has until the stall timeout to be read from). When it does not fit,
    /// streams over their share are reset to make room, the one furthest over first (the
    /// frame's own stream among them, counting this frame); only when every stream is
    /// within its share does input pause.
    fn admit(&mut self, header: Header, now: Instant, deadline: Instant) -> bool {
        let id = StreamId::new(header.stream, !header.flag.sent_by_opener());
        let len = header.length;
        let Some(rec) = self.streams.get_mut(&id) else {
            self.count_unknown(id, header.flag);
            self.discard(len);
            return true;
        };
        if rec.reset || rec.released {
            self.discard(len);
            return true;
        }
        if rec.recv_closed {
            self.stats.streams_violated = self.stats.streams_violated.saturating_add(1);
            tracing::debug!(stream = %id, "data after the remote closed the stream; resetting it");
            self.reset_by_session(id);
            self.discard(len);
            return true;
        }
        if len == 0 {
            self.read_state = ReadState::IDLE;
            return true;
        }
        let share = self.config.max_stream_buffer();
        if len > share.min(self.config.max_connection_buffer()) {
            // The frame alone is over a cap: no reader can make room for it.
            self.stats.streams_overflowed = self.stats.streams_overflowed.saturating_add(1);
            tracing::debug!(
                stream = %id,
                frame = len,
                limit = share,
                "frame bigger than the stream receive cap; resetting the stream"
            );
            self.reset_by_session(id);
            self.discard(len);
            return true;
        }
        let need = rec.buffer.chunks_needed(len);
        // How far past its share the stream would be with this frame.
        let overdraft = rec.buffer.len().saturating_add(len).saturating_sub(share);
        let alive = rec
            .alive_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.reader_grace());
        if overdraft > 0 && alive {
            // A live reader makes room soon: wait for it (the spec's back-pressure) rather
            // than let its stream grow.
            self.block(header, now, deadline);
            return false;
        }
        loop {
            if self.pool.try_reserve(need) {
                self.read_state = ReadState::Payload {
                    target: Some(id),
                    remaining: len,
                    reservation: need,
                };
                return true;
            }
            // No room: streams of idle readers past their share give way, the furthest past
            // it first (this frame's own stream among them, counting this frame).
            match self.furthest_over_share(now, id) {
                Some((victim, over)) if over >= overdraft => {
                    self.overflow(
                        victim,
                        "connection receive memory needed; idle stream past its share",
                    );
                }
                _ if overdraft > 0 => {
                    self.overflow(
                        id,
                        "connection receive memory full; idle stream past its share",
                    );
                    self.discard(len);
                    return true;
                }
                _ => {
                    self.block(header, now, deadline);
                    return false;
                }
            }
        }
    }

    /// The stream of an idle reader (other than `except`) furthest over its share of receive
    /// memory, and by how much.
    fn furthest_over_share(&self, now: Instant, except: StreamId) -> Option<(StreamId, usize)> {
        let share = self.config.max_stream_buffer();
        self.overdrawn
            .iter()
            .filter(|id| **id != except)
            .filter_map(|id| {
                let rec = self.streams.get(id)?;
                rec.stall_deadline?;
                if self.reader_alive(rec, now) {
                    return None;
                }
                let over = rec
                    .buffer
                    .len()
                    .checked_sub(share)
                    .filter(|over| *over > 0)?;
                Some((*id, over))
            })
            .max_by_key(|(_, over)| *over)
    }

    /// Whether a waiting `header` may go through: its stream's reader made room within the
    /// share, and connection memory has room. (An idle reader's turn comes at the recheck.)
    fn admission_possible(&self, header: Header) -> bool {
        let id = StreamId::new(header.stream, !header.flag.sent_by_opener());
        match self.streams.get(&id) {
            Some(rec) if rec.accepts_data() => {
                rec.buffer.len().saturating_add(header.length) <= self.config.max_stream_buffer()
                    && self
                        .pool
                        .can_reserve(rec.buffer.chunks_needed(header.length))
            }
            _ => true,
        }
    }

    /// Appends payload bytes to the target stream; returns the target for the rest of the
    /// payload (`None` once the stream stopped taking data).
    fn deliver(
        &mut self,
        target: Option<StreamId>,
        bytes: &[u8],
        reservation: &mut usize,
        now: Instant,
    ) -> Option<StreamId> {
        if let Some(id) = target
            && let Some(rec) = self.streams.get_mut(&id)
            && rec.accepts_data()
        {
            let was_empty = rec.buffer.is_empty();
            rec.alive_at.get_or_insert(now);
            rec.buffer.push(bytes, &mut self.pool, reservation);
            if was_empty {
                self.events.push_back(Event::Readable(id));
            }
            if rec.stall_deadline.is_none() && rec.buffer.len() > self.config.max_stream_buffer() {
                // Its reader lags: lend it connection memory for a while.
                rec.stall_deadline =
                    Some(now.checked_add(self.config.stall_timeout()).unwrap_or(now));
                self.stats.streams_over_share = self.stats.streams_over_share.saturating_add(1);
                tracing::debug!(
                    stream = %id,
                    buffered = rec.buffer.len(),
                    share = self.config.max_stream_buffer(),
                    "stream past its receive share; lending it connection memory"
                );
                self.prune_overdrawn();
                self.overdrawn.push(id);
            }
            return Some(id);
        }
        // The stream was reset or released mid-frame: drop the rest of the payload.
        self.pool.unreserve(*reservation);
        *reservation = 0;
        self.stats.bytes_discarded = self
            .stats
            .bytes_discarded
            .saturating_add(bytes.len() as u64);
        None
    }

    fn discard(&mut self, len: usize) {
        self.read_state = ReadState::discard(len);
    }

    fn count_unknown(&mut self, id: StreamId, flag: Flag) {
        self.stats.frames_for_unknown_streams =
            self.stats.frames_for_unknown_streams.saturating_add(1);
        tracing::trace!(stream = %id, %flag, "frame for an unknown stream; ignored");
    }

    // ---------------------------------------------------------------- output and events

    /// Moves the bytes waiting to be sent into `out` (by swapping buffers when `out` is
    /// empty, so steady-state sending allocates nothing). Returns whether there were any.
    ///
    /// Writers that were refused for lack of room get [`Event::Writable`].
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.send.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.send);
        } else {
            out.extend_from_slice(&self.send);
            self.send.clear();
        }
        for id in self.write_waiters.drain(..) {
            if let Some(rec) = self.streams.get_mut(&id)
                && rec.write_blocked
            {
                rec.write_blocked = false;
                self.events.push_back(Event::Writable(id));
            }
        }
        true
    }

    /// Whether bytes wait to be sent.
    pub fn has_transmit(&self) -> bool {
        !self.send.is_empty()
    }

    /// Whether a [`write`](Session::write) would take data now (the send buffer is below
    /// its cap).
    pub fn can_write(&self) -> bool {
        self.send.len() < self.config.max_send_buffer()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn queue_frame(&mut self, id: StreamId, kind: Kind, payload: &[u8]) {
        let flag = Flag::new(kind, id.opened_locally());
        encode_frame(id.number(), flag, payload, &mut self.send);
    }

    // ---------------------------------------------------------------- streams

    /// Opens a stream, named after its number as js-libp2p does (names are for debugging).
    pub fn open_stream(&mut self) -> Result<StreamId, MplexError> {
        let mut digits = [0u8; 20];
        let name_len = decimal(self.next_number, &mut digits);
        let name = digits.get(..name_len).unwrap_or_default();
        self.open_named_stream(name)
    }

    /// Opens a stream with the given name (any bytes; the spec calls it UTF-8 and says it is
    /// for interfaces only).
    pub fn open_named_stream(&mut self, name: &[u8]) -> Result<StreamId, MplexError> {
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        if self.open_outbound >= self.config.max_streams() {
            return Err(MplexError::TooManyStreams(self.config.max_streams()));
        }
        let number = self.next_number;
        if number > MAX_STREAM_NUMBER {
            return Err(MplexError::StreamIdsExhausted);
        }
        // One past the maximum means exhausted, on the next call.
        self.next_number = number.saturating_add(2);
        let name = name
            .get(..name.len().min(self.config.max_message_size()))
            .unwrap_or_default();
        let id = StreamId::new(number, true);
        self.streams.insert(
            id,
            StreamRecord {
                counted: true,
                ..StreamRecord::default()
            },
        );
        self.open_outbound = self.open_outbound.saturating_add(1);
        self.queue_frame(id, Kind::NewStream, name);
        tracing::trace!(stream = %id, "opened stream");
        Ok(id)
    }

    /// Takes the next stream the remote opened, if one waits (else wait for
    /// [`Event::InboundStream`]). Fails once the session is closed and none waits: after a
    /// clean end the streams the remote opened before it can still be taken and read; after
    /// a local close or an error they are gone.
    pub fn accept_stream(&mut self) -> Result<Option<StreamId>, MplexError> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(rec) = self.streams.get_mut(&id) else {
                continue;
            };
            rec.queued = false;
            if rec.reset {
                // Reset locally before anyone took it: nobody will.
                self.release_stream(id);
                continue;
            }
            return Ok(Some(id));
        }
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        Ok(None)
    }

    /// Streams the remote opened that wait for [`accept_stream`](Session::accept_stream).
    pub fn pending_accept(&self) -> usize {
        self.accept_queue.len()
    }
    /// Queues `data` for the stream, split into frames of the configured split size.
    ///
    /// Returns `Ok(Some(n))` with the bytes taken (all of `data`, or as much as fits the
    /// send buffer plus one frame), or `Ok(None)` when the send buffer is full: retry after
    /// [`poll_transmit`](Session::poll_transmit). Fails once the stream is reset or closed
    /// for writing, or the session is closed.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<Option<usize>, MplexError> {
        let rec = self.streams.get(&id).ok_or(MplexError::UnknownStream(id))?;
        if rec.reset {
            return Err(MplexError::StreamReset(id));
        }
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        if rec.send_closed {
            return Err(MplexError::WriteClosed(id));
        }
        if data.is_empty() {
            return Ok(Some(0));
        }
        if !self.can_write() {
            if let Some(rec) = self.streams.get_mut(&id)
                && !rec.write_blocked
            {
                rec.write_blocked = true;
                self.write_waiters.push(id);
            }
            return Ok(None);
        }
        let flag = Flag::new(Kind::Message, id.opened_locally());
        let split = self.config.split_size();
        let mut rest = data;
        while !rest.is_empty() && self.can_write() {
            let (frame, later) = rest.split_at(split.min(rest.len()));
            encode_frame(id.number(), flag, frame, &mut self.send);
            rest = later;
        }
        Ok(Some(data.len().saturating_sub(rest.len())))
    }

    /// Reads received bytes of the stream into `buf`.
    ///
    /// Returns `Ok(Some(n))` with `n > 0` bytes read, `Ok(Some(0))` at the end of the stream
    /// (the remote closed it and everything was read; or `buf` is empty), and `Ok(None)` when
    /// nothing is there yet. Fails once the stream is reset, or when the session closed
    /// before the remote closed the stream. `now` dates the read: a stream over its share of
    /// receive memory has a stall timeout from its last read.
    pub fn read(
        &mut self,
        id: StreamId,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, MplexError> {
        let share = self.config.max_stream_buffer();
        let stall = self.config.stall_timeout();
        let rec = self
            .streams
            .get_mut(&id)
            .ok_or(MplexError::UnknownStream(id))?;
        if rec.reset {
            return Err(MplexError::StreamReset(id));
        }
        if buf.is_empty() {
            return Ok(Some(0));
        }
        if !rec.buffer.is_empty() {
            let n = rec.buffer.read(buf, &mut self.pool);
            rec.alive_at = Some(now);
            if rec.stall_deadline.is_some() {
                rec.stall_deadline = if rec.buffer.len() > share {
                    // Still over its share, but its reader is alive: a new stall timeout.
                    Some(now.checked_add(stall).unwrap_or(now))
                } else {
                    None
                };
            }
            return Ok(Some(n));
        }
        if rec.recv_closed {
            return Ok(Some(0));
        }
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        Ok(None)
    }

    /// Half-closes the stream: sends Close; the remote reads EOF after our data. Closing
    /// twice is fine; closing a reset stream fails.
    pub fn close_stream(&mut self, id: StreamId) -> Result<(), MplexError> {
        let rec = self.streams.get(&id).ok_or(MplexError::UnknownStream(id))?;
        if rec.reset {
            return Err(MplexError::StreamReset(id));
        }
        if rec.send_closed {
            return Ok(());
        }
        if self.status != Status::Open {
            return Err(MplexError::ConnectionClosed);
        }
        self.queue_frame(id, Kind::Close, &[]);
        if let Some(rec) = self.streams.get_mut(&id) {
            rec.send_closed = true;
        }
        self.settle(id);
        Ok(())
    }

    /// Resets the stream: both directions fail from now on, unread data is dropped, and the
    /// remote is told with a Reset frame (unless the stream was already finished both ways).
    pub fn reset_stream(&mut self, id: StreamId) -> Result<(), MplexError> {
        let rec = self
            .streams
            .get_mut(&id)
            .ok_or(MplexError::UnknownStream(id))?;
        if rec.reset {
            return Ok(());
        }
        let finished = rec.send_closed && rec.recv_closed;
        rec.reset = true;
        rec.buffer.clear(&mut self.pool);
        rec.stall_deadline = None;
        if !finished && self.status == Status::Open {
            self.queue_frame(id, Kind::Reset, &[]);
        }
        self.settle(id);
        Ok(())
    }

    /// Whether what was written to the stream can still be delivered: fails once the stream
    /// is reset.
    pub fn flush_stream(&self, id: StreamId) -> Result<(), MplexError> {
        if self.is_reset(id) {
            return Err(MplexError::StreamReset(id));
        }
        Ok(())
    }

    /// The application dropped its handle to the stream: half-close it if still writable
    /// (data already written is still delivered), drop unread data, discard whatever
    /// arrives later, and forget the stream once both sides are done with it.
    pub fn release_stream(&mut self, id: StreamId) {
        let Some(rec) = self.streams.get_mut(&id) else {
            return;
        };
        if rec.released {
            return;
        }
        rec.released = true;
        rec.buffer.clear(&mut self.pool);
        rec.stall_deadline = None;
        rec.write_blocked = false;
        let close = !rec.reset && !rec.send_closed;
        if self.status != Status::Open {
            // Nothing more will happen on this stream.
            self.forget(id);
            return;
        }
        if close {
            self.queue_frame(id, Kind::Close, &[]);
            if let Some(rec) = self.streams.get_mut(&id) {
                rec.send_closed = true;
            }
        }
        self.settle(id);
    }

    /// Closes the session locally. Frames already queued stay queued (flush them, then close
    /// the connection); every stream operation fails from now on, except reading what was
    /// already received. Streams the remote opened and nobody accepted are dropped.
    pub fn close(&mut self) {
        if self.status == Status::Open {
            self.drop_accept_queue();
            self.end(Status::Closed);
        }
    }

    /// Whether the stream was reset, by either side (false for unknown streams).
    pub fn is_reset(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|rec| rec.reset)
    }

    /// The ids of every stream the application still holds.
    pub fn stream_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams
            .iter()
            .filter(|(_, rec)| !rec.released)
            .map(|(id, _)| *id)
    }

    /// Resets a stream on the session's own initiative and tells the application.
    fn reset_by_session(&mut self, id: StreamId) {
        if self.streams.contains_key(&id) && self.reset_stream(id).is_ok() {
            self.after_reset(id);
        }
    }

    /// A stream was reset by the remote or by the session. Nobody took it yet: forget it (a
    /// peer that opens and resets streams in a loop must not grow the accept queue, and reset
    /// streams no longer count toward the limit). Otherwise its reader and writer learn it.
    fn after_reset(&mut self, id: StreamId) {
        let Some(rec) = self.streams.get(&id) else {
            return;
        };
        if rec.queued {
            self.accept_queue.retain(|queued| *queued != id);
            self.forget(id);
        } else if !rec.released {
            self.events.push_back(Event::Readable(id));
            self.events.push_back(Event::Writable(id));
        }
    }

    /// Updates the open-stream counts and forgets a released stream once it is done.
    fn settle(&mut self, id: StreamId) {
        let Some(rec) = self.streams.get_mut(&id) else {
            return;
        };
        if rec.counted && rec.is_done() {
            rec.counted = false;
            self.uncount(id);
        }
        if let Some(rec) = self.streams.get(&id)
            && rec.released
            && rec.is_done()
        {
            self.forget(id);
        }
    }

    fn forget(&mut self, id: StreamId) {
        if let Some(mut rec) = self.streams.remove(&id) {
            rec.buffer.clear(&mut self.pool);
            if rec.counted {
                self.uncount(id);
            }
        }
    }

    fn uncount(&mut self, id: StreamId) {
        if id.opened_locally() {
            self.open_outbound = self.open_outbound.saturating_sub(1);
        } else {
            self.open_inbound = self.open_inbound.saturating_sub(1);
        }
    }
}

/// Writes `n` in decimal into `out` and returns the number of digits.
fn decimal(mut n: u64, out: &mut [u8; 20]) -> usize {
    let mut tmp = [0u8; 20];
    let mut len = 0usize;
    loop {
        // `n % 10 < 10`: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        if let Some(slot) = tmp.get_mut(len) {
            *slot = b'0'.saturating_add(digit);
        }
        len = len.saturating_add(1);
        n /= 10;
        if n == 0 || len >= tmp.len() {
            break;
        }
    }
    for (dst, src) in out
        .iter_mut()
        .zip(tmp.get(..len).unwrap_or_default().iter().rev())
    {
        *dst = *src;
    }
    len
}
