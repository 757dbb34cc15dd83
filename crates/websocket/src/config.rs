use std::time::Duration;

/// Largest frame payload accepted from the remote: 16 MiB. A libp2p peer sends one
/// security-layer record per frame (a noise frame is at most 64 KiB, a TLS record 16 KiB),
/// so this leaves a wide margin for implementations that batch writes. Payloads stream
/// through without being buffered whole, so the limit guards against nonsense lengths,
/// not memory.
pub const DEFAULT_MAX_FRAME_LEN: u64 = 16 << 20;

/// Largest message (all fragments together) accepted from the remote: 64 MiB, four
/// maximal frames; a byte stream has no use for messages, only for their bytes.
pub const DEFAULT_MAX_MESSAGE_LEN: u64 = 64 << 20;

/// Largest frame payload we send: 256 KiB. Large enough that one noise frame (at most
/// 65 537 bytes with its length prefix) is one WebSocket frame, small enough for every
/// implementation's limit (rust-libp2p 256 MiB, the Node `ws` package 100 MiB, browsers
/// unlimited) and for the send buffer.
pub const DEFAULT_MAX_WRITE_FRAME: usize = 256 << 10;

/// Longest opening handshake (the HTTP request or response head): 8 KiB, what common HTTP
/// servers accept for a request head; a browser's upgrade request is well under 1 KiB.
pub const DEFAULT_MAX_HANDSHAKE_LEN: usize = 8 << 10;

/// Most header lines in the opening handshake: 64 (browsers send about 15).
pub const MAX_HANDSHAKE_HEADERS: usize = 64;

/// How long the opening handshake (TLS included) may take: 10 s, as the noise handshake
/// timeout; a listener drops a client that stalls longer.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Inbound connections whose handshake is in progress at once, per listener: 128, the
/// swarm's default pending-inbound limit. Past it, the listener stops accepting TCP
/// connections (the kernel's backlog holds them) until one finishes.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 128;

/// Bytes read from the socket at a time when not reading straight into the caller's
/// buffer: 64 KiB, a loopback TCP read's worth.
pub const DEFAULT_READ_BUFFER: usize = 64 << 10;

/// Unsent bytes the connection buffers before a write waits for the socket: 256 KiB. Small
/// writes (muxer headers, window updates) are coalesced below it.
pub const DEFAULT_WRITE_BUFFER: usize = 256 << 10;

/// The frame limits of one session (see the constants for the defaults and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted ([`DEFAULT_MAX_FRAME_LEN`]).
    pub max_frame_len: u64,
    /// Largest message accepted, fragments together ([`DEFAULT_MAX_MESSAGE_LEN`]).
    pub max_message_len: u64,
    /// Largest frame payload sent ([`DEFAULT_MAX_WRITE_FRAME`]).
    pub max_write_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_write_frame: DEFAULT_MAX_WRITE_FRAME,
        }
    }
}

/// Settings of the WebSocket transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// Frame and message limits.
    pub limits: Limits,
    /// Longest handshake head ([`DEFAULT_MAX_HANDSHAKE_LEN`]).
    pub max_handshake_len: usize,
    /// Handshake deadline, TLS included ([`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
    /// Handshakes in progress per listener ([`DEFAULT_MAX_PENDING_HANDSHAKES`]).
    pub max_pending_handshakes: usize,
    /// Socket read size ([`DEFAULT_READ_BUFFER`]).
    pub read_buffer: usize,
    /// Unsent bytes buffered before writes wait ([`DEFAULT_WRITE_BUFFER`]).
    pub write_buffer: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            limits: Limits::default(),
            max_handshake_len: DEFAULT_MAX_HANDSHAKE_LEN,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            read_buffer: DEFAULT_READ_BUFFER,
            write_buffer: DEFAULT_WRITE_BUFFER,
        }
    }
}
