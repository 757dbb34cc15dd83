//! The resolver against the test DNS server on 127.0.0.1: every record shape and every
//! misbehaviour gives the expected addresses or a precise error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use lp2p_core::runtime::block_on;
use lp2p_core::{AddressResolver, Multiaddr, RuntimeHandle};
use lp2p_dns::testing::{TestDnsServer, TestRecord};
use lp2p_dns::{DnsConfig, DnsError, DnsResolver, MAX_LOOKUPS, MAX_RESULTS, MAX_TXT_RECORDS};

/// Generous: CI machines are slow and loaded; this only stops a hang.
const LIMIT: Duration = Duration::from_secs(120);

const PEER_A: &str = "12D3KooWGBr8hRyWqhhTNAyfrR4j3BbKBbFm8b8JYRC7TBzmvPS6";
const PEER_B: &str = "12D3KooWRBhwfeP2Y9CDkFRBAZ1pmxUadH36TKuk3KtKm5XXP8mA";

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn resolver(server: &TestDnsServer) -> DnsResolver {
    DnsResolver::with_server(server.addr()).unwrap()
}

fn v4(s: &str) -> TestRecord {
    TestRecord::A(s.parse().unwrap())
}

#[test]
fn a_and_aaaa() {
    let server = TestDnsServer::start().unwrap();
    server.add("host.test", v4("10.0.0.1"));
    server.add("host.test", v4("10.0.0.2"));
    server.add("host.test", TestRecord::Aaaa("fd00::1".parse().unwrap()));
    server.add("v4only.test", v4("10.0.0.3"));
    let dns = resolver(&server);
    run(async {
        assert_eq!(
            dns.resolve_addr(&ma("/dns4/host.test/tcp/1"))
                .await
                .unwrap(),
            vec![ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/10.0.0.2/tcp/1")]
        );
        assert_eq!(
            dns.resolve_addr(&ma("/dns6/host.test/tcp/1"))
                .await
                .unwrap(),
            vec![ma("/ip6/fd00::1/tcp/1")]
        );
        assert_eq!(
            dns.resolve_addr(&ma(&format!("/dns/HOST.test/udp/2/quic-v1/p2p/{PEER_A}")))
                .await
                .unwrap(),
            vec![
                ma(&format!("/ip4/10.0.0.1/udp/2/quic-v1/p2p/{PEER_A}")),
                ma(&format!("/ip4/10.0.0.2/udp/2/quic-v1/p2p/{PEER_A}")),
                ma(&format!("/ip6/fd00::1/udp/2/quic-v1/p2p/{PEER_A}")),
            ]
        );
        // /dns of a name with only A records: the AAAA side's "no record" is not an error.
        assert_eq!(
            dns.resolve_addr(&ma("/dns/v4only.test/tcp/1"))
                .await
                .unwrap(),
            vec![ma("/ip4/10.0.0.3/tcp/1")]
        );
        // /dns6 of it is.
        let err = dns
            .resolve_addr(&ma("/dns6/v4only.test/tcp/1"))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "no AAAA record for v4only.test");
    });
}

#[test]
fn a_tls_ws_name_keeps_its_sni() {
    let server = TestDnsServer::start().unwrap();
    server.add("wss.test", v4("10.0.0.9"));
    let dns = resolver(&server);
    run(async {
        assert_eq!(
            dns.resolve_addr(&ma("/dns4/wss.test/tcp/443/tls/ws"))
                .await
                .unwrap(),
            vec![ma("/ip4/10.0.0.9/tcp/443/tls/sni/wss.test/ws")]
        );
        assert_eq!(
            dns.resolve_addr(&ma("/dns4/wss.test/tcp/443/wss"))
                .await
                .unwrap(),
            vec![ma("/ip4/10.0.0.9/tcp/443/tls/sni/wss.test/ws")]
        );
    });
}

