//! Hosts for the tests that run the service on real hosts.

use lp2p_host::Host;

/// A host on the memory transport with noise and yamux, listening on `/memory/0`.
pub async fn memory_host() -> Host {
    Host::builder()
        .transport(lp2p_memory::MemoryTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/memory/0".parse().unwrap())
        .build()
        .await
        .unwrap()
}
