//! The muxer-core trait: what the shell needs from a sans-IO stream muxer.

use std::fmt;
use std::hash::Hash;
use std::io;
use std::time::Instant;

/// Something the owner of a [`MuxerCore`] must react to, usually by waking a task.
///
/// A core raises each event after the call that made it true (input, a timeout, another
/// stream's operation). The shell may also wake a task that has nothing to do yet: every
/// waiter retries its operation and waits again if it still cannot proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event<Id> {
    /// A stream the remote opened is waiting: [`MuxerCore::accept_stream`] returns it.
    InboundStream,
    /// A read of this stream that found nothing may now return data, EOF or an error (data,
    /// the remote's half-close or a reset arrived).
    Readable(Id),
    /// A write to this stream that was refused may now go ahead or fail (window credit or room
    /// in the send buffer, or a reset).
    Writable(Id),
    /// [`MuxerCore::open_stream`] may succeed again (a backlog shrank, a stream ended).
    OutboundAvailable,
    /// The connection closed: every stream operation now fails or returns what is left.
    Closed,
}

/// The sans-IO state machine of one multiplexed connection, as the shell drives it.
///
/// A core owns no socket, spawns no task and reads no clock: the shell feeds it the bytes it
/// reads from the connection and `now` from its runtime, writes what it hands out, and turns
/// its [`Event`]s into wake-ups. Stream operations report "not now" as `Ok(None)` and raise
/// the matching event once a retry may succeed.
///
/// Implemented by `lp2p-yamux`'s `Connection` and `lp2p-mplex`'s `Session`; any other
/// muxer written as a sans-IO core gets the whole async side (one task per connection, stream
/// handles, write coalescing, back-pressure, graceful close) by implementing this trait and
/// calling [`ShellConnection::start`](crate::ShellConnection::start).
pub trait MuxerCore: Send + 'static {
    /// Names a stream of this connection.
    type StreamId: Copy + Eq + Hash + Unpin + fmt::Debug + fmt::Display + Send + Sync + 'static;
    /// The core's error: what failed, on which stream. It becomes the `std::io::Error` of a
    /// stream operation and the `lp2p_core::Error` of the connection traits.
    type Error: std::error::Error + Send + Sync + 'static + Into<io::Error> + Into<lp2p_core::Error>;

    /// The protocol id, for logs (e.g. `/yamux/1.0.0`).
    const PROTOCOL_ID: &'static str;

    // ------------------------------------------------------------------ the socket side

    /// Feeds bytes read from the connection; returns how many were consumed. A core may
    /// consume fewer (only while [`wants_input`](MuxerCore::wants_input) is false): the shell
    /// keeps the rest and offers it again once `wants_input` turns true. An error is fatal:
    /// the core is closed afterwards (and may have queued a last frame for the remote).
    fn handle_input(&mut self, input: &[u8], now: Instant) -> Result<usize, Self::Error>;

    /// Whether the shell should read (and feed) more input now. False once closed, and while
    /// the core applies back-pressure to the remote (its answers pile up unsent, or received
    /// data waits for readers).
    fn wants_input(&self) -> bool;

    /// How many bytes the next socket read should take at most, when it matters (for
    /// example: just the next header, so the body after it can be read with
    /// [`direct_input`](MuxerCore::direct_input)). `None`: as many as are available.
    fn input_limit(&self) -> Option<usize> {
        None
    }

    /// Where the next input bytes may be read straight from the socket, when they are the
    /// payload of a frame for a live stream: spare room in that stream's receive buffer.
    /// After reading `n` bytes into the start of it, the shell calls
    /// [`commit_direct_input`](MuxerCore::commit_direct_input). `None`: read into the shell's
    /// buffer and use [`handle_input`](MuxerCore::handle_input). Saves one copy of bulk data.
    fn direct_input(&mut self) -> Option<&mut [u8]> {
        None
    }

    /// `n` bytes were read into the start of the slice [`direct_input`](MuxerCore::direct_input)
    /// returned.
    fn commit_direct_input(&mut self, n: usize, now: Instant) {
        let _ = (n, now);
    }

    /// The remote closed the connection (the socket read EOF). The core closes, cleanly at a
    /// frame boundary or with an error otherwise.
    fn handle_eof(&mut self);

    /// Reading or writing the socket failed: the core closes with that error.
    fn handle_io_error(&mut self, err: io::Error);

    /// Moves the bytes ready to be sent into `out`; returns whether there were any.
    /// Appends when `out` is not empty (a core may swap buffers when it is, so steady-state
    /// sending copies nothing).
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool;

    /// Whether [`poll_transmit`](MuxerCore::poll_transmit) has something to give.
    fn has_transmit(&self) -> bool;

    /// When [`handle_timeout`](MuxerCore::handle_timeout) must be called next, if ever.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Time has passed (keep-alive pings, stall deadlines).
    fn handle_timeout(&mut self, now: Instant);

    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event<Self::StreamId>>;

    // ------------------------------------------------------------------ the connection

    /// Closes the connection locally: a last frame may be queued (flush it, then close the
    /// socket); every stream operation fails from now on, except reading what was received.
    fn close(&mut self);

    /// Whether the connection is closed (locally, by the remote, or by an error).
    fn is_closed(&self) -> bool;

    /// Streams open in either direction.
    fn num_streams(&self) -> usize;

    // ------------------------------------------------------------------ streams

    /// Opens a stream. `Ok(None)`: not now, wait for [`Event::OutboundAvailable`].
    fn open_stream(&mut self) -> Result<Option<Self::StreamId>, Self::Error>;

    /// Takes the next stream the remote opened. `Ok(None)`: none yet, wait for
    /// [`Event::InboundStream`]. Fails once the connection is closed.
    fn accept_stream(&mut self) -> Result<Option<Self::StreamId>, Self::Error>;

    /// Reads received bytes into `buf`: `Ok(Some(n))` with `n > 0` bytes, `Ok(Some(0))` at
    /// the end of the stream (or for an empty `buf`), `Ok(None)` when nothing is there yet
    /// (wait for [`Event::Readable`]).
    fn read(
        &mut self,
        id: Self::StreamId,
        buf: &mut [u8],
        now: Instant,
    ) -> Result<Option<usize>, Self::Error>;

    /// Queues as much of `data` as the core takes now: `Ok(Some(n))`, or `Ok(None)` when it
    /// takes nothing (wait for [`Event::Writable`]).
    fn write(&mut self, id: Self::StreamId, data: &[u8]) -> Result<Option<usize>, Self::Error>;

    /// Reports whether the stream can still deliver what was written (written data is
    /// already queued; nothing is waited for). The default says it can.
    fn flush_stream(&mut self, id: Self::StreamId) -> Result<(), Self::Error> {
        let _ = id;
        Ok(())
    }

    /// Half-closes the stream: the remote reads EOF after the data sent before.
    fn close_stream(&mut self, id: Self::StreamId) -> Result<(), Self::Error>;

    /// Aborts the stream in both directions.
    fn reset_stream(&mut self, id: Self::StreamId);

    /// The application dropped its handle: half-close the stream if it was not, drop unread
    /// data, discard (or refuse) what arrives later, forget the stream once it is done.
    fn drop_stream(&mut self, id: Self::StreamId);
}
