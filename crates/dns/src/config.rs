use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::cache::{DEFAULT_CACHE_ENTRIES, DEFAULT_MAX_TTL};
use crate::resolution::Limits;

/// Servers asked when the system has no DNS configuration (containers without
/// `/etc/resolv.conf`, Android): Cloudflare's and Google's public resolvers, over IPv4 and
/// IPv6, so a node can still reach a `/dnsaddr` bootstrap list. Override with
/// [`DnsConfig::fallback`].
pub const DEFAULT_FALLBACK_SERVERS: [SocketAddr; 4] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 53),
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
        53,
    ),
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
        53,
    ),
];

/// How long one query to one server may take: 5 s, hickory's and most stub resolvers'
/// default.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tries per query: 2, so one lost UDP packet does not fail a dial.
pub const DEFAULT_ATTEMPTS: usize = 2;

/// Deadline for resolving one address, all its lookups together: 10 s, the swarm's
/// transport timeout (which also bounds resolution of a dial candidate), and long enough
/// for one lookup's two tries of 5 s.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which servers to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Servers {
    /// The system's configuration (`/etc/resolv.conf` and the hosts file on Unix, the
    /// registry on Windows), or [`DnsConfig::fallback`] when there is none.
    System,
    /// Only these servers (UDP, then TCP for truncated answers); no hosts file. The
    /// `--dns-server` of `lp2p-node`.
    Only(Vec<SocketAddr>),
}

/// Settings of [`DnsResolver`](crate::DnsResolver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Which servers to ask (the system's by default).
    pub servers: Servers,
    /// Asked when the system configuration is missing or names no server
    /// ([`DEFAULT_FALLBACK_SERVERS`]).
    pub fallback: Vec<SocketAddr>,
    /// Depth, breadth and result bounds.
    pub limits: Limits,
    /// Per query and server ([`DEFAULT_QUERY_TIMEOUT`]).
    pub query_timeout: Duration,
    /// Tries per query ([`DEFAULT_ATTEMPTS`]).
    pub attempts: usize,
    /// Per address ([`DEFAULT_RESOLVE_TIMEOUT`]).
    pub resolve_timeout: Duration,
    /// Answers cached ([`DEFAULT_CACHE_ENTRIES`](crate::cache::DEFAULT_CACHE_ENTRIES)).
    pub cache_entries: usize,
    /// Longest an answer is cached ([`DEFAULT_MAX_TTL`](crate::cache::DEFAULT_MAX_TTL)).
    pub max_ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Servers::System,
            fallback: DEFAULT_FALLBACK_SERVERS.to_vec(),
            limits: Limits::default(),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            max_ttl: DEFAULT_MAX_TTL,
        }
    }
}

impl DnsConfig {
    /// The defaults, asking only `server`.
    pub fn with_server(server: SocketAddr) -> DnsConfig {
        DnsConfig {
            servers: Servers::Only(vec![server]),
            ..DnsConfig::default()
        }
    }
}
