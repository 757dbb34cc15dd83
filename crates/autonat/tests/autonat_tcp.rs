//! AutoNAT v2 between lp2p hosts on 127.0.0.1 over TCP + noise + yamux, on the real
//! runtime: probes that reach us, probes that cannot, dial data for another IP, the
//! background loop with identify, rate limits, and servers that lie or overcharge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use lp2p_autonat::message::{DialResponse, DialStatus, Response, ResponseStatus};
use lp2p_autonat::{
    AutonatClient, AutonatError, AutonatEvent, AutonatServer, ClientConfig, PROTOCOL_DIAL_REQUEST,
    ProbeResult, Reachability, ServerConfig,
};
use lp2p_core::framing::{read_frame, write_frame};
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, RuntimeHandle};
use lp2p_host::{Host, HostBuilder, HostStream};
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

fn local_server_config() -> ServerConfig {
    ServerConfig::default().allowing_private_addrs()
}

async fn server(config: ServerConfig) -> (Host, AutonatServer) {
    let host = tcp_builder().build().await.unwrap();
    let server = AutonatServer::new(&host, config);
    (host, server)
}

async fn client(config: ClientConfig) -> (Host, AutonatClient) {
    let host = tcp_builder().build().await.unwrap();
    let client = AutonatClient::new_allowing_private_addrs(&host, config);
    (host, client)
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

#[test]
fn a_listening_address_is_reachable_and_the_dial_back_leaves_no_connection() {
    run(async {
        let (s_host, server) = server(local_server_config()).await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(s_host.local_peer_id(), s_host.listen_addrs())
            .await
            .unwrap();
        let addr = c_host.listen_addrs()[0].clone();
        let result = client
            .probe(s_host.local_peer_id(), vec![addr.clone()])
            .await
            .unwrap();
        assert_eq!(result, ProbeResult::Reachable { addr });
        let stats = server.stats();
        assert_eq!((stats.requests, stats.dial_ok), (1, 1), "{stats:?}");
        assert_eq!(stats.dial_data_requested, 0, "same IP: no dial data");
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
        let (s_host, server) = server(local_server_config()).await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(s_host.local_peer_id(), s_host.listen_addrs())
            .await
            .unwrap();
        // A port nobody listens on: bind one, then let it go.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            format!("/ip4/127.0.0.1/tcp/{port}")
                .parse::<Multiaddr>()
                .unwrap()
        };
        let result = client
            .probe(s_host.local_peer_id(), vec![closed.clone()])
            .await
            .unwrap();
        assert_eq!(result, ProbeResult::Unreachable { addr: closed });
        assert_eq!(server.stats().dial_error, 1);
        close([c_host, s_host]).await;
    });
}

#[test]
fn another_ip_is_dialed_only_after_dial_data() {
    run(async {
        let (s_host, server) = server(local_server_config()).await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(s_host.local_peer_id(), s_host.listen_addrs())
            .await
            .unwrap();
        // The server sees us on 127.0.0.1; 127.0.0.2 is another IP (and we do not listen
        // there, so the dial fails after we paid).
        let port = c_host.listen_addrs()[0]
            .iter()
            .find_map(|p| match p {
                lp2p_core::Protocol::Tcp(p) => Some(p),
                _ => None,
            })
            .unwrap();
        let other: Multiaddr = format!("/ip4/127.0.0.2/tcp/{port}").parse().unwrap();
        let result = client
            .probe(s_host.local_peer_id(), vec![other.clone()])
            .await
            .unwrap();
        assert_eq!(result, ProbeResult::Unreachable { addr: other });
        let stats = server.stats();
        assert_eq!(stats.dial_data_requested, 1, "{stats:?}");
        assert_eq!(stats.dial_error, 1, "{stats:?}");
        close([c_host, s_host]).await;
    });
}

