//! Whole hosts dialing names through the swarm's resolver hook: a `/dnsaddr` bootstrap
//! entry over TCP, and a `/dns4` name over `/tls/ws` whose certificate is only valid for
//! that name (so it connects only if the name survived resolution as SNI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, Protocol, RuntimeHandle};
use lp2p_dns::DnsResolver;
use lp2p_dns::testing::{TestDnsServer, TestRecord};
use lp2p_host::{Host, HostBuilder};
use lp2p_noise::Noise;
use lp2p_tcp::TcpTransport;
use lp2p_websocket::{TlsConfig, WsTransport};
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded; this only stops a hang.
const LIMIT: Duration = Duration::from_secs(120);

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(p) => Some(p),
            _ => None,
        })
        .unwrap()
}

fn builder() -> HostBuilder {
    Host::builder()
        .security(Noise::new())
        .muxer(Yamux::default())
}

#[test]
fn a_host_connects_to_a_dnsaddr_name() {
    let dns = TestDnsServer::start().unwrap();
    run(async {
        let server = builder()
            .transport(TcpTransport::default())
            .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
            .build()
            .await
            .unwrap();
        let id = server.local_peer_id();
        let p = port(&server.listen_addrs()[0]);
        dns.add_dnsaddr("boot.test", &format!("/dnsaddr/node.boot.test/p2p/{id}"));
        dns.add_dnsaddr(
            "node.boot.test",
            &format!("/dns4/node.test/tcp/{p}/p2p/{id}"),
        );
        dns.add("node.test", TestRecord::A("127.0.0.1".parse().unwrap()));

        let client = builder()
            .transport(TcpTransport::default())
            .resolver(DnsResolver::with_server(dns.addr()).unwrap())
            .build()
            .await
            .unwrap();
        let conn = client
            .connect(id, vec![ma(&format!("/dnsaddr/boot.test/p2p/{id}"))])
            .await
            .unwrap();
        assert_eq!(*conn.remote_addr(), ma(&format!("/ip4/127.0.0.1/tcp/{p}")));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn a_dns_name_over_tls_ws_keeps_its_sni() {
    let dns = TestDnsServer::start().unwrap();
    dns.add("wss.test", TestRecord::A("127.0.0.1".parse().unwrap()));
    run(async {
        // A certificate for the name only, not for 127.0.0.1.
        let (tls, cert) = TlsConfig::new().with_self_signed(&["wss.test"]).unwrap();
        let server = builder()
            .transport(WsTransport::new().with_tls(tls))
            .listen_on(ma("/ip4/127.0.0.1/tcp/0/tls/ws"))
            .build()
            .await
            .unwrap();
        let id = server.local_peer_id();
        let p = port(&server.listen_addrs()[0]);
        let client = builder()
            .transport(WsTransport::new().with_tls(TlsConfig::new().with_roots([cert]).unwrap()))
            .resolver(DnsResolver::with_server(dns.addr()).unwrap())
            .build()
            .await
            .unwrap();
        let conn = client
            .connect(id, vec![ma(&format!("/dns4/wss.test/tcp/{p}/tls/ws"))])
            .await
            .unwrap();
        assert_eq!(
            *conn.remote_addr(),
            ma(&format!("/ip4/127.0.0.1/tcp/{p}/tls/sni/wss.test/ws"))
        );
        client.close().await;
        server.close().await;
    });
}
