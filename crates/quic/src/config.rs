//! Limits and their defaults, and the quinn-proto configurations built from them.

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::congestion::CubicConfig;
use quinn_proto::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

/// Default cap on the streams a remote may have open towards us at once (QUIC's
/// `MAX_STREAMS`, renewed as streams close). A connection starts lower, at
/// [`INITIAL_CONCURRENT_STREAMS`](crate::INITIAL_CONCURRENT_STREAMS), and grows towards this
/// as the remote uses it. quinn's default of 100 is low for
/// libp2p, where every request is a stream; 512 matches lp2p-yamux's stream limit, so a
/// host behaves the same over either transport. A remote that opens more is refused by QUIC
/// flow control (it cannot, and a peer that tries anyway gets a `STREAM_LIMIT_ERROR`).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 512;

/// Default receive window of one stream: how much a remote may send on a stream before we
/// read it. A stream cannot go faster than window / RTT: 8 MiB allows 160 MiB/s at 50 ms and
/// 80 MiB/s at 100 ms, what a fast WAN path carries (rust-libp2p's libp2p-quic uses 10 MB).
/// Loopback, with an RTT of microseconds, needs far less: the `windows` bench (crate README)
/// saw 1-2 MiB at least as fast as 8 MiB there. It is a cap, not an allocation: memory is
/// used only for data received and unread.
pub const DEFAULT_STREAM_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;

/// Default receive window of a whole connection (all streams together). Twice the stream
/// window, so one busy stream cannot starve the others, and a bound on what one connection
/// can make us buffer. A maximum: a connection starts at
/// [`INITIAL_RECEIVE_WINDOW`](crate::INITIAL_RECEIVE_WINDOW) and grows towards it while its
/// traffic needs more, each growth reserved from the host's memory budget first.
pub const DEFAULT_CONNECTION_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// Default send window: how much we buffer for the remote, unacknowledged, per connection.
/// Equal to the connection receive window, so neither side is the bottleneck on a symmetric
/// link.
pub const DEFAULT_SEND_WINDOW: u64 = 16 * 1024 * 1024;

/// Default idle timeout: a connection that hears nothing (not even a keep-alive) for this
/// long is closed. The swarm closes connections idle at the stream level itself; this one
/// detects a remote that vanished. 30 s, go-libp2p's value, survives a few lost keep-alives.
pub const DEFAULT_MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default keep-alive interval: a PING when nothing else was sent for this long. A third of
/// the idle timeout (so two may be lost), and under the 30 s that NATs commonly keep a UDP
/// mapping alive.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Default handshake timeout, like `/noise` and `/tls/1.0.0` over TCP: ample for the one
/// round trip (plus retransmissions of lost Initial packets) on a slow path, short enough that
/// a stalled remote does not hold a slot for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default number of inbound connection attempts waiting for the listener's `accept` (the
/// swarm's pending-inbound limit, 128). More attempts are refused at once with
/// `CONNECTION_REFUSED`, counted in [`QuicStats`](crate::QuicStats).
pub const DEFAULT_MAX_PENDING_INCOMING: usize = 128;

/// Default bytes buffered per pending inbound attempt (early packets of a handshake not yet
/// accepted). Without 0-RTT only a few handshake packets arrive early; 64 KiB holds them, and
/// with [`DEFAULT_MAX_PENDING_INCOMING`] bounds the total to 8 MiB.
pub const DEFAULT_INCOMING_BUFFER_SIZE: u64 = 64 * 1024;

/// Default UDP socket buffer size asked of the kernel (send and receive). A burst of
/// full-window traffic arrives faster than one task reads it; 4 MiB absorbs a burst at a
/// few Gbit/s. The kernel caps it (`net.core.rmem_max`); the request is best effort.
pub const DEFAULT_SOCKET_BUFFER_SIZE: usize = 4 * 1024 * 1024;

/// Default UDP payload size on loopback paths (the remote is 127.0.0.0/8 or `::1`), from
/// the first packet on. quinn-proto starts at 1200 bytes and probes up to 1452 (what
/// Ethernet carries), which is right for real paths. A loopback path's MTU is known without probing (65536 on Linux),
/// and on it QUIC's cost is per packet (encryption setup, acknowledgements, loss tracking),
/// not per byte: `perf` over 127.0.0.1 went from about 380 to 500 to 900 MiB/s (256 MiB each
/// way, interleaved runs, same binary) with 1452, 4000 and 16000-byte packets. 16 000 lets
/// four datagrams share one 64 KiB GSO send. A remote that advertises a smaller
/// `max_udp_payload_size` (rust-libp2p's: 1472) gets no larger packets than that.
pub const DEFAULT_LOOPBACK_MTU: u16 = 16_000;

