//! The request-response service between hosts over the memory transport (and one test over
//! TCP + noise): every codec, every error kind told apart, the limits and back-pressure, and
//! the connection kept alive while a request is pending.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use lp2p_core::runtime::block_on;
use lp2p_host::{Host, HostEvent, SwarmConfig};
use lp2p_memory::MemoryTransport;
use lp2p_noise::Noise;
use lp2p_request_response::{
    Codec, Config, InboundRequest, LengthPrefixed, ProtocolSupport, RequestError, RequestResponse,
};
use lp2p_yamux::Yamux;

const P: &str = "/test/rr/1";
const FULL: [(&str, ProtocolSupport); 1] = [(P, ProtocolSupport::Full)];
/// Generous: tests only ever wait this long when something is broken.
const LONG: Duration = Duration::from_secs(60);

async fn host_with(swarm: SwarmConfig) -> Host {
    Host::builder()
        .transport(MemoryTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
        .swarm_config(swarm)
        .listen_on("/memory/0".parse().unwrap())
        .build()
        .await
        .unwrap()
}

async fn host() -> Host {
    host_with(SwarmConfig::default()).await
}

/// A server answering with `f`, and a connected client; the client's service uses `config`.
async fn pair<C: Codec + Clone>(
    codec: C,
    config: Config,
) -> (Host, Host, RequestResponse<C>, RequestResponse<C>) {
    let (server, client) = (host().await, host().await);
    let served = RequestResponse::new(&server, FULL, codec.clone(), Config::default()).unwrap();
    let requester = RequestResponse::new(&client, FULL, codec, config).unwrap();
    client
        .connect(server.local_peer_id(), server.listen_addrs())
        .await
        .unwrap();
    (server, client, served, requester)
}

async fn close(hosts: &[&Host]) {
    for h in hosts {
        h.close().await;
    }
}

#[test]
fn length_prefixed_round_trip_and_many_in_parallel() {
    block_on(async {
        let (server, client, served, requester) =
            pair(LengthPrefixed::default(), Config::default()).await;
        served.serve(|_, request: Vec<u8>| async move {
            let mut answer = request;
            answer.reverse();
            Some(answer)
        });
        let peer = server.local_peer_id();
        assert_eq!(
            requester
                .send_request(&peer, b"abc".to_vec())
                .await
                .unwrap(),
            b"cba"
        );
        // An empty message is a message (the prefix says so), not "no answer".
        assert_eq!(
            requester.send_request(&peer, Vec::new()).await.unwrap(),
            b""
        );
        let all = futures::future::join_all((0..50u8).map(|i| {
            let requester = requester.clone();
            async move { requester.send_request(&peer, vec![i, 1]).await }
        }))
        .await;
        for (i, answer) in all.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), vec![1, i as u8]);
        }
        close(&[&client, &server]).await;
    });
}

/// `serve` keeps answering once the handle it was called on is dropped (the stream handler
/// only holds the service weakly; the serving task holds it). The crate's criterion bench
/// dropped its handle this way and got "closed without answering" on every request.
#[test]
fn serving_outlives_the_dropped_handle() {
    block_on(async {
        let (server, client, served, requester) =
            pair(LengthPrefixed::default(), Config::default()).await;
        served.serve(|_, request: Vec<u8>| async move { Some(request) });
        drop(served);
        let peer = server.local_peer_id();
        for i in 0..3u8 {
            assert_eq!(
                requester.send_request(&peer, vec![i]).await.unwrap(),
                vec![i]
            );
        }
        close(&[&client, &server]).await;
    });
}

