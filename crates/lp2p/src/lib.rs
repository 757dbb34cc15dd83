//! lp2p: a libp2p networking stack in Rust.
//!
//! This facade crate re-exports the lp2p components behind cargo features, so an
//! application depends on one crate and picks what it needs:
//!
//! | feature | component | default |
//! |---|---|---|
//! | `tcp` | [`transport::tcp`]: TCP transport | yes |
//! | `quic` | `transport::quic`: QUIC transport (`/udp/P/quic-v1`, TLS 1.3 inside) | no |
//! | `memory` | `transport::memory`: in-process transport | no |
//! | `websocket` | `transport::websocket`: `/ws`, `/tls/ws` | no |
//! | `dns` | `dns`: `/dns*` and `/dnsaddr` resolution | no |
//! | `noise` | [`security::noise`]: `/noise` | yes |
//! | `tls` | `security::tls`: `/tls/1.0.0` | no |
//! | `plaintext` | `security::plaintext`: `/plaintext/2.0.0` (tests only) | no |
//! | `yamux` | [`muxer::yamux`]: `/yamux/1.0.0` | yes |
//! | `mplex` | [`muxer::mplex`]: `/mplex/6.7.0` | yes |
//! | `muxer-shell` | [`muxer::shell`]: the async shell of every muxer, to write one (on with `yamux` or `mplex`) | yes |
//! | `identify` | `identify`: `/ipfs/id/1.0.0` and push | yes |
//! | `ping` | `ping`: `/ipfs/ping/1.0.0` | yes |
//! | `pubsub` | `pubsub`: floodsub and gossipsub | yes |
//! | `kad` | `kad`: Kademlia DHT, `/ipfs/kad/1.0.0` | no |
//! | `metrics` | `metrics`: Prometheus metrics and a `/metrics` endpoint | no |
//! | `relay` | `relay`: circuit relay v2, the relay service and the `/p2p-circuit` client transport | no |
//! | `dcutr` | `dcutr`: hole punching from relayed connections (TCP simultaneous open, QUIC) | no |
//! | `autonat` | `autonat`: AutoNAT v2 client and server (per-address reachability) | no |
//! | `upnp` | `upnp`: port mappings on the gateway with PCP, NAT-PMP and UPnP IGD | no |
//! | `request-response` (+ `json`, `cbor`) | `request_response`: generic request-response protocols and their codecs | no |
//! | `async-std` / `smol` | the runtime | async-std |
//!
//! [`HostBuilderExt::with_defaults`] gives a host with TCP (and QUIC with the `quic`
//! feature), noise, yamux then mplex, identify and ping (as far as those features are
//! enabled), and with the `dns` feature the system's DNS resolver. The services register
//! their handles on the host: `host.service::<Identify>()` and `host.service::<Ping>()` hand
//! them back.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p::{Host, HostBuilderExt, HostStream};
//!
//! # lp2p::core::runtime::block_on(async {
//! let server = Host::builder().with_defaults().listen_on("/ip4/127.0.0.1/tcp/0".parse()?).build().await?;
//! server.set_stream_handler("/echo/1.0.0", |mut stream: HostStream| async move {
//!     let mut line = Vec::new();
//!     if stream.read_to_end(&mut line).await.is_ok() {
//!         let _ = stream.write_all(&line).await;
//!     }
//! });
//!
//! let client = Host::builder().with_defaults().build().await?;
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let mut stream = client.new_stream(&server.local_peer_id(), ["/echo/1.0.0"]).await?;
//! stream.write_all(b"hello\n").await?;
//! stream.close().await?;
//! let mut answer = Vec::new();
//! stream.read_to_end(&mut answer).await?;
//! assert_eq!(answer, b"hello\n");
//! client.close().await;
//! server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub use lp2p_core as core;
pub use lp2p_core::{
    Keypair, Multiaddr, PeerId, Protocol, ProtocolId, PublicKey, RuntimeHandle, identity,
};
pub use lp2p_host as host;
pub use lp2p_host::{
    CloseReason, Connection, ConnectionEvent, ConnectionEvents, ConnectionId, Direction, Host,
    HostBuilder, HostConfig, HostError, HostEvent, HostStream, StreamHandler, SwarmConfig,
    SwarmError,
};
pub use lp2p_multiselect as multiselect;
pub use lp2p_peerstore as peerstore;
pub use lp2p_peerstore::Peerstore;
pub use lp2p_rcmgr as rcmgr;
pub use lp2p_rcmgr::ResourceManager;
pub use lp2p_swarm as swarm;

