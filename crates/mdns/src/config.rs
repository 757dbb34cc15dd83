//! mDNS limits and defaults, each with the reason for its value.

use std::time::Duration;

/// The DNS-SD service name of libp2p peers (spec: `service-name`). A private network uses
/// `_p2p-<hex fingerprint>._udp.local` so public and private peers do not see each other.
pub const DEFAULT_SERVICE_NAME: &str = "_p2p._udp.local";

/// The DNS-SD meta-query name (RFC 6763 §9), answered with our service name.
pub const META_QUERY_NAME: &str = "_services._dns-sd._udp.local";

/// The mDNS port (RFC 6762).
pub const MDNS_PORT: u16 = 5353;

/// The TTL we give our records. rust-libp2p uses 6 minutes with a 5-minute query interval,
/// so a peer that keeps answering never expires in between; we match it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6 * 60);

/// Time between our queries once the start-up probing is over: rust-libp2p's 5 minutes.
/// Peers announce themselves when they start (they answer their own query), so the periodic
/// query only catches what was lost; before a discovered peer expires we query again anyway
/// (at 80 % of its TTL, RFC 6762 §5.2).
pub const DEFAULT_QUERY_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The first gap between start-up queries on an interface; it doubles after each query up to
/// [`DEFAULT_QUERY_INTERVAL`]. RFC 6762 §5.2 asks for at least one second between the first
/// two queries; rust-libp2p starts at 500 ms. One second: a peer joining a LAN learns of the
/// others within a few seconds even if the first packets are lost, and a busy LAN sees
/// little traffic.
pub const DEFAULT_INITIAL_QUERY_INTERVAL: Duration = Duration::from_secs(1);

/// How often the interface list is read again (getifaddrs; cheap). A new or changed
/// interface gets its socket and a query within this time.
pub const DEFAULT_INTERFACE_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Peers remembered at once. A LAN with more libp2p peers than this is rare; past it, new
/// peers are ignored (counted) until others expire, so a flood of fake announcements costs
/// bounded memory.
pub const DEFAULT_MAX_PEERS: usize = 1024;

/// Addresses remembered per peer (the peerstore keeps 64). A real peer announces a handful
/// per interface; more are ignored and counted.
pub const DEFAULT_MAX_ADDRS_PER_PEER: usize = 32;

/// The longest TTL we accept from a peer. Announced TTLs above it are cut to it, so a
/// record cannot pin a peer in our table (and peerstore) for days; live peers are re-announced
/// long before. One hour is above every implementation's default (rust 6 min, go 2 h is
/// cut to this, js 2 min).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(60 * 60);

/// The largest IP datagram we send (IP and UDP headers included), whatever the interface
/// MTU says: Ethernet's 1500. Loopback reports 65536 and RFC 6762 allows up to 9000 on
/// jumbo links, but receivers commonly read into 4 KiB or smaller buffers (rust-libp2p: 4096)
/// and several implementations had bugs with large answers; more packets are never wrong.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1500;

/// The smallest packet limit we accept: the classic DNS message size (RFC 1035). Our largest
/// single record (a 255-byte TXT string with its name) and the PTR answer always fit.
pub const MIN_PACKET_SIZE: usize = 576;

/// Bytes read per datagram: RFC 6762 §17 caps mDNS messages at 9000 bytes. A larger datagram
/// is cut there and then usually fails to parse (counted).
pub const RECV_BUFFER_SIZE: usize = 9000;

/// Minimum time between two multicast responses on one interface (RFC 6762 §6: a record is
/// not multicast again within one second). Queries arriving meanwhile are answered together
/// when the second is up, so a query flood costs one answer per second per interface.
pub const DEFAULT_MIN_RESPONSE_INTERVAL: Duration = Duration::from_secs(1);

/// The random delay before answering a query: RFC 6762 §6 asks for 20-120 ms for shared
/// records such as our PTR, so that peers answering one query do not collide.
pub const RESPONSE_DELAY_MIN: Duration = Duration::from_millis(20);
/// See [`RESPONSE_DELAY_MIN`].
pub const RESPONSE_DELAY_MAX: Duration = Duration::from_millis(120);

/// Unicast answers (to QU questions and legacy queriers) scheduled per interface per
/// [`UNICAST_WINDOW`]. Honest ones are few: a querier sets QU on its first queries only
/// (RFC 6762 §5.4), legacy queries come from tools such as `dig` and from rust-libp2p (which
/// queries from an ephemeral port, every few minutes per peer). The cap keeps a flood of
/// queries with forged on-link source addresses from turning us into an amplifier aimed at
/// one host; past it a QU question is answered by multicast (limited to one a second like
/// any), a legacy query only by multicast.
pub const MAX_UNICAST_ANSWERS: usize = 16;

