//! DNS address resolution for lp2p: `/dns`, `/dns4`, `/dns6` and `/dnsaddr`.
//!
//! [`DnsResolver`] is an [`lp2p_core::AddressResolver`]: the swarm runs every dial
//! candidate through it before ranking, so names work for every transport (TCP, QUIC,
//! WebSocket). It follows the multiformats rules:
//!
//! - `/dns4/NAME` and `/dns6/NAME` become `/ip4` and `/ip6` addresses from A and AAAA
//!   records; `/dns/NAME` from both (IPv4 first).
//! - `/dnsaddr/NAME` reads the TXT records at `_dnsaddr.NAME`; each `dnsaddr=<multiaddr>`
//!   record that ends with the rest of the address (for a peer's address, its `/p2p/ID`)
//!   replaces it, recursively (`protocols/DNSADDR.md`).
//! - Bounded: at most [`MAX_LOOKUPS`] lookups per address, [`MAX_TXT_RECORDS`] records per
//!   TXT answer, [`MAX_RESULTS`] results, a deadline per address.
//! - A name followed by `/tls/ws` (or `/wss`) stays in the address as `/tls/sni/NAME/ws`,
//!   so the WebSocket transport sends it as SNI and checks the certificate for it.
//! - Answers are cached for their TTL (capped), on the runtime's clock.
//!
//! The rules live in a sans-IO core ([`Resolution`], [`dnsaddr`], [`Cache`]) that tests
//! drive without a network; the shell asks hickory's resolver, run on async-io through
//! [`AsyncIoProvider`] (no tokio). The system configuration is read
//! (`/etc/resolv.conf`, ...) and, where there is none (containers, Android), the
//! [`DEFAULT_FALLBACK_SERVERS`] are asked instead of failing; [`DnsConfig::with_server`]
//! asks one server only.
//!
//! # Example
//!
//! ```no_run
//! use lp2p_dns::DnsResolver;
//!
//! # lp2p_core::runtime::block_on(async {
//! let dns = DnsResolver::system()?;
//! let addrs = dns
//!     .resolve_addr(&"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN".parse()?)
//!     .await?;
//! for addr in addrs {
//!     println!("{addr}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! And without a network, the core alone:
//!
//! ```
//! use lp2p_dns::{Answer, Limits, Resolution, Step};
//!
//! let mut r = Resolution::new("/dns4/example.com/tcp/443/tls/ws".parse()?, Limits::default());
//! let Step::Lookup(query) = r.poll() else { unreachable!() };
//! assert_eq!(query.name, "example.com");
//! r.on_answer(Ok(Answer::Ips(vec!["192.0.2.1".parse()?])));
//! assert_eq!(
//!     r.poll(),
//!     Step::Done(Ok(vec!["/ip4/192.0.2.1/tcp/443/tls/sni/example.com/ws".parse()?]))
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
mod config;
pub mod dnsaddr;
mod error;
mod resolution;
mod resolver;
pub mod runtime;
#[cfg(feature = "test-server")]
pub mod testing;

pub use cache::Cache;
pub use config::{
    DEFAULT_ATTEMPTS, DEFAULT_FALLBACK_SERVERS, DEFAULT_QUERY_TIMEOUT, DEFAULT_RESOLVE_TIMEOUT,
    DnsConfig, Servers,
};
pub use error::DnsError;
pub use resolution::{
    Answer, Limits, MAX_LOOKUPS, MAX_RESULTS, MAX_TXT_RECORDS, Query, QueryKind, Resolution, Step,
    has_name,
};
pub use resolver::DnsResolver;
pub use runtime::AsyncIoProvider;