/// AutoNAT v2 (feature `autonat`).
#[cfg(feature = "autonat")]
pub use lp2p_autonat as autonat;
/// DCUtR hole punching (feature `dcutr`).
#[cfg(feature = "dcutr")]
pub use lp2p_dcutr as dcutr;
#[cfg(feature = "dns")]
pub use lp2p_dns as dns;
#[cfg(feature = "identify")]
pub use lp2p_identify as identify;
#[cfg(feature = "identify")]
pub use lp2p_identify::{Identify, IdentifyConfig, IdentifyEvent, IdentifyInfo};
#[cfg(feature = "kad")]
pub use lp2p_kad as kad;
/// mDNS discovery (feature `mdns`, off by default: it multicasts on the local network).
#[cfg(feature = "mdns")]
pub use lp2p_mdns as mdns;
#[cfg(feature = "mdns")]
pub use lp2p_mdns::{Mdns, MdnsConfig, MdnsEvent};
/// Prometheus metrics (feature `metrics`).
#[cfg(feature = "metrics")]
pub use lp2p_metrics as metrics;
#[cfg(feature = "ping")]
pub use lp2p_ping as ping;
#[cfg(feature = "ping")]
pub use lp2p_ping::{Ping, PingConfig};
#[cfg(feature = "pubsub")]
pub use lp2p_pubsub as pubsub;
/// Circuit relay v2 (feature `relay`).
#[cfg(feature = "relay")]
pub use lp2p_relay as relay;
#[cfg(feature = "request-response")]
pub use lp2p_request_response as request_response;
/// Port mappings with PCP, NAT-PMP and UPnP IGD (feature `upnp`).
#[cfg(feature = "upnp")]
pub use lp2p_upnp as upnp;

/// Transports.
pub mod transport {
    #[cfg(feature = "memory")]
    pub use lp2p_memory as memory;
    #[cfg(feature = "quic")]
    pub use lp2p_quic as quic;
    #[cfg(feature = "tcp")]
    pub use lp2p_tcp as tcp;
    #[cfg(feature = "websocket")]
    pub use lp2p_websocket as websocket;
}

/// Security channels.
pub mod security {
    #[cfg(feature = "noise")]
    pub use lp2p_noise as noise;
    #[cfg(feature = "plaintext")]
    pub use lp2p_plaintext as plaintext;
    #[cfg(feature = "tls")]
    pub use lp2p_tls as tls;
}

/// Stream muxers.
pub mod muxer {
    #[cfg(feature = "mplex")]
    pub use lp2p_mplex as mplex;
    #[cfg(feature = "muxer-shell")]
    pub use lp2p_muxer_shell as shell;
    #[cfg(feature = "yamux")]
    pub use lp2p_yamux as yamux;
}

/// Adds the usual components to a [`HostBuilder`].
pub trait HostBuilderExt: Sized {
    /// TCP, QUIC, noise, yamux then mplex, identify and ping, and the system's DNS resolver —
    /// each as far as its feature is enabled. Add transports, security channels or muxers of your own after it; the ones
    /// added here come first in preference order. Once built, `host.service::<Identify>()`
    /// and `host.service::<Ping>()` give the handles of the services started here:
    ///
    /// ```
    /// # #[cfg(all(feature = "identify", feature = "ping"))]
    /// # lp2p::core::runtime::block_on(async {
    /// use lp2p::{Host, HostBuilderExt, Identify, Ping};
    /// let host = Host::builder().with_defaults().build().await?;
    /// let ping: Ping = host.service().expect("with_defaults started ping");
    /// let identify: Identify = host.service().expect("with_defaults started identify");
    /// # let _ = (ping, identify);
    /// host.close().await;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    fn with_defaults(self) -> Self;
}

