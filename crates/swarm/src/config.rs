//! Limits, timeouts and policies of the swarm, each with a named default and the reason for it.

use std::time::Duration;

/// Raw transport connect: long enough for a slow path across the internet, short enough
/// that a black-holed address does not hold a dial slot for minutes (go-libp2p: 10 s).
pub const DEFAULT_TRANSPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Security + muxer negotiation of one connection. Above noise's own 10 s handshake timeout
/// so that its more precise error wins; go-libp2p allows 15 s for the same.
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_secs(15);

/// A whole dial to a peer, across all of its addresses.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Addresses of one peer dialed at the same time. A few in parallel find a working path
/// quickly without flooding a peer that lists dozens of addresses.
pub const DEFAULT_DIAL_CONCURRENCY: usize = 3;

/// Delay before trying the next address while earlier attempts are still running: the
/// "connection attempt delay" of Happy Eyeballs (RFC 8305 recommends 250 ms).
pub const DEFAULT_DIAL_STAGGER: Duration = Duration::from_millis(250);

/// An address that failed is not dialed again for this long; each further consecutive
/// failure doubles it, up to [`MAX_DIAL_BACKOFF`]. go-libp2p starts at 5 s as well.
pub const DEFAULT_DIAL_BACKOFF: Duration = Duration::from_secs(5);

/// The longest an address stays in dial backoff.
pub const MAX_DIAL_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// Established inbound connections. Each costs two sockets' buffers and a muxer; 1024 fits
/// a small server and the `hold` benchmark, and is far below default fd limits.
pub const DEFAULT_MAX_INBOUND: usize = 1024;

/// Established outbound connections.
pub const DEFAULT_MAX_OUTBOUND: usize = 1024;

/// Connections to one peer. Two peers dialing each other at once legitimately make two; a
/// few more cover reconnect races; more is a peer hogging resources.
pub const DEFAULT_MAX_PER_PEER: usize = 8;

/// Inbound connections still in their security/muxer handshake. Handshakes cost CPU (noise
/// does X25519 and signature checks), so an unauthenticated flood is capped here.
pub const DEFAULT_MAX_PENDING_INBOUND: usize = 128;

/// How long a dial with no address to try waits for inbound handshakes in progress that may
/// turn out to be the peer (a noise responder learns who dialed only from the last
/// handshake message, a moment after the dialer is done). Long enough for a handshake on a
/// slow path, short enough that a dial that cannot succeed still fails promptly.
pub const DEFAULT_INBOUND_WAIT: Duration = Duration::from_secs(2);

/// When every pending-inbound slot is taken, a new inbound connection takes the slot of the
/// oldest handshake that has not proved a peer yet, if that one started at least this long
/// ago. An honest handshake takes a few round trips (noise XX and two multistream
/// negotiations: about 3 RTT, under a second on any path short of a satellite link), so a
/// handshake still unfinished after a second is most likely a silent or stalling
/// connection. Without eviction an attacker holds all [`DEFAULT_MAX_PENDING_INBOUND`]
/// slots by opening 128 silent connections per upgrade timeout (about 9 a second); with it,
/// keeping every slot taken costs 128 new connections a second, and each honest handshake
/// gets a full second no matter how many silent connections arrive.
pub const DEFAULT_PENDING_INBOUND_EVICTION_AGE: Duration = Duration::from_secs(1);

/// When the inbound connection limit is reached, a new inbound attempt closes the inbound
/// connection that has had no stream for the longest time, if that is at least this long.
/// Without it, 1,024 cheap identities holding idle connections (each its own peer, so the
/// per-peer limit does not bind) keep every new peer out until the idle timeout (60 s), and
/// again as soon as they reconnect. An honest peer that has run no stream for 10 s can redial
/// when it needs us; protected and bootstrap peers, outbound connections and connections with
/// streams are never taken. Idleness is what the idle timeout measures, so this needs
/// `idle_timeout` set (it is by default).
pub const DEFAULT_INBOUND_IDLE_EVICTION_AGE: Duration = Duration::from_secs(10);

/// Inbound handshakes in progress from one IP address. An honest host rarely has more than
/// a couple in flight with us at once; a cap this low means one source cannot fill the
/// pending-inbound slots ([`DEFAULT_MAX_PENDING_INBOUND`]) with silent connections.
pub const DEFAULT_MAX_PENDING_INBOUND_PER_IP: usize = 8;

/// Established plus pending inbound connections from one IP address. Several peers can sit
/// behind one address (a NAT, a carrier-grade NAT), so this is well above one peer's share
/// ([`DEFAULT_MAX_PER_PEER`]) and far below the node's total.
pub const DEFAULT_MAX_INBOUND_PER_IP: usize = 32;

/// Inbound handshakes in progress from one subnet (IPv4 /24, IPv6 /48: what one operator
/// typically holds), so a source with a range of addresses gets a bounded share too.
pub const DEFAULT_MAX_PENDING_INBOUND_PER_SUBNET: usize = 32;

/// Established plus pending inbound connections from one subnet.
pub const DEFAULT_MAX_INBOUND_PER_SUBNET: usize = 128;

/// The IPv4 prefix length that makes one "subnet" for the per-subnet limits.
pub const IPV4_SUBNET_PREFIX: u8 = 24;

/// The IPv6 prefix length that makes one "subnet" for the per-subnet limits (a typical
/// site allocation).
pub const IPV6_SUBNET_PREFIX: u8 = 48;

