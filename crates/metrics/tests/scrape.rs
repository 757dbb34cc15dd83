//! Two hosts over TCP on 127.0.0.1: what they did shows up in a scrape of the endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::time::Duration;

use async_io::Async;
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_host::{Host, HostStream};
use lp2p_metrics::Metrics;
use lp2p_noise::Noise;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

async fn host(listen: bool) -> Host {
    let mut b = Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default());
    if listen {
        b = b.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap());
    }
    b.build().await.unwrap()
}

async fn echo(mut stream: HostStream) {
    let mut buf = Vec::new();
    if stream.read_to_end(&mut buf).await.is_ok() {
        let _ = stream.write_all(&buf).await;
        let _ = stream.close().await;
    }
}

/// One HTTP request; the whole response (head and body).
async fn get(addr: SocketAddr, request: &str) -> String {
    let mut stream = Async::<StdTcpStream>::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The value of the sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_for(metrics: &Metrics, prefix: &str, value: f64) -> String {
    for _ in 0..600 {
        let text = metrics.encode();
        if sample(&text, prefix) == Some(value) {
            return text;
        }
        async_io::Timer::after(Duration::from_millis(50)).await;
    }
    panic!(
        "{prefix} never reached {value}; last scrape:\n{}",
        metrics.encode()
    );
}

#[test]
fn a_scrape_shows_connections_streams_bytes_and_closes() {
    block_on(async {
        let server = host(true).await;
        server.set_stream_handler("/echo/1.0.0", echo);
        let client = host(false).await;
        let metrics = Metrics::new(&client);
        let endpoint = metrics.serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = server.local_peer_id();
        let conn = client.connect(peer, server.listen_addrs()).await.unwrap();
        for _ in 0..2 {
            let mut s = client.new_stream(&peer, ["/echo/1.0.0"]).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            s.close().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, b"hello");
        }
        wait_for(
            &metrics,
            "lp2p_connections_opened_total{direction=\"out\",transport=\"tcp\"}",
            1.0,
        )
        .await;

        let response = get(
            endpoint.local_addr(),
            "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n",
        )
        .await;
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        assert_eq!(
            sample(
                body,
                "lp2p_connections{direction=\"out\",transport=\"tcp\",security=\"/noise\",muxer=\"/yamux/1.0.0\",limited=\"false\"}"
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(
                body,
                "lp2p_protocol_streams_total{protocol=\"/echo/1.0.0\",direction=\"out\"}"
            ),
            Some(2.0),
            "{body}"
        );
        assert_eq!(
            sample(
                body,
                "lp2p_protocol_bytes_total{protocol=\"/echo/1.0.0\",direction=\"out\"}"
            ),
            Some(10.0),
            "{body}"
        );
        assert_eq!(
            sample(
                body,
                "lp2p_protocol_bytes_total{protocol=\"/echo/1.0.0\",direction=\"in\"}"
            ),
            Some(10.0),
            "{body}"
        );
        assert_eq!(sample(body, "lp2p_streams_negotiating"), Some(0.0));
        // The resource manager: its limits, what it holds, nothing refused.
        let limits = client.resource_manager().limits();
        assert_eq!(
            sample(body, "lp2p_rcmgr_memory_limit_bytes{scope=\"system\"}"),
            format!("{}", limits.system).parse().ok(),
            "{body}"
        );
        assert!(sample(body, "lp2p_rcmgr_memory_bytes{scope=\"system\"}").is_some());
        assert_eq!(
            sample(body, "lp2p_rcmgr_memory_limit_bytes{scope=\"service\"}"),
            format!("{}", limits.service).parse().ok(),
            "{body}"
        );
        assert!(sample(body, "lp2p_rcmgr_peak_memory_bytes").unwrap() >= 256.0 * 1024.0);
        assert_eq!(
            sample(body, "lp2p_rcmgr_memory_denied_total{scope=\"peer\"}"),
            Some(0.0),
            "{body}"
        );
        // Its counts: the client's one TCP connection holds a descriptor.
        assert_eq!(
            sample(
                body,
                "lp2p_rcmgr_connections{scope=\"system\",direction=\"out\"}"
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(body, "lp2p_rcmgr_fds{scope=\"system\"}"),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(
                body,
                "lp2p_rcmgr_count_limit{scope=\"peer\",resource=\"inbound_streams\"}"
            ),
            Some(2048.0), // lp2p_rcmgr::DEFAULT_PEER_STREAMS
            "{body}"
        );
        assert!(!body.contains("lp2p_rcmgr_count_denied_total{"), "{body}");
        assert_eq!(
            sample(
                body,
                "lp2p_handshake_seconds_count{direction=\"out\",transport=\"tcp\",outcome=\"ok\"}"
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(body, "lp2p_dial_seconds_count{outcome=\"ok\"}"),
            Some(1.0),
            "{body}"
        );
        // Bounded labels: no peer id, no address.
        assert!(!body.contains(&peer.to_string()));
        assert!(!body.contains("127.0.0.1"));

        // Closing shows up as a close with its reason and one lifetime observation.
        conn.close().await;
        let text = wait_for(
            &metrics,
            "lp2p_connections_closed_total{direction=\"out\",transport=\"tcp\",reason=\"local\"}",
            1.0,
        )
        .await;
        assert_eq!(
            sample(
                &text,
                "lp2p_connection_lifetime_seconds_count{direction=\"out\",transport=\"tcp\"}"
            ),
            Some(1.0),
            "{text}"
        );

        // Anything but GET /metrics gets a short error, and a huge head is refused.
        let not_found = get(endpoint.local_addr(), "GET / HTTP/1.1\r\n\r\n").await;
        assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
        let post = get(endpoint.local_addr(), "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        let mut stream = Async::<StdTcpStream>::connect(endpoint.local_addr())
            .await
            .unwrap();
        // The server may stop reading and answer before all of it is written.
        let _ = stream.write_all(huge.as_bytes()).await;
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response).await;
        assert!(response.starts_with("HTTP/1.1 431"), "{response}");

        drop(endpoint);
        client.close().await;
        server.close().await;
    });
}

/// Every metric the Grafana dashboard in docs/ queries exists (the dashboard is not allowed
/// to drift from the code).
#[test]
fn the_dashboard_queries_only_metrics_that_exist() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/lp2p.json"
    ))
    .expect("docs/grafana/lp2p.json");
    let text = block_on(async {
        let server = host(true).await;
        let host = host(false).await;
        let metrics = Metrics::new(&host);
        // One connection opened and closed, so the event-fed families have samples.
        let conn = host
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        conn.close().await;
        wait_for(
            &metrics,
            "lp2p_connections_closed_total{direction=\"out\",transport=\"tcp\",reason=\"local\"}",
            1.0,
        )
        .await;
        let identify =
            lp2p_identify::Identify::new(&host, lp2p_identify::IdentifyConfig::default());
        // Scoring on, so the score histogram is exported too.
        let scored = lp2p_pubsub::GossipsubConfig {
            score: Some((
                lp2p_pubsub::PeerScoreParams::default(),
                lp2p_pubsub::PeerScoreThresholds::default(),
            )),
            ..lp2p_pubsub::GossipsubConfig::default()
        };
        let pubsub =
            lp2p_pubsub::PubSub::gossipsub_with(&host, lp2p_pubsub::Config::default(), scored)
                .unwrap();
        let _subscription = pubsub.subscribe("t").unwrap();
        let ping = lp2p_ping::Ping::new(&host, lp2p_ping::PingConfig::default());
        metrics.add_ping(&ping);
        let kad = lp2p_kad::Kademlia::new(&host, lp2p_kad::KadConfig::default()).unwrap();
        metrics.add_kad(&kad);
        metrics.add_identify(&identify);
        metrics.add_pubsub(&pubsub);
        let text = metrics.encode();
        host.close().await;
        server.close().await;
        text
    });
    let mut checked = 0;
    for (i, _) in dashboard.match_indices("lp2p_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name == "lp2p_" || dashboard[i + name.len()..].starts_with(".*") {
            continue; // a regular expression over names, not a name
        }
        let base = name
            .strip_suffix("_bucket")
            .unwrap_or(&name)
            .trim_end_matches("_total");
        assert!(
            text.contains(base),
            "the dashboard queries {name}, which lp2p does not export:\n{text}"
        );
        checked += 1;
    }
    assert!(
        checked > 10,
        "only {checked} metric names found in the dashboard"
    );
}