impl HostBuilderExt for HostBuilder {
    fn with_defaults(self) -> Self {
        let b = self;
        #[cfg(feature = "tcp")]
        let b = b.transport(lp2p_tcp::TcpTransport::default());
        #[cfg(feature = "quic")]
        let b = b.transport(lp2p_quic::QuicTransport::default());
        #[cfg(feature = "noise")]
        let b = b.security(lp2p_noise::Noise::new());
        #[cfg(feature = "yamux")]
        let b = b.muxer(lp2p_yamux::Yamux::default());
        #[cfg(feature = "mplex")]
        let b = b.muxer(lp2p_mplex::Mplex::default());
        #[cfg(feature = "dns")]
        let b = match lp2p_dns::DnsResolver::system() {
            Ok(resolver) => b.resolver(resolver),
            Err(err) => {
                tracing::warn!(%err, "no DNS resolver: names in addresses will not be dialed");
                b
            }
        };
        services::attach_defaults(b)
    }
}

mod services {
    use lp2p_host::HostBuilder;

    /// Starts identify and ping with the host (when their features are on), with their
    /// default configurations, before it listens. The services live as long as the host;
    /// `host.close()` stops them. Each registers its handle on the host
    /// (`host.service::<Identify>()`).
    pub(crate) fn attach_defaults(b: HostBuilder) -> HostBuilder {
        #[cfg(feature = "identify")]
        let b = b.on_start(|host| {
            let _identify =
                lp2p_identify::Identify::new(host, lp2p_identify::IdentifyConfig::default());
        });
        #[cfg(feature = "ping")]
        let b = b.on_start(|host| {
            let _ping = lp2p_ping::Ping::new(host, lp2p_ping::PingConfig::default());
        });
        b
    }

    #[cfg(all(test, feature = "identify", feature = "ping", feature = "tcp"))]
    mod tests {
        use futures::StreamExt;
        use lp2p_host::Host;
        use lp2p_identify::IdentifyEvent;

        use crate::HostBuilderExt;

        #[test]
        fn defaults_identify_and_answer_pings() {
            // Generous: CI machines are slow and loaded; this only stops a hang.
            let limit = std::time::Duration::from_secs(120);
            let rt = lp2p_core::RuntimeHandle::default();
            let test = async {
                let listen = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
                let server = Host::builder().with_defaults().listen_on(listen);
                let server = server.build().await.unwrap();
                let client = Host::builder().with_defaults().build().await.unwrap();
                let mut events = lp2p_identify::subscribe(&client);
                client
                    .connect(server.local_peer_id(), server.listen_addrs())
                    .await
                    .unwrap();
                let info = loop {
                    if let Some(IdentifyEvent::Identified { peer, info }) = events.next().await
                        && peer == server.local_peer_id()
                    {
                        break info;
                    }
                };
                for protocol in [
                    lp2p_identify::ID_PROTOCOL,
                    lp2p_identify::PUSH_PROTOCOL,
                    lp2p_ping::PROTOCOL,
                ] {
                    assert!(info.protocols.iter().any(|p| p == protocol), "{protocol}");
                }
                assert!(info.signed_record);
                // The handles of the services with_defaults started.
                assert!(client.service::<lp2p_identify::Identify>().is_some());
                let ping = client.service::<lp2p_ping::Ping>().unwrap();
                ping.ping(&server.local_peer_id()).await.unwrap();
                client.close().await;
                server.close().await;
            };
            lp2p_core::runtime::block_on(rt.timeout(limit, test)).expect("test timed out");
        }
    }
}

// The guides' code blocks are compiled and run as doc tests of this crate. `guides` is a
// symlink to the workspace's `docs/guides`: `cargo package` copies the files it points to into
// the crate, so these paths resolve in the published crate too (a path out of the crate
// directory would not).
#[cfg(doctest)]
#[doc = include_str!("../guides/protocols.md")]
mod guide_protocols {}
#[cfg(doctest)]
#[doc = include_str!("../guides/extending.md")]
mod guide_extending {}
#[cfg(all(doctest, feature = "pubsub"))]
#[doc = include_str!("../guides/pubsub.md")]
mod guide_pubsub {}