/// The UDP payload size quinn-proto assumes for paths that are not loopback before it
/// knows better (its default `max_udp_payload_size`: Ethernet's 1500 less the IPv4 and UDP
/// headers); the endpoint advertises at least this and sizes its receive buffers from it.
const ETHERNET_UDP_PAYLOAD: u16 = 1472;

/// Settings of the QUIC transport.
///
/// ```
/// use std::time::Duration;
/// use lp2p_quic::QuicConfig;
///
/// let config = QuicConfig::default()
///     .max_concurrent_streams(1024)
///     .max_idle_timeout(Duration::from_secs(60));
/// assert_eq!(config.get_max_concurrent_streams(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct QuicConfig {
    max_concurrent_streams: u32,
    stream_receive_window: u32,
    connection_receive_window: u32,
    send_window: u64,
    max_idle_timeout: Duration,
    keep_alive_interval: Option<Duration>,
    handshake_timeout: Duration,
    max_pending_incoming: usize,
    incoming_buffer_size: u64,
    socket_buffer_size: usize,
    mtu_discovery: bool,
    loopback_mtu: Option<u16>,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            stream_receive_window: DEFAULT_STREAM_RECEIVE_WINDOW,
            connection_receive_window: DEFAULT_CONNECTION_RECEIVE_WINDOW,
            send_window: DEFAULT_SEND_WINDOW,
            max_idle_timeout: DEFAULT_MAX_IDLE_TIMEOUT,
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_incoming: DEFAULT_MAX_PENDING_INCOMING,
            incoming_buffer_size: DEFAULT_INCOMING_BUFFER_SIZE,
            socket_buffer_size: DEFAULT_SOCKET_BUFFER_SIZE,
            mtu_discovery: true,
            loopback_mtu: Some(DEFAULT_LOOPBACK_MTU),
        }
    }
}

impl QuicConfig {
    /// Streams a remote may have open towards us at once, at most (default
    /// [`DEFAULT_MAX_CONCURRENT_STREAMS`]). A connection starts with
    /// [`INITIAL_CONCURRENT_STREAMS`](crate::INITIAL_CONCURRENT_STREAMS) (or this, if
    /// lower) and doubles the limit each time the authenticated remote holds half of it
    /// open, up to this.
    #[must_use]
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// Receive window per stream, bytes (default [`DEFAULT_STREAM_RECEIVE_WINDOW`]).
    #[must_use]
    pub fn stream_receive_window(mut self, bytes: u32) -> Self {
        self.stream_receive_window = bytes;
        self
    }

    /// The most a connection's receive window grows to, bytes (default
    /// [`DEFAULT_CONNECTION_RECEIVE_WINDOW`]); growth is reserved from the memory budget.
    #[must_use]
    pub fn connection_receive_window(mut self, bytes: u32) -> Self {
        self.connection_receive_window = bytes;
        self
    }

    /// Unacknowledged bytes buffered per connection (default [`DEFAULT_SEND_WINDOW`]).
    #[must_use]
    pub fn send_window(mut self, bytes: u64) -> Self {
        self.send_window = bytes;
        self
    }

    /// Idle timeout (default [`DEFAULT_MAX_IDLE_TIMEOUT`]); the smaller of both sides' applies.
    #[must_use]
    pub fn max_idle_timeout(mut self, timeout: Duration) -> Self {
        self.max_idle_timeout = timeout;
        self
    }

    /// Keep-alive interval, `None` for none (default [`DEFAULT_KEEP_ALIVE_INTERVAL`]).
    #[must_use]
    pub fn keep_alive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// How long a handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Inbound attempts waiting for `accept` (default [`DEFAULT_MAX_PENDING_INCOMING`]).
    #[must_use]
    pub fn max_pending_incoming(mut self, attempts: usize) -> Self {
        self.max_pending_incoming = attempts.max(1);
        self
    }

    /// Bytes buffered per pending inbound attempt (default [`DEFAULT_INCOMING_BUFFER_SIZE`]).
    #[must_use]
    pub fn incoming_buffer_size(mut self, bytes: u64) -> Self {
        self.incoming_buffer_size = bytes;
        self
    }