#[cfg(feature = "json")]
#[test]
fn json_round_trip() {
    use lp2p_request_response::Json;
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Ask {
        question: String,
    }
    block_on(async {
        let (server, client, served, requester) =
            pair(Json::<Ask, Vec<u32>>::default(), Config::default()).await;
        served.serve(|_, ask: Ask| async move { Some(vec![ask.question.len() as u32]) });
        let answer = requester
            .send_request(
                &server.local_peer_id(),
                Ask {
                    question: "why".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(answer, vec![3]);
        close(&[&client, &server]).await;
    });
}

#[cfg(feature = "cbor")]
#[test]
fn cbor_round_trip() {
    use lp2p_request_response::Cbor;
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    enum Op {
        Sum(Vec<i64>),
        Echo { text: String },
    }
    block_on(async {
        let (server, client, served, requester) =
            pair(Cbor::<Op, Op>::default(), Config::default()).await;
        served.serve(|_, op: Op| async move {
            Some(match op {
                Op::Sum(values) => Op::Sum(vec![values.iter().sum()]),
                echo @ Op::Echo { .. } => echo,
            })
        });
        let peer = server.local_peer_id();
        let sum = requester
            .send_request(&peer, Op::Sum(vec![1, -2, 40, 3]))
            .await
            .unwrap();
        assert_eq!(sum, Op::Sum(vec![42]));
        let echo = Op::Echo {
            text: "ünïcode".into(),
        };
        assert_eq!(
            requester.send_request(&peer, echo.clone()).await.unwrap(),
            echo
        );
        close(&[&client, &server]).await;
    });
}

#[test]
fn protocol_not_supported() {
    block_on(async {
        let (server, client) = (host().await, host().await);
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let err = requester
            .send_request(&server_connected(&client, &server).await, b"x".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RequestError::ProtocolNotSupported { peer, protocols }
                if *peer == server.local_peer_id() && protocols[0].as_str() == P),
            "{err}"
        );
        close(&[&client, &server]).await;
    });
}

async fn server_connected(client: &Host, server: &Host) -> lp2p_core::PeerId {
    client
        .connect(server.local_peer_id(), server.listen_addrs())
        .await
        .unwrap();
    server.local_peer_id()
}

#[test]
fn outbound_only_registers_no_handler_and_inbound_only_sends_nothing() {
    block_on(async {
        let h = host().await;
        let _out = RequestResponse::new(
            &h,
            [(P, ProtocolSupport::Outbound)],
            LengthPrefixed::default(),
            Config::default(),
        )
        .unwrap();
        assert!(!h.protocols().iter().any(|p| p.as_str() == P));
        let inbound = RequestResponse::new(
            &h,
            [("/in/1", ProtocolSupport::Inbound)],
            LengthPrefixed::default(),
            Config::default(),
        )
        .unwrap();
        assert!(h.protocols().iter().any(|p| p.as_str() == "/in/1"));
        let err = inbound
            .send_request(&lp2p_core::PeerId::random(), Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::OutboundDisabled));
        h.close().await;
    });
}

#[test]
fn timeout_when_the_responder_holds_the_request() {
    block_on(async {
        let config = Config::default().with_request_timeout(Duration::from_millis(300));
        let (server, client, served, requester) = pair(LengthPrefixed::default(), config).await;
        let mut requests = served.requests().unwrap();
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = held.clone();
        server.spawn(async move {
            while let Some(r) = requests.next().await {
                keep.lock().unwrap().push(r);
            }
        });
        let err = requester
            .send_request(&server.local_peer_id(), b"wait".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Timeout { after, .. } if after == Duration::from_millis(300)),
            "{err}"
        );
        close(&[&client, &server]).await;
    });
}

