//! Configuration: every limit of the muxer, with its default and the reason for it.

use std::time::Duration;

use lp2p_muxer_shell::ShellConfig;

/// The yamux protocol id, as negotiated with multistream-select.
pub const PROTOCOL_ID: &str = "/yamux/1.0.0";

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The receive window every stream starts with in each direction. Fixed by the spec (both sides
/// assume it without a frame); larger windows are granted later with window updates.
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// Default cap on one stream's receive window after auto-tuning: 16 MiB, go-yamux's
/// `maxStreamWindow`. Enough for one stream to fill a 1 Gbit/s link with a 130 ms RTT.
pub const DEFAULT_MAX_STREAM_WINDOW: u32 = 16 * 1024 * 1024;

/// Default cap on the receive windows of all streams of one connection together, which bounds
/// the memory a remote can make us hold: 256 MiB, so that all 512 + 512 streams allowed by
/// default can hold their initial 256 KiB window at once. Auto-tuning only grows windows
/// within what is left of it.
pub const DEFAULT_MAX_CONNECTION_WINDOW: usize = 256 * MIB;

/// Default largest Data payload we send in one frame. Larger writes are split so streams
/// interleave fairly and window updates and pings are not stuck behind one huge frame.
/// 64 KiB won the split-size benchmark (see the crate README): larger frames gained
/// nothing measurable over memory pipes, smaller ones cost throughput.
pub const DEFAULT_SPLIT_SIZE: usize = 64 * KIB;

/// Default limit on streams we open (and on streams the remote opens, separately): 512,
/// rust-yamux's `max_num_streams`. Beyond it, opening fails and the remote's SYNs are reset.
pub const DEFAULT_MAX_STREAMS: usize = 512;

/// Default limit on our outbound streams the remote has not acknowledged yet; opening more
/// waits. 256 is the libp2p yamux spec's ACK backlog.
pub const DEFAULT_MAX_ACK_BACKLOG: usize = 256;

/// Default limit on inbound streams the application has not accepted yet (they are not ACKed
/// until it does); more SYNs are reset. The libp2p spec asks to buffer at least 256.
pub const DEFAULT_MAX_ACCEPT_BACKLOG: usize = 256;

/// Default interval between keep-alive pings, go-yamux's default. Keep-alive is on by default:
/// it detects dead connections, and each answer refreshes the RTT that window auto-tuning uses.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Default time a keep-alive ping may go unanswered before the connection is declared dead.
/// Generous because the answer may queue behind megabytes of data on a slow link.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on stream data waiting in the connection's send buffer: writers block above
/// it until the connection task has handed the buffer to the socket. Large enough that one
/// buffer fills a memory pipe or a socket buffer in one write.
pub const DEFAULT_MAX_SEND_BUFFER: usize = 256 * KIB;

/// Default bound on control frames (pongs, resets, window updates) waiting to be sent: above it
/// the connection stops reading the socket until they are written, so a remote that floods
/// pings or bad stream ids while not reading our answers cannot grow our memory. An honest
/// peer never gets near 64 KiB (over 5000 frames).
pub const DEFAULT_MAX_CONTROL_BACKLOG: usize = 64 * KIB;

pub use lp2p_muxer_shell::{DEFAULT_CLOSE_TIMEOUT, DEFAULT_READ_BUFFER_SIZE};

/// Configuration of a yamux connection. `YamuxConfig::default()` suits most uses; every
/// setter documents the default it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamuxConfig {
    pub(crate) max_stream_window: u32,
    pub(crate) max_connection_window: usize,
    pub(crate) split_size: usize,
    pub(crate) max_outbound_streams: usize,
    pub(crate) max_inbound_streams: usize,
    pub(crate) max_ack_backlog: usize,
    pub(crate) max_accept_backlog: usize,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) ping_timeout: Duration,
    pub(crate) max_send_buffer: usize,
    pub(crate) max_control_backlog: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) close_timeout: Duration,
}

