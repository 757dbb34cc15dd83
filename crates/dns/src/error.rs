use std::time::Duration;

use lp2p_core::Multiaddr;

/// Why a name could not be resolved.
///
/// Every variant names the DNS name (or the address) it is about. `lp2p_core::Error::Resolve`
/// carries it as its source, so `downcast_ref::<DnsError>()` recovers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN) or has no record of the type asked for.
    #[error("no {kind} record for {name}")]
    NoRecords {
        /// The name looked up.
        name: String,
        /// `A`, `AAAA`, `A/AAAA` or `TXT`.
        kind: &'static str,
    },
    /// The lookup failed: the server answered with an error, the answer was malformed, or
    /// the resolver gave up (a CNAME chain too long or looping, no server reachable).
    #[error("looking up the {kind} records of {name} failed: {reason}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// `A`, `AAAA`, `A/AAAA` or `TXT`.
        kind: &'static str,
        /// What the resolver said.
        reason: String,
    },
    /// The name is an alias (CNAME) whose chain comes back to itself.
    #[error("CNAME loop for {name}: {}", .chain.join(" -> "))]
    CnameLoop {
        /// The name looked up.
        name: String,
        /// The chain, ending with the first repeated name.
        chain: Vec<String>,
    },
    /// No server answered in time.
    #[error("looking up the {kind} records of {name} timed out")]
    Timeout {
        /// The name looked up.
        name: String,
        /// `A`, `AAAA`, `A/AAAA` or `TXT`.
        kind: &'static str,
    },
    /// The whole resolution of an address took longer than its deadline.
    #[error("resolving {addr} took longer than {after:?}")]
    Deadline {
        /// The address being resolved.
        addr: Multiaddr,
        /// The limit in force.
        after: Duration,
    },
    /// The resolution needed more lookups than allowed: a `/dnsaddr` loop, or a chain or
    /// tree too deep.
    #[error("resolving needed more than {max} DNS lookups (a dnsaddr loop or too deep a chain)")]
    TooManyLookups {
        /// The limit in force.
        max: usize,
    },
    /// `_dnsaddr.NAME` has TXT records, but none is a `dnsaddr=` record that ends with the
    /// rest of the address (its `/p2p/ID` for a peer's address).
    #[error("no dnsaddr record of {name} ends with {suffix:?}")]
    NoMatchingRecords {
        /// The `/dnsaddr` name.
        name: String,
        /// The suffix the records had to match (empty when any record would do).
        suffix: String,
    },
    /// Every result was dropped (it named another peer, or the host cannot dial it).
    #[error("{addr} resolved to no address this host can use")]
    NoAddresses {
        /// The address being resolved.
        addr: Multiaddr,
    },
    /// A `dnsaddr` TXT record that is not `dnsaddr=<multiaddr>`.
    #[error("invalid dnsaddr TXT record: {0}")]
    InvalidTxt(String),
    /// Neither the system configuration nor the configured fallback names a DNS server.
    #[error("no DNS server to ask: {0}")]
    NoServers(String),
    /// Several branches of a `/dnsaddr` tree failed and none gave an address.
    #[error("{}", join(.0))]
    Several(Vec<DnsError>),
}

fn join(errors: &[DnsError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
