//! AutoNAT v1 between lp2p hosts on 127.0.0.1 over TCP + noise + yamux, on the real
//! runtime: a probe that reaches us, one that cannot, a third party's address refused,
//! private addresses refused by default, the rate limit, malformed and foreign-peer
//! requests, and the client's background loop falling back to v1 (and preferring v2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use lp2p_autonat::v1::V1Status;
use lp2p_autonat::v1::message::{DialRequest, DialResponse};
use lp2p_autonat::{
    AutonatClient, AutonatError, AutonatEvent, AutonatServer, AutonatV1Server, ClientConfig,
    PROTOCOL_V1, ProbeResult, ProtocolVersion, Reachability, ServerConfig, V1ServerConfig,
};
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, PeerId, RuntimeHandle};
use lp2p_host::{Host, HostBuilder};
use lp2p_identify::{Identify, IdentifyConfig};
use lp2p_noise::Noise;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded. Only a bound against hangs, never a timing
/// assertion.
const LIMIT: Duration = Duration::from_secs(120);

fn tcp_builder() -> HostBuilder {
    Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
}

async fn v1_server(config: V1ServerConfig) -> (Host, AutonatV1Server) {
    let host = tcp_builder().build().await.unwrap();
    let server = AutonatV1Server::new(&host, config);
    (host, server)
}

async fn client(config: ClientConfig) -> (Host, AutonatClient) {
    let host = tcp_builder().build().await.unwrap();
    let client = AutonatClient::new_allowing_private_addrs(&host, config);
    (host, client)
}

/// A v1 server that dials loopback, and a client connected to it.
async fn pair(config: V1ServerConfig) -> (Host, AutonatV1Server, Host, AutonatClient) {
    let (s_host, server) = v1_server(config).await;
    let (c_host, client) = client(ClientConfig::default()).await;
    c_host
        .connect(s_host.local_peer_id(), s_host.listen_addrs())
        .await
        .unwrap();
    (s_host, server, c_host, client)
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    block_on(async {
        RuntimeHandle::try_default()
            .unwrap()
            .timeout(LIMIT, test)
            .await
            .expect("the test hung");
    });
}

async fn close(hosts: impl IntoIterator<Item = Host>) {
    for h in hosts {
        h.close().await;
    }
}

fn refused_with(result: Result<ProbeResult, AutonatError>, expected: V1Status) {
    match result {
        Err(AutonatError::V1NotDialed { status, .. }) => assert_eq!(status, expected),
        other => panic!("expected a {expected:?} answer, got {other:?}"),
    }
}

#[test]
fn a_listening_address_is_reachable_and_the_dial_back_is_closed() {
    run(async {
        let (s_host, server, c_host, client) =
            pair(V1ServerConfig::default().allowing_private_addrs()).await;
        let addr = c_host.listen_addrs()[0].clone();
        let result = client
            .probe_v1(s_host.local_peer_id(), vec![addr.clone()])
            .await
            .unwrap();
        assert_eq!(result, ProbeResult::Reachable { addr });
        let stats = server.stats();
        assert_eq!((stats.requests, stats.dial_ok), (1, 1), "{stats:?}");
        // The server closes its dial-back connection; the request's connection stays.
        let deadline = s_host.runtime().now() + LIMIT;
        while s_host.connections(&c_host.local_peer_id()).len() > 1 {
            assert!(s_host.runtime().now() < deadline);
            s_host.runtime().sleep(Duration::from_millis(20)).await;
        }
        close([c_host, s_host]).await;
    });
}

#[test]
fn a_closed_port_is_unreachable() {
    run(async {
        let (s_host, server, c_host, client) =
            pair(V1ServerConfig::default().allowing_private_addrs()).await;
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            format!("/ip4/127.0.0.1/tcp/{port}")
                .parse::<Multiaddr>()
                .unwrap()
        };
        let result = client
            .probe_v1(s_host.local_peer_id(), vec![closed.clone()])
            .await
            .unwrap();
        assert_eq!(result, ProbeResult::Unreachable { addr: closed });
        assert_eq!(server.stats().dial_error, 1);
        close([c_host, s_host]).await;
    });
}