#[test]
fn closed_without_answering() {
    block_on(async {
        let (server, client, served, requester) =
            pair(LengthPrefixed::default(), Config::default()).await;
        served.serve(|_, _: Vec<u8>| async move { None });
        let err = requester
            .send_request(&server.local_peer_id(), b"?".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::RemoteClosedWithoutAnswer { .. }),
            "{err}"
        );
        // The server counted the omission once its stream task finished.
        let rt = server.runtime().clone();
        rt.timeout(LONG, async {
            while served.stats().responses_omitted != 1 {
                rt.sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        close(&[&client, &server]).await;
    });
}

#[test]
fn messages_too_large_on_every_side() {
    block_on(async {
        let small = LengthPrefixed {
            max_request_size: 100,
            max_response_size: 100,
        };
        let (server, client) = (host().await, host().await);
        let server_codec = LengthPrefixed {
            max_request_size: 100,
            max_response_size: 10_000,
        };
        let served = RequestResponse::new(&server, FULL, server_codec, Config::default()).unwrap();
        served.serve(|_, request: Vec<u8>| async move { Some(vec![0u8; request.len() * 10]) });
        let peer = server_connected(&client, &server).await;
        let big = LengthPrefixed {
            max_request_size: 10_000,
            max_response_size: 100,
        };
        let requester = RequestResponse::new(&client, FULL, big, Config::default()).unwrap();

        // Our own request over our limit: refused before anything is sent.
        let strict = RequestResponse::new(
            &client,
            [("/other/1", ProtocolSupport::Outbound)],
            small,
            Config::default(),
        )
        .unwrap();
        let err = strict.send_request(&peer, vec![1; 200]).await.unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::MessageTooLarge {
                    what: "request",
                    max: 100,
                    ..
                }
            ),
            "{err}"
        );

        // The server's limit: it resets the stream, counted.
        let err = requester
            .send_request(&peer, vec![1; 500])
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Reset { .. }), "{err}");
        assert_eq!(served.stats().inbound_too_large, 1);

        // A response over our limit: refused while reading.
        let err = requester
            .send_request(&peer, vec![1; 20])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::MessageTooLarge {
                    what: "response",
                    max: 100,
                    ..
                }
            ),
            "{err}"
        );

        // Within every limit.
        let answered = requester.send_request(&peer, vec![1; 9]).await;
        assert_eq!(answered.unwrap().len(), 90);
        close(&[&client, &server]).await;
    });
}

#[test]
fn responding_over_the_limit_fails_at_respond_and_resets() {
    block_on(async {
        let small = LengthPrefixed {
            max_request_size: 100,
            max_response_size: 10,
        };
        let (server, client, served, requester) = pair(small, Config::default()).await;
        let mut requests = served.requests().unwrap();
        let (verdict_tx, mut verdict) = mpsc::unbounded();
        server.spawn(async move {
            while let Some(r) = requests.next().await {
                let outcome: InboundRequest<LengthPrefixed> = r;
                let _ = verdict_tx.unbounded_send(outcome.respond(vec![0; 50]));
            }
        });
        let err = requester
            .send_request(&server.local_peer_id(), b"x".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Reset { .. }), "{err}");
        let respond = verdict.next().await.unwrap().unwrap_err();
        assert!(
            matches!(
                respond,
                RequestError::MessageTooLarge {
                    what: "response",
                    size: 51,
                    ..
                }
            ),
            "{respond}"
        );
        close(&[&client, &server]).await;
    });
}

#[test]
fn connection_closed_while_waiting() {
    block_on(async {
        let (server, client, served, requester) =
            pair(LengthPrefixed::default(), Config::default()).await;
        let mut requests = served.requests().unwrap();
        let closer = server.clone();
        let client_id = client.local_peer_id();
        server.spawn(async move {
            let mut held = Vec::new();
            while let Some(r) = requests.next().await {
                held.push(r);
                closer.disconnect(&client_id).await;
            }
        });
        let err = requester
            .send_request(&server.local_peer_id(), b"bye".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::ConnectionClosed { .. }),
            "{err}"
        );
        close(&[&client, &server]).await;
    });
}

#[test]
fn unreachable_peer_is_a_dial_error() {
    block_on(async {
        let client = host().await;
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let nobody = lp2p_core::PeerId::random();
        let err = requester
            .send_request(&nobody, Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Dial { peer, .. } if peer == nobody),
            "{err}"
        );
        client.close().await;
    });
}

