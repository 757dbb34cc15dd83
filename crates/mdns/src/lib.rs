//! mDNS peer discovery for lp2p, per the libp2p spec `discovery/mdns.md` (RFC 6762
//! multicast DNS with DNS-SD names).
//!
//! [`Mdns::new`] starts discovery on a [`Host`](lp2p_host::Host): on every up,
//! multicast-capable interface (IPv4 group 224.0.0.251 and IPv6 group ff02::fb, port 5353) it
//! asks `_p2p._udp.local PTR` and answers that question for us with
//! `_p2p._udp.local PTR <peer-name>._p2p._udp.local` plus TXT strings
//! `dnsaddr=<multiaddr>/p2p/<peer id>`, one per listen address reachable on that interface.
//! What other peers announce goes into the host's peerstore (with the announced TTL) and out
//! as [`MdnsEvent`]s.
//!
//! - The peer name is random, lower-case alphanumeric, 32 to 63 characters, new per start.
//! - Answers are split into packets that fit the interface MTU (at most
//!   [`MdnsConfig::max_packet_size`], 1500 bytes by default), each one complete on its own.
//! - Loopback addresses are advertised only on a loopback interface, which is used only when
//!   [`MdnsConfig::loopback`] is set (test setups); announced loopback addresses are kept
//!   only when they arrive on one.
//! - A query whose questions for us all have the QU bit gets a unicast answer when we
//!   multicast that answer within the last quarter of its TTL, else a multicast one (RFC 6762
//!   §5.4); a query from a port other than 5353 (a legacy resolver) gets a unicast answer
//!   with its ID and questions and TTLs of at most 10 s (§6.7), and the multicast one as
//!   before. Unicast goes only to queriers on the interface's link, at most
//!   [`MAX_UNICAST_ANSWERS`] a second per interface.
//! - Known-answer suppression (RFC 6762 §7.1): our queries list the peer PTRs we hold with
//!   more than half their TTL left (at most [`MAX_KNOWN_ANSWERS`], one packet's worth), and
//!   a query that lists our PTR with at least half our TTL gets no find-all answer.
//! - Discovered addresses expire with their TTL (capped at [`MdnsConfig::max_ttl`]); before
//!   that we query again. Peers, addresses per peer, records per packet and the event queue
//!   are bounded; every drop is counted in [`MdnsStats`].
//!
//! The protocol logic is a sans-IO [`core::Core`] (time passed in, bytes in, packets and
//! events out); [`wire`] parses and builds the DNS messages; the async shell ([`Mdns`]) owns
//! the sockets (socket2 + async-io, so it runs on async-std and smol alike) and re-reads the
//! interface list every [`MdnsConfig::interface_poll_interval`].
//!
//! # Example
//!
//! ```no_run
//! use futures::StreamExt;
//! use lp2p_host::Host;
//! use lp2p_mdns::{Mdns, MdnsConfig, MdnsEvent};
//! use lp2p_plaintext::Plaintext;
//! use lp2p_tcp::TcpTransport;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let host = Host::builder()
//!     .transport(TcpTransport::default())
//!     .security(Plaintext::new())
//!     .muxer(Yamux::default())
//!     .listen_on("/ip4/0.0.0.0/tcp/0".parse()?)
//!     .build()
//!     .await?;
//! let mdns = Mdns::new(&host, MdnsConfig::default())?;
//! let mut events = mdns.events();
//! while let Some(event) = events.next().await {
//!     if let MdnsEvent::Discovered { peer, addrs } = event {
//!         println!("found {peer} at {addrs:?}");
//!         host.connect(peer, addrs).await?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
pub mod core;
mod error;
pub mod iface;
pub mod proto;
mod shell;
mod sys;
pub mod wire;

pub use config::{
    DEFAULT_EVENT_CAPACITY, DEFAULT_INITIAL_QUERY_INTERVAL, DEFAULT_INTERFACE_POLL_INTERVAL,
    DEFAULT_MAX_ADDRS_PER_PEER, DEFAULT_MAX_PACKET_SIZE, DEFAULT_MAX_PEERS,
    DEFAULT_MAX_RECORDS_PER_PACKET, DEFAULT_MAX_TTL, DEFAULT_MIN_RESPONSE_INTERVAL,
    DEFAULT_QUERY_INTERVAL, DEFAULT_SERVICE_NAME, DEFAULT_TTL, GOODBYE_DELAY, MAX_KNOWN_ANSWERS,
    MAX_UNICAST_ANSWERS, MDNS_PORT, META_QUERY_NAME, MIN_PACKET_SIZE, MdnsConfig, RECV_BUFFER_SIZE,
    RESPONSE_DELAY_MAX, RESPONSE_DELAY_MIN, UNICAST_WINDOW,
};
pub use error::MdnsError;
pub use shell::{Mdns, MdnsEvent};
pub use sys::{IPV4_GROUP, IPV6_GROUP};

/// Counters of one mDNS service: traffic, malformed input, and what each limit dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MdnsStats {
    /// Datagrams received.
    pub packets_received: u64,
    /// Datagrams that were not a valid DNS message (or over a parse limit): dropped.
    pub malformed_packets: u64,
    /// Queries that asked something of us.
    pub queries_received: u64,
    /// Queries sent.
    pub queries_sent: u64,
    /// Answers sent (each may be several packets).
    pub responses_sent: u64,
    /// Answer packets sent.
    pub response_packets_sent: u64,
    /// Answers sent by unicast, to a querier whose questions for us had the QU bit (RFC 6762
    /// §5.4) or to a legacy querier (source port not 5353, §6.7); also in `responses_sent`.
    pub unicast_responses_sent: u64,
    /// Unicast answers not sent although asked for: the querier was not on the interface's
    /// link, or the interface had sent its most unicast answers for this second. A QU
    /// question is then answered by multicast, as a legacy query always is too.
    pub unicast_refused: u64,
    /// Known answers (RFC 6762 §7.1) listed in our queries: peers whose PTR we hold with more
    /// than half its TTL left.
    pub known_answers_sent: u64,
    /// Known answers left out of our queries: over [`MAX_KNOWN_ANSWERS`] or the packet size.
    pub known_answers_omitted: u64,
    /// Answers to queries for us left out because the querier listed them as known with at
    /// least half our TTL left (RFC 6762 §7.1); a query whose every answer was known is not
    /// answered.
    pub answers_suppressed: u64,
    /// Peer announcements read from responses (ours excluded).
    pub announcements_received: u64,
    /// Peers discovered (new ones).
    pub peers_discovered: u64,
    /// Peers expired or gone after a goodbye.
    pub peers_expired: u64,
    /// New peers ignored because the table was full.
    pub peers_dropped: u64,
    /// Addresses ignored because their peer had the maximum already.
    pub addrs_dropped: u64,
    /// Announced addresses ignored as unusable (loopback from elsewhere, unspecified,
    /// multicast, IPv6 link-local).
    pub addrs_unusable: u64,
    /// TXT strings that were not a `dnsaddr=<multiaddr>/p2p/<id>` of the announcing peer.
    pub txt_rejected: u64,
    /// Our own addresses not advertised because their TXT string would exceed 255 bytes.
    pub addrs_too_long: u64,
    /// Socket errors (opening, receiving).
    pub socket_errors: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Events not delivered to a subscriber that was not keeping up.
    pub events_dropped: u64,
}