impl Default for YamuxConfig {
    fn default() -> Self {
        YamuxConfig {
            max_stream_window: DEFAULT_MAX_STREAM_WINDOW,
            max_connection_window: DEFAULT_MAX_CONNECTION_WINDOW,
            split_size: DEFAULT_SPLIT_SIZE,
            max_outbound_streams: DEFAULT_MAX_STREAMS,
            max_inbound_streams: DEFAULT_MAX_STREAMS,
            max_ack_backlog: DEFAULT_MAX_ACK_BACKLOG,
            max_accept_backlog: DEFAULT_MAX_ACCEPT_BACKLOG,
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_send_buffer: DEFAULT_MAX_SEND_BUFFER,
            max_control_backlog: DEFAULT_MAX_CONTROL_BACKLOG,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

impl YamuxConfig {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps one stream's receive window after auto-tuning (default
    /// [`DEFAULT_MAX_STREAM_WINDOW`]). Values below [`INITIAL_WINDOW`] turn auto-tuning off.
    #[must_use]
    pub fn with_max_stream_window(mut self, bytes: u32) -> Self {
        self.max_stream_window = bytes.max(INITIAL_WINDOW);
        self
    }

    /// Caps the receive windows of all streams together, the connection's memory cap (default
    /// [`DEFAULT_MAX_CONNECTION_WINDOW`]). Each stream needs [`INITIAL_WINDOW`] of it; a
    /// stream that does not fit is refused. At least one initial window.
    #[must_use]
    pub fn with_max_connection_window(mut self, bytes: usize) -> Self {
        self.max_connection_window = bytes.max(INITIAL_WINDOW as usize);
        self
    }

    /// Sets the largest Data payload sent in one frame (default [`DEFAULT_SPLIT_SIZE`]),
    /// clamped to 1 KiB ..= 1 MiB (rust-yamux rejects frames over 1 MiB).
    #[must_use]
    pub fn with_split_size(mut self, bytes: usize) -> Self {
        self.split_size = bytes.clamp(KIB, MIB);
        self
    }

    /// Sets the limit on concurrent streams in each direction (default
    /// [`DEFAULT_MAX_STREAMS`]).
    #[must_use]
    pub fn with_max_streams(mut self, streams: usize) -> Self {
        self.max_outbound_streams = streams.max(1);
        self.max_inbound_streams = streams.max(1);
        self
    }

    /// Sets the limit on concurrent streams we open (default [`DEFAULT_MAX_STREAMS`]).
    #[must_use]
    pub fn with_max_outbound_streams(mut self, streams: usize) -> Self {
        self.max_outbound_streams = streams.max(1);
        self
    }

    /// Sets the limit on concurrent streams the remote opens (default
    /// [`DEFAULT_MAX_STREAMS`]).
    #[must_use]
    pub fn with_max_inbound_streams(mut self, streams: usize) -> Self {
        self.max_inbound_streams = streams.max(1);
        self
    }

    /// Sets how many of our streams may wait for the remote's ACK before opening more waits
    /// (default [`DEFAULT_MAX_ACK_BACKLOG`]).
    #[must_use]
    pub fn with_max_ack_backlog(mut self, streams: usize) -> Self {
        self.max_ack_backlog = streams.max(1);
        self
    }

    /// Sets how many inbound streams may wait for the application to accept them (default
    /// [`DEFAULT_MAX_ACCEPT_BACKLOG`]).
    #[must_use]
    pub fn with_max_accept_backlog(mut self, streams: usize) -> Self {
        self.max_accept_backlog = streams.max(1);
        self
    }

    /// Sets the keep-alive ping interval, or turns keep-alive off with `None` (default
    /// [`DEFAULT_KEEP_ALIVE_INTERVAL`]). One ping is sent when the connection starts either way,
    /// to measure the RTT.
    #[must_use]
    pub fn with_keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// Sets how long a keep-alive ping may go unanswered (default [`DEFAULT_PING_TIMEOUT`]).
    #[must_use]
    pub fn with_ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Sets the bound on stream data waiting to be written to the socket (default
    /// [`DEFAULT_MAX_SEND_BUFFER`]); at least one split.
    #[must_use]
    pub fn with_max_send_buffer(mut self, bytes: usize) -> Self {
        self.max_send_buffer = bytes.max(KIB);
        self
    }

    /// Sets the bound on control frames waiting to be written before the socket is no longer
    /// read (default [`DEFAULT_MAX_CONTROL_BACKLOG`]).
    #[must_use]
    pub fn with_max_control_backlog(mut self, bytes: usize) -> Self {
        self.max_control_backlog = bytes.max(KIB);
        self
    }

    /// Sets how many bytes the connection task reads from the socket at once (default
    /// [`DEFAULT_READ_BUFFER_SIZE`]).
    #[must_use]
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.clamp(
            lp2p_muxer_shell::MIN_READ_BUFFER_SIZE,
            lp2p_muxer_shell::MAX_READ_BUFFER_SIZE,
        );
        self
    }

    /// Sets how long closing may spend flushing to a remote that does not read (default
    /// [`DEFAULT_CLOSE_TIMEOUT`]).
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The largest Data payload sent in one frame.
    pub fn split_size(&self) -> usize {
        self.split_size
    }

    /// The cap on one stream's receive window.
    pub fn max_stream_window(&self) -> u32 {
        self.max_stream_window
    }

    /// The cap on all receive windows of a connection together.
    pub fn max_connection_window(&self) -> usize {
        self.max_connection_window
    }

    /// The keep-alive interval, if keep-alive is on.
    pub fn keep_alive_interval(&self) -> Option<Duration> {
        self.keep_alive_interval
    }

    /// What the shared async shell needs to know: the read buffer and the close timeout.
    pub(crate) fn shell_config(&self) -> ShellConfig {
        ShellConfig::default()
            .with_read_buffer_size(self.read_buffer_size)
            .with_close_timeout(self.close_timeout)
    }
}
