//! Ping round trips between two hosts in one process: over the memory transport with
//! plaintext + yamux (the stack's own overhead: stream open, multistream-select, 32 bytes
//! each way, close) and over TCP on 127.0.0.1 with noise + yamux.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use lp2p_core::runtime::block_on;
use lp2p_host::{Host, HostBuilder};
use lp2p_memory::MemoryTransport;
use lp2p_noise::Noise;
use lp2p_ping::{Ping, PingConfig};
use lp2p_plaintext::Plaintext;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

fn pair(builder: impl Fn() -> HostBuilder, listen: &str) -> (Host, Host, Ping) {
    block_on(async {
        let server = builder()
            .listen_on(listen.parse().unwrap())
            .build()
            .await
            .unwrap();
        let _server_ping = Ping::new(&server, PingConfig::default());
        let client = builder().build().await.unwrap();
        let ping = Ping::new(&client, PingConfig::default());
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        (server, client, ping)
    })
}

/// A stack to measure: its name, how to build a host, where the server listens.
type Stack = (&'static str, fn() -> HostBuilder, &'static str);

fn bench(c: &mut Criterion) {
    let stacks: [Stack; 2] = [
        (
            "ping: memory + plaintext + yamux",
            || {
                Host::builder()
                    .transport(MemoryTransport::default())
                    .security(Plaintext::new())
                    .muxer(Yamux::default())
            },
            "/memory/0",
        ),
        (
            "ping: tcp 127.0.0.1 + noise + yamux",
            || {
                Host::builder()
                    .transport(TcpTransport::default())
                    .security(Noise::new())
                    .muxer(Yamux::default())
            },
            "/ip4/127.0.0.1/tcp/0",
        ),
    ];
    for (name, builder, listen) in stacks {
        let (server, client, ping) = pair(builder, listen);
        let peer = server.local_peer_id();
        c.bench_function(name, |b| {
            b.iter(|| block_on(ping.ping(&peer)).unwrap());
        });
        block_on(async {
            client.close().await;
            server.close().await;
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