    /// UDP socket buffer size asked of the kernel (default [`DEFAULT_SOCKET_BUFFER_SIZE`]).
    #[must_use]
    pub fn socket_buffer_size(mut self, bytes: usize) -> Self {
        self.socket_buffer_size = bytes;
        self
    }

    /// Path MTU discovery (on by default; off keeps every packet at 1200 bytes).
    #[must_use]
    pub fn mtu_discovery(mut self, on: bool) -> Self {
        self.mtu_discovery = on;
        self
    }

    /// UDP payload size on loopback paths (default [`DEFAULT_LOOPBACK_MTU`], clamped to
    /// QUIC's 1200 to 65527 bytes); `None` treats loopback like any other path.
    #[must_use]
    pub fn loopback_mtu(mut self, bytes: Option<u16>) -> Self {
        self.loopback_mtu = bytes.map(|b| b.clamp(1200, 65_527));
        self
    }

    /// The UDP payload size on loopback paths, if it has its own.
    pub fn get_loopback_mtu(&self) -> Option<u16> {
        self.loopback_mtu
    }

    /// The largest UDP payload the endpoint accepts (the `max_udp_payload_size` transport
    /// parameter, and the receive buffer size).
    pub(crate) fn max_udp_payload_size(&self) -> u16 {
        self.loopback_mtu
            .map_or(ETHERNET_UDP_PAYLOAD, |mtu| mtu.max(ETHERNET_UDP_PAYLOAD))
    }

    /// The stream limit.
    pub fn get_max_concurrent_streams(&self) -> u32 {
        self.max_concurrent_streams
    }

    /// The handshake timeout.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The pending inbound attempts limit.
    pub fn get_max_pending_incoming(&self) -> usize {
        self.max_pending_incoming
    }

    /// The UDP socket buffer size.
    pub fn get_socket_buffer_size(&self) -> usize {
        self.socket_buffer_size
    }

    /// The most a connection receive window grows to.
    pub(crate) fn connection_window(&self) -> u32 {
        self.connection_receive_window
    }

    pub(crate) fn incoming_buffer(&self) -> u64 {
        self.incoming_buffer_size
    }

    /// The quinn-proto transport configuration for these settings: bidirectional streams
    /// only (libp2p opens no unidirectional ones), no datagrams, no 0-RTT (that lives in the
    /// TLS configuration), MTU discovery as set.
    pub(crate) fn transport(&self) -> TransportConfig {
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(crate::credit::initial_limit(
                self.max_concurrent_streams,
            )))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(
                self.connection_receive_window
                    .min(crate::window::INITIAL_RECEIVE_WINDOW),
            ))
            .send_window(self.send_window)
            .max_idle_timeout(IdleTimeout::try_from(self.max_idle_timeout).ok())
            .keep_alive_interval(self.keep_alive_interval)
            .datagram_receive_buffer_size(None)
            .allow_spin(false)
            .mtu_discovery_config(self.mtu_discovery.then(MtuDiscoveryConfig::default));
        transport
    }

    pub(crate) fn transport_arc(&self) -> Arc<TransportConfig> {
        Arc::new(self.transport())
    }

    /// The transport configuration of loopback paths, when they have their own MTU: packets
    /// of that size from the start (a remote that advertises a smaller
    /// `max_udp_payload_size` caps them), path MTU discovery with it as the ceiling (so no
    /// probes, which on a short connection cost more than they gain, but black-hole
    /// detection stays on), and the initial congestion window RFC 9002 gives for that
    /// datagram size (the default one, 14 720 bytes, would not fit a single packet).
    pub(crate) fn loopback_transport_arc(&self) -> Option<Arc<TransportConfig>> {
        let mtu = self.loopback_mtu?;
        let mut transport = self.transport();
        transport.initial_mtu(mtu);
        if self.mtu_discovery {
            let mut discovery = MtuDiscoveryConfig::default();
            discovery.upper_bound(mtu);
            transport.mtu_discovery_config(Some(discovery));
        }
        // RFC 9002, 7.2: ten datagrams, at most the larger of 14 720 bytes and two datagrams.
        let datagram = u64::from(mtu);
        let mut cubic = CubicConfig::default();
        cubic.initial_window(
            datagram
                .saturating_mul(10)
                .min(datagram.saturating_mul(2).max(14_720)),
        );
        transport.congestion_controller_factory(Arc::new(cubic));
        Some(Arc::new(transport))
    }
}
