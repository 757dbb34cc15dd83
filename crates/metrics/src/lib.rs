//! Prometheus metrics for an lp2p [`Host`], built on
//! [`prometheus-client`](prometheus_client), and a small HTTP endpoint that serves them.
//!
//! What is measured (names start with `lp2p_`):
//! - connections open, by direction, transport, security, muxer and whether limited; opened
//!   and closed totals and connection lifetimes, by direction and transport;
//! - streams and bytes per protocol, counted at the stream (so right for every transport);
//!   inbound streams count under the name their handler was registered with;
//! - refusals: the swarm's gates and limits, the host's negotiation slots and handler limits,
//!   failed negotiations, handler panics, and streams negotiating right now;
//! - identify (feature `identify`), ping (feature `ping`: outcomes and round-trip times),
//!   pubsub (feature `pubsub`: its counters, mesh and topic peer counts per subscribed topic,
//!   and with scoring on a histogram of peer scores)
//!   and Kademlia (feature `kad`: queries and their durations per kind, requests, refusals,
//!   store and routing-table sizes).
//!
//! Labels are bounded by construction: no peer id or address is ever a label; protocols are
//! the host's bounded protocol names ([`lp2p_host::MAX_TRAFFIC_PROTOCOLS`]); topics are the
//! ones this node subscribed to.
//!
//! Everything is read from the host when scraped: nothing runs in the background, and nothing
//! is added to the data path but the per-stream byte counters the host keeps anyway.
//!
//! ```no_run
//! # async fn example(host: lp2p_host::Host) -> Result<(), lp2p_metrics::MetricsError> {
//! use lp2p_metrics::Metrics;
//!
//! let metrics = Metrics::new(&host);
//! // Prometheus text, e.g. for a test or your own HTTP server:
//! let text = metrics.encode();
//! assert!(text.contains("lp2p_connections"));
//! // Or serve it at http://127.0.0.1:9100/metrics until the host closes:
//! let server = metrics.serve("127.0.0.1:9100".parse().unwrap())?;
//! println!("metrics at http://{}/metrics", server.local_addr());
//! # Ok(()) }
//! ```

mod error;
mod host;
mod http;
#[cfg(feature = "identify")]
mod identify;
#[cfg(feature = "kad")]
mod kad;
mod labels;
#[cfg(feature = "ping")]
mod ping;
#[cfg(feature = "pubsub")]
mod pubsub;
pub mod request;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lp2p_host::{Host, WeakHost};
use prometheus_client::registry::Registry;

pub use error::MetricsError;
pub use http::{MetricsServer, REQUEST_TIMEOUT};
pub use request::MAX_REQUEST_HEAD;

/// The metrics of one host: a Prometheus registry with the host's collectors in it. Cheap to
/// clone (a handle).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// Weak: the metrics (and their endpoint) never keep a host alive.
    host: WeakHost,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers the host's metrics (connections, streams, bytes, refusals) in a new
    /// registry.
    pub fn new(host: &Host) -> Metrics {
        let mut registry = Registry::with_prefix("lp2p");
        registry.register_collector(Box::new(host::HostCollector::new(host)));
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            host: host.downgrade(),
        }
    }

    /// Adds the identify service's counters.
    #[cfg(feature = "identify")]
    pub fn add_identify(&self, identify: &lp2p_identify::Identify) {
        self.with_registry(|r| {
            r.register_collector(Box::new(identify::IdentifyCollector::new(identify)));
        });
    }

    /// Adds Kademlia's queries (counts and durations per kind), requests, refusals, store
    /// sizes and routing-table size.
    #[cfg(feature = "kad")]
    pub fn add_kad(&self, kad: &lp2p_kad::Kademlia) {
        self.with_registry(|r| {
            r.register_collector(Box::new(kad::KadCollector::new(kad)));
        });
    }

    /// Adds the ping service's outcomes and round-trip times.
    #[cfg(feature = "ping")]
    pub fn add_ping(&self, ping: &lp2p_ping::Ping) {
        self.with_registry(|r| {
            r.register_collector(Box::new(ping::PingCollector::new(ping)));
        });
    }

    /// Adds pubsub's counters, its per-topic mesh and peer counts, and (with scoring on) a
    /// histogram of the connected peers' scores.
    #[cfg(feature = "pubsub")]
    pub fn add_pubsub(&self, pubsub: &lp2p_pubsub::PubSub) {
        self.with_registry(|r| {
            r.register_collector(Box::new(pubsub::PubsubCollector::new(pubsub)));
        });
    }

    /// Runs `f` on the registry, e.g. to register the application's own metrics next to
    /// lp2p's.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut registry)
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        self.with_registry(|r| {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, r);
        });
        text
    }

    /// Serves [`encode`](Metrics::encode) at `http://ADDR/metrics` on the host's runtime
    /// until the returned server is dropped or the host closes. Port 0 picks a free port
    /// ([`MetricsServer::local_addr`] says which).
    pub fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let host = self.host.upgrade().ok_or(MetricsError::HostGone)?;
        let metrics = self.clone();
        http::serve(move || metrics.encode(), &host, addr)
    }
}