/// With scoring on, pubsub's peer scores are a histogram (no peer ids); without it, the
/// family is absent.
#[test]
fn pubsub_peer_scores_are_a_histogram_when_scoring_is_on() {
    block_on(async {
        let server = host(true).await;
        let client = host(false).await;
        let scored = lp2p_pubsub::GossipsubConfig {
            score: Some((
                lp2p_pubsub::PeerScoreParams::default(),
                lp2p_pubsub::PeerScoreThresholds::default(),
            )),
            ..lp2p_pubsub::GossipsubConfig::default()
        };
        let config = lp2p_pubsub::Config::default();
        let with_scores =
            lp2p_pubsub::PubSub::gossipsub_with(&client, config.clone(), scored).unwrap();
        let without = lp2p_pubsub::PubSub::gossipsub(&server, config).unwrap();
        let client_metrics = Metrics::new(&client);
        client_metrics.add_pubsub(&with_scores);
        let server_metrics = Metrics::new(&server);
        server_metrics.add_pubsub(&without);
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        // The peer's score starts at 0: counted in the buckets from le="0" up.
        wait_for(&client_metrics, "lp2p_pubsub_peer_scores_count", 1.0).await;
        let text = client_metrics.encode();
        assert_eq!(
            sample(&text, "lp2p_pubsub_peer_scores_bucket{le=\"-10\"}"),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "lp2p_pubsub_peer_scores_bucket{le=\"0\"}"),
            Some(1.0),
            "{text}"
        );
        // One unbounded bucket, labelled +Inf (not f64::MAX).
        assert_eq!(
            text.matches("lp2p_pubsub_peer_scores_bucket{le=\"+Inf\"} 1")
                .count(),
            1,
            "{text}"
        );
        assert!(!text.contains("e+308"), "{text}");
        assert!(!text.contains(&server.local_peer_id().to_string()));
        assert!(!server_metrics.encode().contains("pubsub_peer_scores"));
        client.close().await;
        server.close().await;
    });
}
