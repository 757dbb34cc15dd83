//! Limits and tunables of an mplex connection.

use std::time::Duration;

use lp2p_muxer_shell::ShellConfig;
pub use lp2p_muxer_shell::{DEFAULT_CLOSE_TIMEOUT, DEFAULT_READ_BUFFER_SIZE};

/// The protocol id negotiated with multistream-select. The spec does not write it down;
/// every implementation (go, js, rust, py) uses this one.
pub const PROTOCOL_ID: &str = "/mplex/6.7.0";

/// The largest Message payload we accept: 1 MiB. The spec leaves the limit "agreed upon out
/// of band"; go-mplex, js-mplex and rust-libp2p all use 1 MiB, so a bigger frame from a peer
/// is a protocol error and we never send a bigger one.
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// Default size of the frames our writes are split into: 64 KiB.
///
/// Why this value: per-frame work dominates small frames (the `codec` bench moves ~0.45 GiB/s
/// with 128-byte frames and ~4 GiB/s at 8 KiB and above), and past 8 KiB throughput over a
/// memory pipe is flat within measurement noise up to 256 KiB. Among those, 64 KiB: the
/// header (at most a dozen bytes) is lost in the payload; peers that buffer per frame count
/// rather than per byte (rust-libp2p holds 32 frames per stream) give a reader eight times
/// more slack than with 8 KiB frames before they block or reset; and it stays far below the
/// 1 MiB maximum, so streams writing at once interleave finely (one frame is half a
/// millisecond on a gigabit link).
pub const DEFAULT_SPLIT_SIZE: usize = 64 * 1024;

/// Default share of receive memory each stream is sure of: 4 MiB of data its reader has not
/// read yet.
///
/// mplex has no flow control, so a remote can always send more than we read. At its share,
/// input waits for a live reader (see [`DEFAULT_READER_GRACE`]); the stream of an idle reader
/// borrows from the connection's memory instead (so it stalls nobody else) until its reader
/// reads nothing for the stall timeout, or until the memory is needed: then the stream of an
/// idle reader furthest past its share is reset. 4 MiB is sixteen times a yamux stream's
/// initial window: a reader that keeps up at all rarely gets near it.
pub const DEFAULT_MAX_STREAM_BUFFER: usize = 4 * 1024 * 1024;

/// Default cap on the receive memory of the whole connection: 32 MiB.
///
/// Counted in the fixed-size chunks that hold received data, so it bounds real memory, not
/// just payload bytes. When it is reached, streams past their share are reset to make room;
/// if every stream is within its share, the connection stops reading from the socket until
/// readers catch up, and if none does within the stall timeout, the stream holding the most
/// unread data is reset. 32 MiB lets eight streams sit at their full share.
pub const DEFAULT_MAX_CONNECTION_BUFFER: usize = 32 * 1024 * 1024;

/// Default cap on concurrently open streams, counted separately for the streams each side
/// opened: 1024.
///
/// A stream costs little while idle (a map entry, no buffer), so this is about bounding
/// bookkeeping against a peer that opens streams and never closes them. rust-libp2p allows
/// 128 and go-yamux 1000; 1024 leaves room for hosts that multiplex many protocols. Inbound
/// streams over the cap are reset as they arrive; opening one more outbound stream fails.
pub const DEFAULT_MAX_STREAMS: usize = 1024;

/// Default cap on frames queued for the socket and not yet written: 256 KiB.
///
/// Writers wait once this much is queued. Large enough that many small writes from many
/// streams coalesce into one socket write, small enough that a stalled socket does not hold
/// much memory per connection.
pub const DEFAULT_MAX_SEND_BUFFER: usize = 256 * 1024;

/// Default time a reader counts as alive after it last read (or, before its first read, after
/// its stream's first data arrived): 100 ms.
///
/// A frame that would take a stream past its share of receive memory waits for a live
/// reader (the spec's back-pressure: input pauses until the reader makes room, which a
/// reader in a read loop does within microseconds), so a fast transfer to a live but slower
/// reader holds no more than the share. A reader idle for longer lets its stream borrow
/// from the connection's memory instead, so nothing else waits for it; such a stream is the
/// first reset when that memory runs short. 100 ms is long enough for a reader task on a
/// loaded machine to be scheduled, and short enough that other streams barely notice a
/// pause for a reader that has stopped.
pub const DEFAULT_READER_GRACE: Duration = Duration::from_millis(100);

/// Default time a lagging reader gets before its stream is reset: 5 s.
///
/// mplex has no flow control. A stream past its share of receive memory is reset when its
/// reader reads nothing for this long (each read starts the time again); when the
/// connection's memory is full with every stream within its share, input pauses (the spec's
/// first remedy) for at most this long before the stream holding the most unread data is
/// reset (the second remedy), as go-mplex does. Long enough for a reader task on a loaded
/// machine to be scheduled, so an honest fast transfer is never reset; short enough that a
/// stream nobody reads holds borrowed memory only briefly.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration of an mplex connection. Start from [`MplexConfig::default`] and adjust.
///
/// ```
/// use lp2p_mplex::MplexConfig;
/// let config = MplexConfig::default()
///     .with_max_streams(256)
///     .with_split_size(16 * 1024);
/// assert_eq!(config.max_streams(), 256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MplexConfig {
    max_message_size: usize,
    split_size: usize,
    max_stream_buffer: usize,
    max_connection_buffer: usize,
    max_streams: usize,
    max_send_buffer: usize,
    close_timeout: Duration,
    stall_timeout: Duration,
    reader_grace: Duration,
    read_buffer_size: usize,
}