/// The spec's shape: a root record per peer, each pointing at a per-node name with the
/// node's addresses, one of them another /dns4 name.
fn bootstrap_zone(server: &TestDnsServer) {
    server.add_dnsaddr("boot.test", &format!("/dnsaddr/a.boot.test/p2p/{PEER_A}"));
    server.add_dnsaddr("boot.test", &format!("/dnsaddr/b.boot.test/p2p/{PEER_B}"));
    server.add_dnsaddr(
        "a.boot.test",
        &format!("/ip4/10.1.0.1/tcp/4001/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "a.boot.test",
        &format!("/dns4/node-a.test/tcp/4002/ws/p2p/{PEER_A}"),
    );
    server.add_dnsaddr(
        "b.boot.test",
        &format!("/ip4/10.2.0.1/tcp/4001/p2p/{PEER_B}"),
    );
    server.add("node-a.test", v4("10.1.0.2"));
}

#[test]
fn nested_dnsaddr_filtered_by_peer() {
    let server = TestDnsServer::start().unwrap();
    bootstrap_zone(&server);
    let dns = resolver(&server);
    run(async {
        assert_eq!(
            dns.resolve_addr(&ma(&format!("/dnsaddr/boot.test/p2p/{PEER_A}")))
                .await
                .unwrap(),
            vec![
                ma(&format!("/ip4/10.1.0.1/tcp/4001/p2p/{PEER_A}")),
                ma(&format!("/ip4/10.1.0.2/tcp/4002/ws/p2p/{PEER_A}")),
            ]
        );
        // b.boot.test was never asked: its suffix is another peer's.
        assert_eq!(server.queries_for("_dnsaddr.b.boot.test"), 0);
        // Without a peer id, the whole list.
        let all = dns.resolve_addr(&ma("/dnsaddr/boot.test")).await.unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        // Through the trait the swarm uses.
        assert!(dns.can_resolve(&ma("/dnsaddr/boot.test")));
        assert!(!dns.can_resolve(&ma("/ip4/1.2.3.4/tcp/1")));
        assert_eq!(
            dns.resolve(&ma(&format!("/dnsaddr/b.boot.test/p2p/{PEER_B}")))
                .await
                .unwrap(),
            vec![ma(&format!("/ip4/10.2.0.1/tcp/4001/p2p/{PEER_B}"))]
        );
    });
}

#[test]
fn a_record_for_another_peer_only() {
    let server = TestDnsServer::start().unwrap();
    server.add_dnsaddr("other.test", &format!("/ip4/10.0.0.1/tcp/1/p2p/{PEER_B}"));
    let dns = resolver(&server);
    run(async {
        let err = dns
            .resolve(&ma(&format!("/dnsaddr/other.test/p2p/{PEER_A}")))
            .await
            .unwrap_err();
        let lp2p_core::Error::Resolve { source, .. } = &err else {
            panic!("{err}")
        };
        let dns_err = source.downcast_ref::<DnsError>().unwrap();
        assert!(
            matches!(dns_err, DnsError::NoMatchingRecords { name, suffix } if name == "other.test" && suffix.contains(PEER_A)),
            "{dns_err}"
        );
    });
}

#[test]
fn a_dnsaddr_loop_stops_at_the_lookup_limit() {
    let server = TestDnsServer::start().unwrap();
    server.add_dnsaddr("loop.test", "/dnsaddr/loop2.test");
    server.add_dnsaddr("loop2.test", "/dnsaddr/loop.test");
    let dns = resolver(&server);
    run(async {
        let err = dns
            .resolve_addr(&ma("/dnsaddr/loop.test"))
            .await
            .unwrap_err();
        assert_eq!(err, DnsError::TooManyLookups { max: MAX_LOOKUPS });
    });
    // The cache answers after the first round of each name.
    assert!(server.queries_for("_dnsaddr.loop.test") <= 2);
}

#[test]
fn too_many_records_are_cut_to_the_limit() {
    let server = TestDnsServer::start().unwrap();
    for i in 0..40 {
        server.add_dnsaddr("wide.test", &format!("/ip4/10.3.0.{i}/tcp/1"));
    }
    // Forty records do not fit in 512 bytes of UDP: this also goes over TCP.
    let dns = resolver(&server);
    run(async {
        let out = dns.resolve_addr(&ma("/dnsaddr/wide.test")).await.unwrap();
        assert_eq!(out.len(), MAX_TXT_RECORDS);
        assert_eq!(out[0], ma("/ip4/10.3.0.0/tcp/1"));
    });
}

#[test]
fn nxdomain_is_named() {
    let server = TestDnsServer::start().unwrap();
    let dns = resolver(&server);
    run(async {
        let err = dns
            .resolve_addr(&ma("/dns4/missing.test/tcp/1"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            DnsError::NoRecords {
                name: "missing.test".into(),
                kind: "A"
            }
        );
        let err = dns
            .resolve_addr(&ma("/dnsaddr/missing.test"))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "no TXT record for _dnsaddr.missing.test");
    });
}

#[test]
fn a_slow_server_times_out() {
    let server = TestDnsServer::start().unwrap();
    server.add("slow.test", v4("10.0.0.1"));
    server.set_slow("slow.test", Duration::from_secs(3));
    let config = DnsConfig {
        query_timeout: Duration::from_millis(300),
        attempts: 1,
        ..DnsConfig::with_server(server.addr())
    };
    let dns = DnsResolver::new(config, RuntimeHandle::default()).unwrap();
    run(async {
        let err = dns
            .resolve_addr(&ma("/dns4/slow.test/tcp/1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DnsError::Timeout { name, .. } if name == "slow.test"),
            "{err:?}"
        );
    });
}

#[test]
fn a_truncated_udp_answer_is_retried_over_tcp() {
    let server = TestDnsServer::start().unwrap();
    for i in 0..60u8 {
        server.add("big.test", TestRecord::A(Ipv4Addr::new(10, 4, 0, i)));
    }
    let dns = resolver(&server);
    run(async {
        let out = dns.resolve_addr(&ma("/dns4/big.test/tcp/1")).await.unwrap();
        assert_eq!(out.len(), 60);
    });
    // One query over UDP (truncated), one over TCP.
    assert_eq!(server.queries_for("big.test"), 2);
}

#[test]
fn a_huge_answer_is_bounded() {
    let server = TestDnsServer::start().unwrap();
    // More records than one DNS message can carry: the server sends what fits in 64 KiB.
    for i in 0..6000u32 {
        let [_, _, hi, lo] = i.to_be_bytes();
        server.add("huge.test", TestRecord::A(Ipv4Addr::new(10, 5, hi, lo)));
        if i < 600 {
            server.add_dnsaddr("hugetxt.test", &format!("/ip4/10.6.{hi}.{lo}/tcp/1"));
        }
    }
    let dns = resolver(&server);
    run(async {
        let out = dns
            .resolve_addr(&ma("/dns4/huge.test/tcp/1"))
            .await
            .unwrap();
        assert_eq!(out.len(), MAX_RESULTS);
        let out = dns
            .resolve_addr(&ma("/dnsaddr/hugetxt.test"))
            .await
            .unwrap();
        assert_eq!(out.len(), MAX_TXT_RECORDS);
    });
}

#[test]
fn cnames_are_followed_and_a_cname_loop_fails() {
    let server = TestDnsServer::start().unwrap();
    server.add("alias.test", TestRecord::Cname("target.test".into()));
    server.add("target.test", v4("10.7.0.1"));
    server.add("loop-a.test", TestRecord::Cname("loop-b.test".into()));
    server.add("loop-b.test", TestRecord::Cname("loop-a.test".into()));
    let dns = resolver(&server);
    run(async {
        assert_eq!(
            dns.resolve_addr(&ma("/dns4/alias.test/tcp/1"))
                .await
                .unwrap(),
            vec![ma("/ip4/10.7.0.1/tcp/1")]
        );
        let err = dns
            .resolve_addr(&ma("/dns4/loop-a.test/tcp/1"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "CNAME loop for loop-a.test: loop-a.test -> loop-b.test -> loop-a.test"
        );
    });
}

#[test]
fn answers_are_cached_for_their_ttl() {
    let server = TestDnsServer::start().unwrap();
    server.add_with_ttl("cached.test", v4("10.8.0.1"), 3600);
    server.add_with_ttl("uncached.test", v4("10.8.0.2"), 0);
    let dns = resolver(&server);
    run(async {
        for _ in 0..3 {
            dns.resolve_addr(&ma("/dns4/cached.test/tcp/1"))
                .await
                .unwrap();
            dns.resolve_addr(&ma("/dns4/uncached.test/tcp/1"))
                .await
                .unwrap();
        }
    });
    assert_eq!(server.queries_for("cached.test"), 1);
    assert_eq!(server.queries_for("uncached.test"), 3);
    dns.clear_cache();
    run(async {
        dns.resolve_addr(&ma("/dns4/cached.test/tcp/1"))
            .await
            .unwrap();
    });
    assert_eq!(server.queries_for("cached.test"), 2);
}

#[test]
fn the_system_configuration_is_read() {
    // This machine has a resolv.conf (or the fallback servers stand in): either way a
    // resolver is built with at least one server. No query leaves the machine.
    let dns = DnsResolver::system().unwrap();
    assert!(!dns.servers().is_empty());
}