#[test]
fn a_third_partys_address_is_refused_and_never_dialed() {
    run(async {
        let (s_host, server, c_host, client) =
            pair(V1ServerConfig::default().allowing_private_addrs()).await;
        // Our own listening port, but on 127.0.0.2: another IP than the one the server
        // sees us on (127.0.0.1), so a third party as far as the server can tell.
        let port = c_host.listen_addrs()[0]
            .iter()
            .find_map(|p| match p {
                lp2p_core::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        let other: Multiaddr = format!("/ip4/127.0.0.2/tcp/{port}").parse().unwrap();
        let result = client.probe_v1(s_host.local_peer_id(), vec![other]).await;
        refused_with(result, V1Status::DialRefused);
        let stats = server.stats();
        assert_eq!(
            (stats.refused_addrs, stats.dial_ok, stats.dial_error),
            (1, 0, 0),
            "{stats:?}"
        );
        assert_eq!(client.stats().inconclusive, 1);
        close([c_host, s_host]).await;
    });
}

#[test]
fn private_addresses_are_refused_by_default() {
    run(async {
        let (s_host, server, c_host, client) = pair(V1ServerConfig::default()).await;
        let result = client
            .probe_v1(s_host.local_peer_id(), c_host.listen_addrs())
            .await;
        refused_with(result, V1Status::DialRefused);
        assert_eq!(server.stats().refused_addrs, 1);
        close([c_host, s_host]).await;
    });
}

#[test]
fn the_per_peer_rate_limit_refuses() {
    run(async {
        let (s_host, server, c_host, client) = pair(V1ServerConfig {
            max_requests_per_peer_per_minute: 2,
            ..V1ServerConfig::default().allowing_private_addrs()
        })
        .await;
        let addr = c_host.listen_addrs()[0].clone();
        for _ in 0..2 {
            let r = client
                .probe_v1(s_host.local_peer_id(), vec![addr.clone()])
                .await
                .unwrap();
            assert_eq!(r, ProbeResult::Reachable { addr: addr.clone() });
        }
        let third = client
            .probe_v1(s_host.local_peer_id(), vec![addr.clone()])
            .await;
        refused_with(third, V1Status::DialRefused);
        let stats = server.stats();
        assert_eq!((stats.dial_ok, stats.refused_rate), (2, 1), "{stats:?}");
        close([c_host, s_host]).await;
    });
}

/// Sends `body` as one v1 request on a new stream and returns the decoded answer.
async fn raw_request(c_host: &Host, server: PeerId, body: &[u8]) -> DialResponse {
    let mut s = c_host.new_stream(&server, [PROTOCOL_V1]).await.unwrap();
    write_frame(&mut s, body).await.unwrap();
    s.flush().await.unwrap();
    let answer = read_frame(&mut s, 4096).await.unwrap();
    DialResponse::decode(&answer).unwrap()
}

#[test]
fn malformed_and_foreign_peer_requests_are_bad_requests() {
    run(async {
        let (s_host, server, c_host, _client) =
            pair(V1ServerConfig::default().allowing_private_addrs()).await;
        let garbage = raw_request(&c_host, s_host.local_peer_id(), &[0xff; 12]).await;
        assert_eq!(garbage.status, V1Status::BadRequest);
        let foreign = DialRequest {
            peer: PeerId::random(),
            addrs: c_host.listen_addrs(),
        };
        let answer = raw_request(&c_host, s_host.local_peer_id(), &foreign.encode()).await;
        assert_eq!(answer.status, V1Status::BadRequest);
        let stats = server.stats();
        assert_eq!(
            (stats.malformed, stats.refused_other_peer, stats.dial_ok),
            (1, 1, 0),
            "{stats:?}"
        );
        close([c_host, s_host]).await;
    });
}

/// The client's loop with identify on both sides; returns the version of the first probe
/// and checks the listen address ends public and external.
async fn background_loop(s_host: Host) -> ProtocolVersion {
    let _s_identify = Identify::new(&s_host, IdentifyConfig::default());
    let (c_host, client) = client(ClientConfig {
        confidence: 1,
        ..ClientConfig::default()
    })
    .await;
    let _c_identify = Identify::new(&c_host, IdentifyConfig::default());
    let mut events = client.events();
    c_host
        .connect(s_host.local_peer_id(), s_host.listen_addrs())
        .await
        .unwrap();
    let addr = c_host.listen_addrs()[0].clone();
    let mut first = None;
    loop {
        match events.next().await.expect("events end with the host") {
            AutonatEvent::StatusChanged { addr: a, status } => {
                assert_eq!((a, status), (addr.clone(), Reachability::Public));
                break;
            }
            AutonatEvent::Probed {
                result, version, ..
            } => {
                assert_eq!(result, ProbeResult::Reachable { addr: addr.clone() });
                first.get_or_insert(version);
            }
        }
    }
    assert_eq!(client.status(&addr), Reachability::Public);
    assert!(c_host.external_addrs().contains(&addr));
    close([c_host, s_host]).await;
    first.expect("a probe before the status change")
}

#[test]
fn the_background_loop_falls_back_to_v1_servers() {
    run(async {
        let (s_host, server) = v1_server(V1ServerConfig::default().allowing_private_addrs()).await;
        assert_eq!(background_loop(s_host).await, ProtocolVersion::V1);
        assert_eq!(server.stats().dial_ok, 1);
    });
}

#[test]
fn the_background_loop_prefers_v2_when_the_server_speaks_both() {
    run(async {
        let (s_host, v1) = v1_server(V1ServerConfig::default().allowing_private_addrs()).await;
        let v2 = AutonatServer::new(&s_host, ServerConfig::default().allowing_private_addrs());
        assert_eq!(background_loop(s_host).await, ProtocolVersion::V2);
        assert_eq!((v1.stats().requests, v2.stats().dial_ok), (0, 1));
    });
}