impl Default for MplexConfig {
    fn default() -> Self {
        MplexConfig {
            max_message_size: MAX_MESSAGE_SIZE,
            split_size: DEFAULT_SPLIT_SIZE,
            max_stream_buffer: DEFAULT_MAX_STREAM_BUFFER,
            max_connection_buffer: DEFAULT_MAX_CONNECTION_BUFFER,
            max_streams: DEFAULT_MAX_STREAMS,
            max_send_buffer: DEFAULT_MAX_SEND_BUFFER,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            reader_grace: DEFAULT_READER_GRACE,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
        }
    }
}

impl MplexConfig {
    /// Sets the largest frame payload accepted from the remote (default and upper bound:
    /// [`MAX_MESSAGE_SIZE`]; at least 1 byte). A bigger frame is a protocol error that
    /// drops the connection.
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.clamp(1, MAX_MESSAGE_SIZE);
        self
    }

    /// Sets the size outgoing writes are split into (default [`DEFAULT_SPLIT_SIZE`]; between
    /// 1 byte and [`MAX_MESSAGE_SIZE`], since peers reject bigger frames).
    #[must_use]
    pub fn with_split_size(mut self, bytes: usize) -> Self {
        self.split_size = bytes.clamp(1, MAX_MESSAGE_SIZE);
        self
    }

    /// Sets each stream's share of receive memory (default [`DEFAULT_MAX_STREAM_BUFFER`]).
    /// Past it a stream borrows connection memory until its reader stalls for the stall
    /// timeout or the memory is needed; a frame alone bigger than it resets its stream.
    #[must_use]
    pub fn with_max_stream_buffer(mut self, bytes: usize) -> Self {
        self.max_stream_buffer = bytes;
        self
    }

    /// Sets the connection-wide receive memory cap (default
    /// [`DEFAULT_MAX_CONNECTION_BUFFER`]). Reaching it resets the streams furthest past their
    /// share, or, with every stream within its share, pauses reading from the socket; after
    /// the stall timeout the stream holding the most unread data is reset.
    #[must_use]
    pub fn with_max_connection_buffer(mut self, bytes: usize) -> Self {
        self.max_connection_buffer = bytes;
        self
    }

    /// Sets the cap on open streams per direction (default [`DEFAULT_MAX_STREAMS`]).
    #[must_use]
    pub fn with_max_streams(mut self, streams: usize) -> Self {
        self.max_streams = streams;
        self
    }

    /// Sets the cap on bytes queued for the socket before writers wait (default
    /// [`DEFAULT_MAX_SEND_BUFFER`]; at least 1 byte).
    #[must_use]
    pub fn with_max_send_buffer(mut self, bytes: usize) -> Self {
        self.max_send_buffer = bytes.max(1);
        self
    }

    /// Sets how long a local close may spend flushing queued frames (default
    /// [`DEFAULT_CLOSE_TIMEOUT`]).
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets how long a lagging reader gets before a stream is reset (default
    /// [`DEFAULT_STALL_TIMEOUT`]).
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets how long a reader counts as alive after it last read (default
    /// [`DEFAULT_READER_GRACE`]): input waits for a live reader at its stream's share, while
    /// the stream of a reader idle for longer borrows connection memory instead.
    #[must_use]
    pub fn with_reader_grace(mut self, grace: Duration) -> Self {
        self.reader_grace = grace;
        self
    }

    /// Sets how many bytes the connection task reads from the socket at once (default
    /// [`DEFAULT_READ_BUFFER_SIZE`], clamped to what the shell accepts).
    #[must_use]
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.clamp(
            lp2p_muxer_shell::MIN_READ_BUFFER_SIZE,
            lp2p_muxer_shell::MAX_READ_BUFFER_SIZE,
        );
        self
    }

    /// The largest frame payload accepted from the remote.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The size outgoing writes are split into.
    pub fn split_size(&self) -> usize {
        self.split_size
    }

    /// Each stream's share of receive memory.
    pub fn max_stream_buffer(&self) -> usize {
        self.max_stream_buffer
    }

    /// The connection-wide receive memory cap.
    pub fn max_connection_buffer(&self) -> usize {
        self.max_connection_buffer
    }

    /// The cap on open streams per direction.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// The cap on bytes queued for the socket before writers wait.
    pub fn max_send_buffer(&self) -> usize {
        self.max_send_buffer
    }

    /// How long a local close may spend flushing queued frames.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// How long a lagging reader gets before a stream is reset.
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// How long a reader counts as alive after it last read.
    pub fn reader_grace(&self) -> Duration {
        self.reader_grace
    }

    /// Bytes the connection task reads from the socket at once.
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// What the shared async shell needs to know: the read buffer and the close timeout.
    pub(crate) fn shell_config(&self) -> ShellConfig {
        ShellConfig::default()
            .with_read_buffer_size(self.read_buffer_size)
            .with_close_timeout(self.close_timeout)
    }

    /// Past this many queued bytes the connection stops reading input, so replies to input
    /// (resets of refused streams) cannot pile up without bound when the remote does not
    /// read. Writers alone stop below `max_send_buffer + split_size`, so twice the send
    /// buffer plus a frame is only ever reached by such replies.
    pub(crate) fn input_pause_threshold(&self) -> usize {
        self.max_send_buffer
            .saturating_mul(2)
            .saturating_add(self.split_size)
    }
}