#[test]
fn the_background_loop_confirms_listen_addresses_and_adds_them_as_external() {
    run(async {
        let (s_host, _server) = server(local_server_config()).await;
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
        // Before any verdict the explanation says what the address waits for.
        let early = client.explain(&addr);
        assert_eq!(early.status, Reachability::Unknown, "{early}");
        assert!(early.report.is_some(), "{early}");
        loop {
            match events.next().await.expect("events end with the host") {
                AutonatEvent::StatusChanged { addr: a, status } => {
                    assert_eq!((a, status), (addr.clone(), Reachability::Public));
                    break;
                }
                AutonatEvent::Probed { result, .. } => {
                    assert_eq!(result, ProbeResult::Reachable { addr: addr.clone() });
                }
            }
        }
        assert_eq!(client.status(&addr), Reachability::Public);
        assert!(c_host.external_addrs().contains(&addr));
        // The explanation names the server that dialed back and the advertising.
        let why = client.explain(&addr);
        assert_eq!(why.status, Reachability::Public);
        assert!(why.external);
        assert_eq!(why.servers, (1, 0));
        let report = why.report.clone().expect("a tracked address");
        assert_eq!(report.reachable_by, vec![s_host.local_peer_id()]);
        assert!(
            why.reason
                .starts_with("1 distinct server reached it by dialing back"),
            "{why}"
        );
        assert!(
            why.reason.ends_with("advertised as an external address"),
            "{why}"
        );
        // An address that is not ours is not tested, and the answer says so.
        let other: lp2p_core::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let why = client.explain(&other);
        assert_eq!(
            why.not_tracked,
            Some(lp2p_autonat::NotTracked::NotOurs),
            "{why}"
        );
        close([c_host, s_host]).await;
    });
}

#[test]
fn the_per_peer_rate_limit_rejects() {
    run(async {
        let (s_host, server) = server(ServerConfig {
            max_requests_per_peer_per_minute: 1,
            ..local_server_config()
        })
        .await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(s_host.local_peer_id(), s_host.listen_addrs())
            .await
            .unwrap();
        let addrs = c_host.listen_addrs();
        client
            .probe(s_host.local_peer_id(), addrs.clone())
            .await
            .unwrap();
        let err = client
            .probe(s_host.local_peer_id(), addrs)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AutonatError::NotDialed {
                    status: ResponseStatus::RequestRejected,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(server.stats().rejected, 1);
        close([c_host, s_host]).await;
    });
}

#[test]
fn a_server_refuses_private_addresses_by_default() {
    run(async {
        let (s_host, server) = server(ServerConfig::default()).await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(s_host.local_peer_id(), s_host.listen_addrs())
            .await
            .unwrap();
        let err = client
            .probe(s_host.local_peer_id(), c_host.listen_addrs())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AutonatError::NotDialed {
                    status: ResponseStatus::DialRefused,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(server.stats().refused, 1);
        close([c_host, s_host]).await;
    });
}

/// A host whose dial-request handler answers with `answer` after reading the request,
/// without ever dialing.
async fn lying_server(answer: Response) -> Host {
    let host = tcp_builder().build().await.unwrap();
    host.set_stream_handler(PROTOCOL_DIAL_REQUEST, move |mut s: HostStream| async move {
        if read_frame(&mut s, 8192).await.is_ok() {
            let _ = write_frame(&mut s, &answer.encode()).await;
            let _ = futures::AsyncWriteExt::close(&mut s).await;
        }
    });
    host
}

#[test]
fn a_server_claiming_a_dial_it_never_made_is_not_believed() {
    run(async {
        let liar = lying_server(Response::Dial(DialResponse {
            status: ResponseStatus::Ok,
            addr_idx: 0,
            dial_status: DialStatus::Ok,
        }))
        .await;
        let (c_host, client) = client(ClientConfig {
            confidence: 1,
            ..ClientConfig::default()
        })
        .await;
        c_host
            .connect(liar.local_peer_id(), liar.listen_addrs())
            .await
            .unwrap();
        let addr = c_host.listen_addrs()[0].clone();
        client.add_candidate(&addr);
        let result = client
            .probe(liar.local_peer_id(), vec![addr.clone()])
            .await
            .unwrap();
        assert!(
            matches!(result, ProbeResult::Inconclusive { .. }),
            "{result:?}"
        );
        assert_eq!(client.status(&addr), Reachability::Unknown);
        assert!(c_host.external_addrs().is_empty());
        close([c_host, liar]).await;
    });
}

#[test]
fn a_server_asking_too_much_dial_data_is_refused() {
    run(async {
        let greedy = lying_server(Response::DialData {
            addr_idx: 0,
            num_bytes: 10_000_000,
        })
        .await;
        let (c_host, client) = client(ClientConfig::default()).await;
        c_host
            .connect(greedy.local_peer_id(), greedy.listen_addrs())
            .await
            .unwrap();
        let err = client
            .probe(greedy.local_peer_id(), c_host.listen_addrs())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AutonatError::DialDataRefused {
                    num_bytes: 10_000_000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(client.stats().inconclusive, 1);
        close([c_host, greedy]).await;
    });
}