/// A connection with no open stream for this long is closed (the connection-lifetime
/// policy in docs/architecture.md). Long enough that request/response protocols reuse
/// connections; `None` keeps idle connections forever.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Events buffered per subscriber before further events to that subscriber are dropped
/// (counted and logged): a stalled subscriber must not stall the swarm or use unbounded memory.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// Redial backoff for bootstrap peers: first retry after this long, doubling up to
/// [`MAX_BOOTSTRAP_BACKOFF`].
pub const DEFAULT_BOOTSTRAP_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two redials of a bootstrap peer.
pub const MAX_BOOTSTRAP_BACKOFF: Duration = Duration::from_secs(60);

/// An address that led to a connection within this window is dialed first next time: the
/// path worked a moment ago, so it most likely still does.
pub const RECENT_SUCCESS_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Addresses remembered as recently successful (the oldest is forgotten beyond this): one
/// per peer a busy node talks to, bounded so the memory is too.
pub const MAX_RECENT_SUCCESSES: usize = 4096;

/// How often expired peerstore entries and dial backoffs are collected.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How long `close()` waits for the swarm's tasks to finish before aborting the rest.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Limits, timeouts and policies of a [`Swarm`](crate::Swarm). Every field has a named
/// default in this module.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// See [`DEFAULT_TRANSPORT_TIMEOUT`].
    pub transport_timeout: Duration,
    /// See [`DEFAULT_UPGRADE_TIMEOUT`].
    pub upgrade_timeout: Duration,
    /// See [`DEFAULT_DIAL_TIMEOUT`].
    pub dial_timeout: Duration,
    /// See [`DEFAULT_DIAL_CONCURRENCY`].
    pub dial_concurrency: usize,
    /// See [`DEFAULT_DIAL_STAGGER`].
    pub dial_stagger: Duration,
    /// See [`DEFAULT_DIAL_BACKOFF`]; zero disables backoff.
    pub dial_backoff: Duration,
    /// See [`DEFAULT_MAX_INBOUND`].
    pub max_inbound: usize,
    /// See [`DEFAULT_MAX_OUTBOUND`].
    pub max_outbound: usize,
    /// See [`DEFAULT_MAX_PER_PEER`].
    pub max_per_peer: usize,
    /// See [`DEFAULT_MAX_PENDING_INBOUND`].
    pub max_pending_inbound: usize,
    /// See [`DEFAULT_PENDING_INBOUND_EVICTION_AGE`]; `None` never evicts (a full set of
    /// pending slots then refuses new inbound connections until a handshake ends).
    pub pending_inbound_eviction_age: Option<Duration>,
    /// See [`DEFAULT_INBOUND_IDLE_EVICTION_AGE`]; `None` never evicts (a full inbound table
    /// then refuses new inbound connections until one closes).
    pub inbound_idle_eviction_age: Option<Duration>,
    /// See [`DEFAULT_INBOUND_WAIT`]; zero fails a dial with no address at once.
    pub inbound_wait: Duration,
    /// See [`DEFAULT_MAX_PENDING_INBOUND_PER_IP`].
    pub max_pending_inbound_per_ip: usize,
    /// See [`DEFAULT_MAX_INBOUND_PER_IP`].
    pub max_inbound_per_ip: usize,
    /// See [`DEFAULT_MAX_PENDING_INBOUND_PER_SUBNET`].
    pub max_pending_inbound_per_subnet: usize,
    /// See [`DEFAULT_MAX_INBOUND_PER_SUBNET`].
    pub max_inbound_per_subnet: usize,
    /// Whether the per-IP and per-subnet limits also apply to loopback peers. Off by default:
    /// a loopback peer is on this machine (tests, local tools and benchmarks open thousands
    /// of connections from 127.0.0.1); turn it on to test the limits locally.
    pub ip_limits_on_loopback: bool,
    /// See [`DEFAULT_IDLE_TIMEOUT`]; `None` never closes idle connections.
    pub idle_timeout: Option<Duration>,
    /// See [`DEFAULT_EVENT_BUFFER`].
    pub event_buffer: usize,
    /// See [`DEFAULT_BOOTSTRAP_BACKOFF`].
    pub bootstrap_backoff: Duration,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            transport_timeout: DEFAULT_TRANSPORT_TIMEOUT,
            upgrade_timeout: DEFAULT_UPGRADE_TIMEOUT,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            dial_concurrency: DEFAULT_DIAL_CONCURRENCY,
            dial_stagger: DEFAULT_DIAL_STAGGER,
            dial_backoff: DEFAULT_DIAL_BACKOFF,
            max_inbound: DEFAULT_MAX_INBOUND,
            max_outbound: DEFAULT_MAX_OUTBOUND,
            max_per_peer: DEFAULT_MAX_PER_PEER,
            max_pending_inbound: DEFAULT_MAX_PENDING_INBOUND,
            pending_inbound_eviction_age: Some(DEFAULT_PENDING_INBOUND_EVICTION_AGE),
            inbound_idle_eviction_age: Some(DEFAULT_INBOUND_IDLE_EVICTION_AGE),
            inbound_wait: DEFAULT_INBOUND_WAIT,
            max_pending_inbound_per_ip: DEFAULT_MAX_PENDING_INBOUND_PER_IP,
            max_inbound_per_ip: DEFAULT_MAX_INBOUND_PER_IP,
            max_pending_inbound_per_subnet: DEFAULT_MAX_PENDING_INBOUND_PER_SUBNET,
            max_inbound_per_subnet: DEFAULT_MAX_INBOUND_PER_SUBNET,
            ip_limits_on_loopback: false,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            event_buffer: DEFAULT_EVENT_BUFFER,
            bootstrap_backoff: DEFAULT_BOOTSTRAP_BACKOFF,
        }
    }
}