#[test]
fn outbound_back_pressure_waits_for_a_slot() {
    block_on(async {
        let config = Config {
            max_outbound_in_flight: 1,
            ..Config::default()
        };
        let (server, client, served, requester) = pair(LengthPrefixed::default(), config).await;
        let mut requests = served.requests().unwrap();
        let (arrived_tx, mut arrived) = mpsc::unbounded::<InboundRequest<LengthPrefixed>>();
        server.spawn(async move {
            while let Some(r) = requests.next().await {
                let _ = arrived_tx.unbounded_send(r);
            }
        });
        let peer = server.local_peer_id();
        let (a, b) = (requester.clone(), requester.clone());
        let first = client
            .runtime()
            .spawn(async move { a.send_request(&peer, b"1".to_vec()).await });
        let second = client
            .runtime()
            .spawn(async move { b.send_request(&peer, b"2".to_vec()).await });
        // One request reaches the server; the other waits for the slot.
        let one = arrived.next().await.unwrap();
        let rt = server.runtime().clone();
        rt.sleep(Duration::from_millis(200)).await;
        assert!(arrived.try_recv().is_err(), "the second request waited");
        let first_body = one.request.clone();
        one.respond(b"ok".to_vec()).unwrap();
        let two = rt.timeout(LONG, arrived.next()).await.unwrap().unwrap();
        assert_ne!(two.request, first_body);
        two.respond(b"ok".to_vec()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), b"ok");
        assert_eq!(second.await.unwrap().unwrap(), b"ok");
        close(&[&client, &server]).await;
    });
}

#[test]
fn inbound_per_peer_limit_resets_and_counts() {
    block_on(async {
        let (server, client) = (host().await, host().await);
        let served = RequestResponse::new(
            &server,
            FULL,
            LengthPrefixed::default(),
            Config {
                max_inbound_per_peer: 1,
                ..Config::default()
            },
        )
        .unwrap();
        let mut requests = served.requests().unwrap();
        let (arrived_tx, mut arrived) = mpsc::unbounded::<InboundRequest<LengthPrefixed>>();
        server.spawn(async move {
            while let Some(r) = requests.next().await {
                let _ = arrived_tx.unbounded_send(r);
            }
        });
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let peer = server_connected(&client, &server).await;
        let a = requester.clone();
        let first = client
            .runtime()
            .spawn(async move { a.send_request(&peer, b"1".to_vec()).await });
        let held = arrived.next().await.unwrap();
        let err = requester
            .send_request(&peer, b"2".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Reset { .. }), "{err}");
        assert_eq!(served.stats().inbound_refused, 1);
        held.respond(b"ok".to_vec()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), b"ok");
        // The slot is free again once the server has finished the first exchange, which may
        // be a moment after our side read the answer: a request sent before that is refused
        // (reset) and sent again; none may hang.
        let third = loop {
            let b = requester.clone();
            let attempt = client
                .runtime()
                .spawn(async move { b.send_request(&peer, b"3".to_vec()).await });
            match futures::future::select(attempt, arrived.next()).await {
                futures::future::Either::Right((Some(request), attempt)) => {
                    request.respond(b"ok".to_vec()).unwrap();
                    break attempt.await.unwrap().unwrap();
                }
                futures::future::Either::Left((Ok(Err(RequestError::Reset { .. })), _)) => {
                    client.runtime().sleep(Duration::from_millis(10)).await;
                }
                futures::future::Either::Left((other, _)) => {
                    panic!("the third request: {other:?}")
                }
                futures::future::Either::Right((None, _)) => panic!("the server stopped"),
            }
        };
        assert_eq!(third, b"ok");
        close(&[&client, &server]).await;
    });
}

#[test]
fn a_full_inbound_queue_holds_requests_instead_of_dropping_them() {
    block_on(async {
        let (server, client) = (host().await, host().await);
        let served = RequestResponse::new(
            &server,
            FULL,
            LengthPrefixed::default(),
            Config {
                inbound_queue: 1,
                ..Config::default()
            },
        )
        .unwrap();
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let peer = server_connected(&client, &server).await;
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let r = requester.clone();
                client
                    .runtime()
                    .spawn(async move { r.send_request(&peer, vec![i]).await })
            })
            .collect();
        // Nobody reads the queue for a while: the requests wait (nothing is refused).
        server.runtime().sleep(Duration::from_millis(300)).await;
        assert_eq!(served.stats(), lp2p_request_response::Stats::default());
        served.serve(|_, request: Vec<u8>| async move { Some(request) });
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), vec![i as u8]);
        }
        close(&[&client, &server]).await;
    });
}

