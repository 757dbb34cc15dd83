//! `/dnsaddr` resolution: lp2p-dns and rust-libp2p's `libp2p-dns` 0.45 ask the same local
//! DNS server about the same nested records and must come to the same dial list.
//!
//! rust-libp2p resolves inside its transport's `dial`, so its list is read off an inner
//! transport that records every address it is asked to dial (and fails each, so
//! `libp2p-dns` goes on to the next). Order differs by design (`libp2p-dns` works its
//! addresses as a stack, lp2p depth first in record order); the lists are compared as sets
//! and both are printed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future;
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use libp2p::core::{Endpoint, Transport};
use libp2p::multiaddr::Multiaddr;
use lp2p_dns::testing::{TestDnsServer, TestRecord};

const PEER_A: &str = "12D3KooWGBr8hRyWqhhTNAyfrR4j3BbKBbFm8b8JYRC7TBzmvPS6";
const PEER_B: &str = "12D3KooWRBhwfeP2Y9CDkFRBAZ1pmxUadH36TKuk3KtKm5XXP8mA";

/// Records the addresses `libp2p-dns` hands it and fails every dial.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Multiaddr>>>);

impl Transport for Recorder {
    type Output = ();
    type Error = io::Error;
    type ListenerUpgrade = future::Pending<Result<(), io::Error>>;
    type Dial = future::Ready<Result<(), io::Error>>;

    fn listen_on(
        &mut self,
        _: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn remove_listener(&mut self, _: ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        self.0.lock().expect("lock").push(addr);
        Ok(future::ready(Err(io::Error::other("recorded, not dialed"))))
    }

    fn poll(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Poll::Pending
    }
}

/// A bootstrap zone two levels deep, with /dns4 and /dns6 names at the bottom, records for
/// another peer beside ours, and a TXT record that is not a dnsaddr.
fn zone(server: &TestDnsServer) {
    server.add_dnsaddr("boot.test", &format!("/dnsaddr/a1.boot.test/p2p/{PEER_A}"));
    server.add_dnsaddr("boot.test", &format!("/dnsaddr/a2.boot.test/p2p/{PEER_A}"));
    server.add_dnsaddr("boot.test", &format!("/dnsaddr/b.boot.test/p2p/{PEER_B}"));
    server.add(
        "_dnsaddr.boot.test",
        TestRecord::Txt(vec![b"v=spf1 -all".to_vec()]),
    );
    server.add_dnsaddr(
        "a1.boot.test",
        &format!("/ip4/10.0.0.1/tcp/4001/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "a1.boot.test",
        &format!("/dns4/a1.nodes.test/tcp/4002/ws/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "a2.boot.test",
        &format!("/dns6/a2.nodes.test/udp/4001/quic-v1/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "a2.boot.test",
        &format!("/ip6/fd00::2/tcp/4001/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "b.boot.test",
        &format!("/ip4/10.0.0.9/tcp/4001/p2p/{PEER_B}"),
    );
    server.add(
        "a1.nodes.test",
        TestRecord::A("10.0.1.1".parse().expect("ip")),
    );
    server.add(
        "a1.nodes.test",
        TestRecord::A("10.0.1.2".parse().expect("ip")),
    );
    server.add(
        "a2.nodes.test",
        TestRecord::Aaaa("fd00::a2".parse().expect("ip")),
    );
}

fn rust_libp2p_list(server: &TestDnsServer, addr: &Multiaddr) -> Vec<Multiaddr> {
    use hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
    };
    let connection = |protocol| {
        let mut c = ConnectionConfig::new(protocol);
        c.port = server.addr().port();
        c
    };
    let name_server = NameServerConfig::new(
        server.addr().ip(),
        true,
        vec![
            connection(ProtocolConfig::Udp),
            connection(ProtocolConfig::Tcp),
        ],
    );
    let config = ResolverConfig::from_parts(None, Vec::new(), vec![name_server]);
    let recorder = Recorder::default();
    let rt = lp2p_interop::tokio_runtime();
    rt.block_on(async {
        let mut dns = libp2p::dns::tokio::Transport::custom(
            recorder.clone(),
            config,
            ResolverOpts::default(),
        );
        let opts = DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        };
        let dial = dns.dial(addr.clone(), opts).expect("dial starts");
        let outcome = tokio::time::timeout(lp2p_interop::EXCHANGE_TIMEOUT, dial)
            .await
            .expect("libp2p-dns finished in time");
        assert!(outcome.is_err(), "every recorded dial fails");
    });
    recorder.0.lock().expect("lock").clone()
}

fn lp2p_list(server: &TestDnsServer, addr: &Multiaddr) -> Vec<Multiaddr> {
    let dns = lp2p_dns::DnsResolver::with_server(server.addr()).expect("resolver");
    lp2p_interop::run("lp2p-dns resolution", dns.resolve_addr(addr)).expect("resolved")
}

fn sorted(mut list: Vec<Multiaddr>) -> Vec<String> {
    let mut out: Vec<String> = list.drain(..).map(|a| a.to_string()).collect();
    out.sort();
    out
}

#[test]
fn nested_dnsaddr_gives_the_same_dial_list() {
    lp2p_interop::init_tracing();
    let server = TestDnsServer::start().expect("test DNS server");
    zone(&server);
    for addr in [
        format!("/dnsaddr/boot.test/p2p/{PEER_A}"),
        format!("/dnsaddr/boot.test/p2p/{PEER_B}"),
        format!("/dnsaddr/a1.boot.test/p2p/{PEER_A}"),
    ] {
        let addr: Multiaddr = addr.parse().expect("multiaddr");
        let ours = lp2p_list(&server, &addr);
        let theirs = rust_libp2p_list(&server, &addr);
        println!("{addr}\n  lp2p:        {ours:?}\n  rust-libp2p: {theirs:?}");
        assert!(!ours.is_empty());
        assert_eq!(sorted(ours), sorted(theirs), "{addr}");
    }
    // The full list for peer A: two levels of dnsaddr, a /dns4 with two A records, a /dns6.
    let addr: Multiaddr = format!("/dnsaddr/boot.test/p2p/{PEER_A}")
        .parse()
        .expect("multiaddr");
    assert_eq!(
        sorted(lp2p_list(&server, &addr)),
        sorted(
            [
                format!("/ip4/10.0.0.1/tcp/4001/p2p/{PEER_A}"),
                format!("/ip4/10.0.1.1/tcp/4002/ws/p2p/{PEER_A}"),
                format!("/ip4/10.0.1.2/tcp/4002/ws/p2p/{PEER_A}"),
                format!("/ip6/fd00::a2/udp/4001/quic-v1/p2p/{PEER_A}"),
                format!("/ip6/fd00::2/tcp/4001/p2p/{PEER_A}"),
            ]
            .iter()
            .map(|a| a.parse().expect("multiaddr"))
            .collect()
        )
    );
}
