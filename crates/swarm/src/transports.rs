//! One builder call for both kinds of transport.
//!
//! `SwarmBuilder::transport` (and `HostBuilder::transport`) take a byte-stream
//! [`RawTransport`] (TCP, WebSocket, memory: upgraded with the builder's security channels and
//! muxers) or an established-connection [`Transport`] (QUIC: its own security and streams)
//! alike. The marker type parameter of [`IntoTransport`] tells the two apart, so no type
//! implements both by accident and callers never name the marker.

use std::sync::Arc;

use lp2p_core::{RawTransport, Transport};

/// A transport as the builder keeps it until it knows the security channels and muxers.
#[derive(Clone)]
pub enum TransportKind {
    /// A byte-stream transport; the swarm wraps it in [`Upgraded`](crate::Upgraded).
    Raw(Arc<dyn RawTransport>),
    /// A transport that yields established connections itself.
    Established(Arc<dyn Transport>),
}

impl TransportKind {
    /// The transport's name.
    pub fn name(&self) -> &'static str {
        match self {
            TransportKind::Raw(t) => t.name(),
            TransportKind::Established(t) => t.name(),
        }
    }
}

impl std::fmt::Debug for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportKind::Raw(t) => write!(f, "Raw({})", t.name()),
            TransportKind::Established(t) => write!(f, "Established({})", t.name()),
        }
    }
}

/// Marks [`IntoTransport`] for byte-stream transports.
#[derive(Debug)]
pub enum RawMarker {}

/// Marks [`IntoTransport`] for established-connection transports.
#[derive(Debug)]
pub enum EstablishedMarker {}

/// Anything the builders' `transport` call takes: a [`RawTransport`] or a [`Transport`].
pub trait IntoTransport<Marker> {
    /// The transport, tagged with its kind.
    fn into_transport(self) -> TransportKind;
}

impl<T: RawTransport> IntoTransport<RawMarker> for T {
    fn into_transport(self) -> TransportKind {
        TransportKind::Raw(Arc::new(self))
    }
}

impl<T: Transport> IntoTransport<EstablishedMarker> for T {
    fn into_transport(self) -> TransportKind {
        TransportKind::Established(Arc::new(self))
    }
}