#[test]
fn a_pending_request_keeps_an_idle_connection_open() {
    block_on(async {
        let idle = SwarmConfig {
            idle_timeout: Some(Duration::from_millis(100)),
            ..SwarmConfig::default()
        };
        let (server, client) = (host_with(idle.clone()).await, host_with(idle).await);
        let served =
            RequestResponse::new(&server, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let rt = server.runtime().clone();
        let slow = rt.clone();
        served.serve(move |_, request: Vec<u8>| {
            let slow = slow.clone();
            async move {
                // Many idle timeouts pass while the request is pending.
                slow.sleep(Duration::from_secs(1)).await;
                Some(request)
            }
        });
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let mut events = client.events();
        let peer = server_connected(&client, &server).await;
        assert_eq!(
            requester
                .send_request(&peer, b"slow".to_vec())
                .await
                .unwrap(),
            b"slow"
        );
        // No disconnect happened during the request.
        while let Some(Some(event)) = futures::FutureExt::now_or_never(events.next()) {
            assert!(
                !matches!(event, HostEvent::Disconnected { .. }),
                "the connection closed during a pending request"
            );
        }
        // Once idle, the connection does close (the idle policy is on).
        rt.timeout(LONG, async {
            while !client.connected_peers().is_empty() {
                rt.sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        close(&[&client, &server]).await;
    });
}

#[test]
fn malformed_requests_are_reset_and_counted() {
    #[cfg(feature = "json")]
    block_on(async {
        use futures::{AsyncReadExt, AsyncWriteExt};
        use lp2p_request_response::Json;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (server, client) = (host().await, host().await);
        let served = RequestResponse::new(
            &server,
            FULL,
            Json::<Vec<u8>, u8>::default(),
            Config::default(),
        )
        .unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        served.serve(move |_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { Some(1) }
        });
        let peer = server_connected(&client, &server).await;
        for garbage in [&b"{not json"[..], b"", b"[1,2,"] {
            let mut stream = client.new_stream(&peer, [P]).await.unwrap();
            stream.write_all(garbage).await.unwrap();
            stream.close().await.unwrap();
            let mut rest = Vec::new();
            let read = stream.read_to_end(&mut rest).await;
            assert!(read.is_err() || rest.is_empty(), "no answer to garbage");
        }
        let rt = server.runtime().clone();
        rt.timeout(LONG, async {
            while served.stats().inbound_malformed != 3 {
                rt.sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 0);
        close(&[&client, &server]).await;
    });
}

#[test]
fn over_tcp_and_noise() {
    block_on(async {
        let build = || {
            Host::builder()
                .transport(lp2p_tcp::TcpTransport::default())
                .security(Noise::new())
                .muxer(Yamux::default())
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .build()
        };
        let (server, client) = (build().await.unwrap(), build().await.unwrap());
        let served =
            RequestResponse::new(&server, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        served.serve(|peer, _: Vec<u8>| async move { Some(peer.to_bytes()) });
        let requester =
            RequestResponse::new(&client, FULL, LengthPrefixed::default(), Config::default())
                .unwrap();
        let peer = server_connected(&client, &server).await;
        let answer = requester
            .send_request(&peer, vec![0; 100_000])
            .await
            .unwrap();
        assert_eq!(answer, client.local_peer_id().to_bytes());
        close(&[&client, &server]).await;
    });
}

#[test]
fn the_request_stream_ends_when_the_host_closes() {
    block_on(async {
        let h = host().await;
        let service =
            RequestResponse::new(&h, FULL, LengthPrefixed::default(), Config::default()).unwrap();
        let mut requests = service.requests().unwrap();
        assert!(service.requests().is_none(), "one consumer");
        h.close().await;
        let rt = lp2p_core::RuntimeHandle::default();
        assert!(rt.timeout(LONG, requests.next()).await.unwrap().is_none());
        assert!(matches!(
            RequestResponse::new(&h, FULL, LengthPrefixed::default(), Config::default()),
            Err(RequestError::Closed)
        ));
    });
}
