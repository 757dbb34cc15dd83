//! The port mapper's configuration and its defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::MappingConfig;
use crate::http::DEFAULT_MAX_BODY;
use crate::ssdp::MULTICAST;

/// First wait for a NAT-PMP/PCP answer: 250 ms, RFC 6886 §3.1's initial retransmission
/// interval (and PCP's, RFC 6887 §8.1.1, is 3 s but a LAN gateway answers in
/// milliseconds); doubled after each try.
pub const DEFAULT_UDP_INITIAL_TIMEOUT: Duration = Duration::from_millis(250);
/// NAT-PMP/PCP tries before a method counts as unavailable: 4 tries wait 250 ms + 500 ms +
/// 1 s + 2 s = 3.75 s. RFC 6886 tries 9 times (64 s) because it has no fallback; we do.
pub const DEFAULT_UDP_ATTEMPTS: u32 = 4;
/// How long we collect SSDP answers: we send MX 2 (answers spread over 2 s), plus a
/// second for slow gateways.
pub const DEFAULT_SSDP_WAIT: Duration = Duration::from_secs(3);
/// One HTTP exchange with the gateway (connect, request, whole answer). Gateways answer in
/// well under a second; 10 s bounds a stuck one.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Events buffered per subscriber of [`PortMapper::events`](crate::PortMapper::events):
/// a handful of mappings make a few events an hour, so 64 is plenty.
pub const DEFAULT_EVENT_CAPACITY: usize = 64;
/// Time for removing every mapping when the service stops: under the host's default
/// 5 s close grace, so the removals are sent before the host closes (a gateway that does
/// not answer cannot hold the close up; its mappings lapse by themselves).
pub const DEFAULT_REMOVAL_BUDGET: Duration = Duration::from_secs(4);
/// Most listen ports mapped (per protocol together): a node listens on a few; this bounds
/// what a misconfigured host can make us ask the router for.
pub const DEFAULT_MAX_MAPPINGS: usize = 8;

/// How the [`PortMapper`](crate::PortMapper) works.
#[derive(Debug, Clone)]
pub struct PortMapperConfig {
    /// Methods, lifetimes, retries ([`MappingConfig`]).
    pub mapping: MappingConfig,
    /// The NAT-PMP/PCP server; `None` (the default) asks the default IPv4 gateway from
    /// `/proc/net/route`.
    pub gateway: Option<Ipv4Addr>,
    /// Where SSDP searches go: the multicast group 239.255.255.250:1900 by default, or a
    /// gateway's address asked directly.
    pub ssdp_target: SocketAddr,
    /// How long SSDP answers are collected ([`DEFAULT_SSDP_WAIT`]).
    pub ssdp_wait: Duration,
    /// First NAT-PMP/PCP retransmission timeout ([`DEFAULT_UDP_INITIAL_TIMEOUT`]).
    pub udp_initial_timeout: Duration,
    /// NAT-PMP/PCP tries ([`DEFAULT_UDP_ATTEMPTS`]).
    pub udp_attempts: u32,
    /// One HTTP exchange ([`DEFAULT_HTTP_TIMEOUT`]).
    pub http_timeout: Duration,
    /// Largest HTTP body (description, SOAP answer) read ([`DEFAULT_MAX_BODY`]).
    pub max_http_body: usize,
    /// Map TCP listen ports (default true).
    pub map_tcp: bool,
    /// Map UDP (QUIC) listen ports (default true).
    pub map_udp: bool,
    /// Most ports mapped ([`DEFAULT_MAX_MAPPINGS`]).
    pub max_mappings: usize,
    /// Time for all removals at stop ([`DEFAULT_REMOVAL_BUDGET`]).
    pub removal_budget: Duration,
    /// Accept a mapping whose external address is not public (a gateway behind another
    /// NAT, or a test network). Off by default: such an address cannot be dialed from the
    /// internet, so it is reported as a failure.
    pub allow_private_external: bool,
    /// The label routers show for UPnP mappings ("lp2p").
    pub description: String,
    /// Events buffered per subscriber ([`DEFAULT_EVENT_CAPACITY`]).
    pub event_capacity: usize,
}

impl Default for PortMapperConfig {
    fn default() -> Self {
        PortMapperConfig {
            mapping: MappingConfig::default(),
            gateway: None,
            ssdp_target: SocketAddr::V4(MULTICAST),
            ssdp_wait: DEFAULT_SSDP_WAIT,
            udp_initial_timeout: DEFAULT_UDP_INITIAL_TIMEOUT,
            udp_attempts: DEFAULT_UDP_ATTEMPTS,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            max_http_body: DEFAULT_MAX_BODY,
            map_tcp: true,
            map_udp: true,
            max_mappings: DEFAULT_MAX_MAPPINGS,
            removal_budget: DEFAULT_REMOVAL_BUDGET,
            allow_private_external: false,
            description: "lp2p".to_owned(),
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }
}
