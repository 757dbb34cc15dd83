//! Hosts on the memory transport (plaintext and yamux) under a simulation, with identities
//! drawn from its seed.

use lp2p_core::{Multiaddr, Protocol};
use lp2p_host::{Host, HostBuilder, HostError};
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_yamux::Yamux;

use crate::runtime::SimHandle;

/// The address hosts listen on: `/memory/0`, a fresh number per listener.
pub fn any_memory_addr() -> Multiaddr {
    Multiaddr::empty().with(Protocol::Memory(0))
}

/// A host builder on the simulation's runtime with a seeded identity, the memory transport,
/// plaintext and yamux. Add listen addresses, configuration, or more upgraders before
/// building.
pub fn builder(sim: &SimHandle) -> HostBuilder {
    Host::builder()
        .runtime(sim.runtime().clone())
        .keypair(sim.keypair())
        .transport(MemoryTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
}

/// A host from [`builder`], listening on a fresh memory address.
pub async fn listening(sim: &SimHandle) -> Result<Host, HostError> {
    builder(sim).listen_on(any_memory_addr()).build().await
}

/// Two hosts, `(server, client)`: the server listens, the client is connected to it.
pub async fn pair(sim: &SimHandle) -> Result<(Host, Host), HostError> {
    let server = listening(sim).await?;
    let client = builder(sim).build().await?;
    client
        .connect(server.local_peer_id(), server.listen_addrs())
        .await?;
    Ok((server, client))
}

/// `n` listening hosts, not connected to each other.
pub async fn network(sim: &SimHandle, n: usize) -> Result<Vec<Host>, HostError> {
    let mut hosts = Vec::with_capacity(n);
    for _ in 0..n {
        hosts.push(listening(sim).await?);
    }
    Ok(hosts)
}

/// Connects every host to every later one in the list (a full mesh, one dial per pair).
pub async fn connect_all(hosts: &[Host]) -> Result<(), HostError> {
    for (i, dialer) in hosts.iter().enumerate() {
        for target in hosts.iter().skip(i.saturating_add(1)) {
            dialer
                .connect(target.local_peer_id(), target.listen_addrs())
                .await?;
        }
    }
    Ok(())
}

/// Closes every host (each waits for its own tasks to end).
pub async fn close_all(hosts: &[Host]) {
    for host in hosts {
        host.close().await;
    }
}