/// The window [`MAX_UNICAST_ANSWERS`] counts over: a second, as RFC 6762 §6 paces multicast
/// answers.
pub const UNICAST_WINDOW: Duration = Duration::from_secs(1);

/// Known answers (RFC 6762 §7.1) put in one query at most; fewer when the interface's packet
/// size is reached first (about 18 of our own peer names in 1452 bytes). We do not split a
/// long known-answer list over several packets with the TC bit (§7.2): a peer left out just
/// answers, as it would without the list. 64 stays far below the 256 entries our parser (and
/// most) accept per packet, also on links configured for larger packets.
pub const MAX_KNOWN_ANSWERS: usize = 64;

/// Questions plus records parsed in one packet. A full 9000-byte packet of minimal records
/// holds about 800; real mDNS packets hold a few dozen. Above the limit the packet is dropped
/// (counted) before anything is allocated for it.
pub const DEFAULT_MAX_RECORDS_PER_PACKET: usize = 256;

/// A peer that says goodbye (TTL 0) is dropped one second later (RFC 6762 §10.1), so a stray
/// goodbye racing a fresh announcement does not flap it.
pub const GOODBYE_DELAY: Duration = Duration::from_secs(1);

/// Events buffered per subscriber of [`Mdns::events`](crate::Mdns::events) before further
/// ones are dropped (counted): discovery is slow-paced, and a subscriber that stopped
/// reading must not grow memory.
pub const DEFAULT_EVENT_CAPACITY: usize = 256;

/// The mDNS service's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsConfig {
    /// The DNS-SD service name; see [`DEFAULT_SERVICE_NAME`].
    pub service_name: String,
    /// See [`DEFAULT_TTL`].
    pub ttl: Duration,
    /// See [`DEFAULT_QUERY_INTERVAL`].
    pub query_interval: Duration,
    /// See [`DEFAULT_INITIAL_QUERY_INTERVAL`].
    pub initial_query_interval: Duration,
    /// See [`DEFAULT_INTERFACE_POLL_INTERVAL`].
    pub interface_poll_interval: Duration,
    /// Run on IPv4 (group 224.0.0.251). Default on.
    pub ipv4: bool,
    /// Run on IPv6 (group ff02::fb). Default on.
    pub ipv6: bool,
    /// Also run on loopback interfaces (default off). Only for test setups where every peer
    /// is on this machine: loopback addresses are advertised on a loopback interface and
    /// never on any other, and received loopback addresses are kept only from a loopback
    /// interface.
    pub loopback: bool,
    /// See [`DEFAULT_MAX_PEERS`].
    pub max_peers: usize,
    /// See [`DEFAULT_MAX_ADDRS_PER_PEER`].
    pub max_addrs_per_peer: usize,
    /// See [`DEFAULT_MAX_TTL`].
    pub max_ttl: Duration,
    /// See [`DEFAULT_MAX_PACKET_SIZE`]; at least [`MIN_PACKET_SIZE`] is used, and never more
    /// than the interface MTU.
    pub max_packet_size: usize,
    /// See [`DEFAULT_MIN_RESPONSE_INTERVAL`].
    pub min_response_interval: Duration,
    /// See [`DEFAULT_MAX_RECORDS_PER_PACKET`].
    pub max_records_per_packet: usize,
    /// See [`DEFAULT_EVENT_CAPACITY`].
    pub event_capacity: usize,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        MdnsConfig {
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            ttl: DEFAULT_TTL,
            query_interval: DEFAULT_QUERY_INTERVAL,
            initial_query_interval: DEFAULT_INITIAL_QUERY_INTERVAL,
            interface_poll_interval: DEFAULT_INTERFACE_POLL_INTERVAL,
            ipv4: true,
            ipv6: true,
            loopback: false,
            max_peers: DEFAULT_MAX_PEERS,
            max_addrs_per_peer: DEFAULT_MAX_ADDRS_PER_PEER,
            max_ttl: DEFAULT_MAX_TTL,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            min_response_interval: DEFAULT_MIN_RESPONSE_INTERVAL,
            max_records_per_packet: DEFAULT_MAX_RECORDS_PER_PACKET,
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }
}

impl MdnsConfig {
    /// The service name of a private network with this PSK fingerprint (spec:
    /// `_p2p-<hex fingerprint>._udp.local`). The result must still fit a 63-byte label.
    #[must_use]
    pub fn with_private_network(mut self, fingerprint: &[u8]) -> Self {
        use std::fmt::Write;
        let mut label = String::from("_p2p-");
        for byte in fingerprint {
            let _ = write!(label, "{byte:02x}");
        }
        self.service_name = format!("{label}._udp.local");
        self
    }

    /// With loopback interfaces too (see [`MdnsConfig::loopback`]).
    #[must_use]
    pub fn with_loopback(mut self, loopback: bool) -> Self {
        self.loopback = loopback;
        self
    }
}
