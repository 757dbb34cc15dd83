//! Port mappings for lp2p: asks the gateway to forward an external port to our listening
//! port, with PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP IGD (WANIPConnection /
//! WANPPPConnection over SSDP, HTTP and SOAP).
//!
//! - [`PortMapper`] is the host service: it maps the host's IPv4 TCP and QUIC listen ports
//!   with the first method that works (PCP, then NAT-PMP, then UPnP by default), renews
//!   them at half their lifetime, falls back to a permanent lease when a UPnP router refuses
//!   timed ones (fault 725), tries other external ports after a conflict (718), retries
//!   every method with exponential backoff (30 s up to 30 min) when all fail, and removes
//!   the mappings when the host closes. [`PortMapper::events`] reports mappings, renewals,
//!   failures (with each method's reason) and removals. Mapped addresses are offered to the
//!   host's [`AutonatClient`](lp2p_autonat::AutonatClient) as candidates; AutoNAT, not the
//!   mapper, decides whether they are reachable.
//! - [`GatewayClient`] runs single actions against a gateway (a port that is not a listen
//!   port, a one-off check).
//! - The decisions live in sans-IO code that owns no socket and reads no clock: the
//!   [`Mapping`] state machine, and the codecs in [`natpmp`], [`pcp`], [`ssdp`], [`xml`]
//!   (device descriptions), [`soap`] and [`http`] (a bounded HTTP/1.1 response parser).
//!   Every decoder is bounded and returns an error on bad input; none panics.
//!
//! NAT-PMP and PCP go to UDP port 5351 of the default gateway (from `/proc/net/route`, or
//! [`PortMapperConfig::gateway`]); UPnP finds the gateway by SSDP multicast (or
//! [`PortMapperConfig::ssdp_target`]) and speaks SOAP over HTTP to its WANIPConnection:2,
//! WANIPConnection:1 or WANPPPConnection:1 service.
//!
//! # Example
//!
//! Mapping a host's listen ports (needs a gateway that does port mapping):
//!
//! ```no_run
//! use lp2p_host::Host;
//! use lp2p_upnp::{PortMapper, PortMapperConfig, PortMappingEvent};
//! use futures::StreamExt;
//!
//! # lp2p_core::runtime::block_on(async {
//! let host = Host::builder()
//!     .transport(lp2p_tcp::TcpTransport::default())
//!     .security(lp2p_noise::Noise::new())
//!     .muxer(lp2p_yamux::Yamux::default())
//!     .listen_on("/ip4/0.0.0.0/tcp/4001".parse()?)
//!     .build()
//!     .await?;
//! let mapper = PortMapper::new(&host, PortMapperConfig::default())?;
//! let mut events = mapper.events();
//! while let Some(event) = events.next().await {
//!     if let PortMappingEvent::Mapped { external, method, .. } = event {
//!         println!("reachable at {external} (via {method}) if AutoNAT agrees");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The state machine on its own, in virtual time: PCP gets no answer, NAT-PMP maps the
//! port for an hour, the renewal comes after half of it, and shutdown removes it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use lp2p_upnp::{Action, Failure, Granted, Mapping, MappingConfig, MappingEvent, Method, Protocol};
//!
//! let t0 = Instant::now();
//! let mut m = Mapping::new(Protocol::Tcp, 4001, MappingConfig::default(), t0, 1);
//! assert!(matches!(m.poll_action(t0), Some(Action::Map { method: Method::Pcp, .. })));
//! m.handle_result(t0, Err(Failure::Unavailable("no answer".into())));
//! assert!(matches!(m.poll_action(t0), Some(Action::Map { method: Method::NatPmp, .. })));
//! let external = "203.0.113.7:4001".parse().unwrap();
//! m.handle_result(t0, Ok(Granted { external, lifetime: Duration::from_secs(3600) }));
//! assert!(matches!(m.poll_event(), Some(MappingEvent::Mapped { method: Method::NatPmp, .. })));
//! assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(1800)));
//! assert!(matches!(
//!     m.poll_action(t0 + Duration::from_secs(1800)),
//!     Some(Action::Map { renewal: true, .. })
//! ));
//! m.shutdown();
//! assert!(matches!(m.poll_action(t0), Some(Action::Unmap { method: Method::NatPmp, .. })));
//! ```
#![deny(clippy::indexing_slicing)]

mod client;
mod config;
mod error;
mod reader;
mod service;

pub mod http;
pub mod mapping;
pub mod natpmp;
pub mod pcp;
pub mod route;
pub mod soap;
pub mod ssdp;
pub mod xml;

pub use client::GatewayClient;
pub use config::{
    DEFAULT_EVENT_CAPACITY, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_MAPPINGS, DEFAULT_REMOVAL_BUDGET,
    DEFAULT_SSDP_WAIT, DEFAULT_UDP_ATTEMPTS, DEFAULT_UDP_INITIAL_TIMEOUT, PortMapperConfig,
};
pub use error::UpnpError;
pub use mapping::{Action, Failure, Granted, Mapping, MappingConfig, MappingEvent};
pub use service::{ActiveMapping, PortMapper, PortMappingEvent};

/// The transport protocol of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP (QUIC).
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A way of asking a gateway for a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Port Control Protocol (RFC 6887), UDP port 5351 of the default gateway.
    Pcp,
    /// NAT Port Mapping Protocol (RFC 6886), UDP port 5351 of the default gateway.
    NatPmp,
    /// UPnP Internet Gateway Device: SSDP discovery, then SOAP over HTTP.
    Upnp,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Pcp => "pcp",
            Method::NatPmp => "nat-pmp",
            Method::Upnp => "upnp",
        })
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "pcp" => Ok(Method::Pcp),
            "nat-pmp" | "natpmp" => Ok(Method::NatPmp),
            "upnp" => Ok(Method::Upnp),
            other => Err(format!(
                "unknown port-mapping method {other:?} (pcp, nat-pmp, upnp)"
            )),
        }
    }
}
