//! Request-response between an lp2p host (lp2p-request-response with its JSON and CBOR
//! codecs) and a rust-libp2p 0.57 swarm (`libp2p-request-response` 0.30, `json` and `cbor`
//! behaviours) over TCP + noise + yamux on 127.0.0.1, in both directions; plus what each side
//! sees when the other omits the answer, does not speak the protocol, or gets a request over
//! its size limit.

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport, cbor, json};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use lp2p_host::Host;
use lp2p_interop::{init_tracing, recv_matching, run, tokio_runtime};
use lp2p_request_response::{Cbor, Config, Json, RequestError, RequestResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const JSON: &str = "/lp2p-interop/json/1.0.0";
const CBOR: &str = "/lp2p-interop/cbor/1.0.0";
/// A protocol only lp2p's client offers: the rust peer does not speak it.
const UNKNOWN: &str = "/lp2p-interop/nobody/1.0.0";

/// A request exercising serde's shapes: strings, numbers, options, sequences, enums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Req {
    id: u64,
    text: String,
    values: Vec<i64>,
    maybe: Option<bool>,
    kind: Kind,
    /// Answered with no response at all when true.
    omit: bool,
    /// Padding to make a request large.
    pad: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Tuple(u8, String),
    Struct { x: f64, y: i32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resp {
    id: u64,
    shout: String,
    sum: i64,
    kind: Kind,
}

fn answer(req: &Req) -> Resp {
    Resp {
        id: req.id,
        shout: req.text.to_uppercase(),
        sum: req.values.iter().sum(),
        kind: req.kind.clone(),
    }
}

fn request(id: u64, kind: Kind) -> Req {
    Req {
        id,
        text: format!("hello ünïcode {id}"),
        values: vec![1, -2, 3, i64::from(u32::MAX)],
        maybe: id.is_multiple_of(2).then_some(true),
        kind,
        omit: false,
        pad: Vec::new(),
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    json: json::Behaviour<Req, Resp>,
    cbor: cbor::Behaviour<Req, Resp>,
}

enum Command {
    Dial(Multiaddr),
    Send { peer: PeerId, cbor: bool, req: Req },
}

enum Report {
    Listening(Multiaddr),
    /// A request rust-libp2p answered (or omitted).
    Served(PeerId, Req),
    /// The outcome of a request rust-libp2p sent.
    Outcome(Result<Resp, String>),
}

struct RustPeer {
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<Report>,
}

fn start_rust_peer(rt: &tokio::runtime::Runtime) -> RustPeer {
    let (commands, mut command_rx) = mpsc::unbounded_channel::<Command>();
    let (report_tx, reports) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    rt.spawn(async move {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|_| {
                let config = request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30));
                Behaviour {
                    json: json::Behaviour::new(
                        [(StreamProtocol::new(JSON), ProtocolSupport::Full)],
                        config.clone(),
                    ),
                    cbor: cbor::Behaviour::new(
                        [(StreamProtocol::new(CBOR), ProtocolSupport::Full)],
                        config,
                    ),
                }
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let _ = ready_tx.send(*swarm.local_peer_id());
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        let _ = report_tx.send(Report::Listening(address));
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Json(event)) => {
                        on_event(event, &report_tx, |channel, resp| {
                            let _ = swarm.behaviour_mut().json.send_response(channel, resp);
                        });
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Cbor(event)) => {
                        on_event(event, &report_tx, |channel, resp| {
                            let _ = swarm.behaviour_mut().cbor.send_response(channel, resp);
                        });
                    }
                    _ => {}
                },
                command = command_rx.recv() => match command {
                    Some(Command::Dial(addr)) => swarm.dial(addr).expect("dial"),
                    Some(Command::Send { peer, cbor: true, req }) => {
                        swarm.behaviour_mut().cbor.send_request(&peer, req);
                    }
                    Some(Command::Send { peer, cbor: false, req }) => {
                        swarm.behaviour_mut().json.send_request(&peer, req);
                    }
                    None => break,
                },
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("swarm started");
    RustPeer {
        peer,
        commands,
        reports,
    }
}

fn on_event(
    event: request_response::Event<Req, Resp>,
    reports: &mpsc::UnboundedSender<Report>,
    respond: impl FnOnce(request_response::ResponseChannel<Resp>, Resp),
) {
    match event {
        request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } => {
            if !request.omit {
                respond(channel, answer(&request));
            }
            let _ = reports.send(Report::Served(peer, request));
        }
        request_response::Event::Message {
            message: request_response::Message::Response { response, .. },
            ..
        } => {
            let _ = reports.send(Report::Outcome(Ok(response)));
        }
        request_response::Event::OutboundFailure { error, .. } => {
            let _ = reports.send(Report::Outcome(Err(error.to_string())));
        }
        _ => {}
    }
}

struct Lp2p {
    host: Host,
    json: RequestResponse<Json<Req, Resp>>,
    cbor: RequestResponse<Cbor<Req, Resp>>,
    /// Offers a protocol nobody speaks, then JSON is never reached: only UNKNOWN.
    unknown: RequestResponse<Json<Req, Resp>>,
    /// JSON with a 4 MiB request limit, to send rust-libp2p more than its 1 MiB.
    big: RequestResponse<Json<Req, Resp>>,
}

async fn lp2p_host() -> Lp2p {
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host");
    let full = lp2p_request_response::ProtocolSupport::Full;
    let outbound = lp2p_request_response::ProtocolSupport::Outbound;
    let config = || Config::default().with_request_timeout(Duration::from_secs(30));
    let json =
        RequestResponse::new(&host, [(JSON, full)], Json::default(), config()).expect("json");
    let cbor =
        RequestResponse::new(&host, [(CBOR, full)], Cbor::default(), config()).expect("cbor");
    let unknown =
        RequestResponse::new(&host, [(UNKNOWN, outbound)], Json::default(), config()).expect("x");
    let big = RequestResponse::new(
        &host,
        [(JSON, outbound)],
        Json::default().with_max_request_size(4 << 20),
        config(),
    )
    .expect("big");
    json.serve(|_, req: Req| async move { (!req.omit).then(|| answer(&req)) });
    cbor.serve(|_, req: Req| async move { (!req.omit).then(|| answer(&req)) });
    Lp2p {
        host,
        json,
        cbor,
        unknown,
        big,
    }
}

fn listening(rt: &tokio::runtime::Runtime, rust: &mut RustPeer) -> Multiaddr {
    recv_matching(rt, &mut rust.reports, |r| match r {
        Report::Listening(a) => Some(a),
        _ => None,
    })
}

#[test]
fn lp2p_requests_rust_libp2p_with_json_and_cbor() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let addr = listening(&rt, &mut rust);
    let lp2p = run("lp2p host", lp2p_host());
    let me = lp2p.host.local_peer_id();
    run("connect", lp2p.host.connect(rust.peer, vec![addr])).expect("connect");
    let kinds = [
        Kind::Plain,
        Kind::Tuple(7, "t".into()),
        Kind::Struct { x: 1.5, y: -3 },
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let req = request(i as u64, kind);
        let got = run(
            "json request",
            lp2p.json.send_request(&rust.peer, req.clone()),
        )
        .expect("json answer from rust-libp2p");
        assert_eq!(got, answer(&req));
        let served = recv_matching(&rt, &mut rust.reports, |r| match r {
            Report::Served(p, r) => Some((p, r)),
            _ => None,
        });
        assert_eq!(served, (me, req.clone()));
        let got = run(
            "cbor request",
            lp2p.cbor.send_request(&rust.peer, req.clone()),
        )
        .expect("cbor answer from rust-libp2p");
        assert_eq!(got, answer(&req));
        let served = recv_matching(&rt, &mut rust.reports, |r| match r {
            Report::Served(p, r) => Some((p, r)),
            _ => None,
        });
        assert_eq!(served, (me, req.clone()));
    }

    // rust-libp2p drops the channel: it closes the stream without a response.
    let mut omitted = request(99, Kind::Plain);
    omitted.omit = true;
    let err = run("omitted", lp2p.json.send_request(&rust.peer, omitted)).unwrap_err();
    assert!(
        matches!(err, RequestError::RemoteClosedWithoutAnswer { .. }),
        "{err}"
    );
    let err = run("omitted cbor", {
        let mut r = request(100, Kind::Plain);
        r.omit = true;
        lp2p.cbor.send_request(&rust.peer, r)
    })
    .unwrap_err();
    assert!(
        matches!(err, RequestError::RemoteClosedWithoutAnswer { .. }),
        "{err}"
    );

    // A protocol rust-libp2p does not speak.
    let err = run(
        "unknown",
        lp2p.unknown
            .send_request(&rust.peer, request(1, Kind::Plain)),
    )
    .unwrap_err();
    assert!(
        matches!(err, RequestError::ProtocolNotSupported { .. }),
        "{err}"
    );

    // Over rust-libp2p's 1 MiB request limit: it reads 1 MiB, fails to decode, and the
    // exchange fails on our side (no hang, no answer).
    let mut huge = request(5, Kind::Plain);
    huge.pad = vec![7u8; 3 << 19]; // about 3 MiB of JSON
    let err = run("huge", lp2p.big.send_request(&rust.peer, huge)).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Reset { .. }
                | RequestError::RemoteClosedWithoutAnswer { .. }
                | RequestError::ConnectionClosed { .. }
        ),
        "{err}"
    );
    // The connection still works afterwards.
    let req = request(6, Kind::Plain);
    let got = run(
        "after huge",
        lp2p.json.send_request(&rust.peer, req.clone()),
    )
    .expect("ok");
    assert_eq!(got, answer(&req));
    run("close", lp2p.host.close());
}

#[test]
fn rust_libp2p_requests_lp2p_with_json_and_cbor() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let _ = listening(&rt, &mut rust);
    let lp2p = run("lp2p host", lp2p_host());
    let mut target = lp2p.host.listen_addrs()[0].clone();
    target.push(libp2p::multiaddr::Protocol::P2p(lp2p.host.local_peer_id()));
    rust.commands.send(Command::Dial(target)).expect("alive");
    let me = lp2p.host.local_peer_id();
    for (i, cbor) in [false, true, false, true].into_iter().enumerate() {
        let req = request(
            i as u64,
            if cbor {
                Kind::Struct {
                    x: f64::from(i as u32) / 3.0,
                    y: 9,
                }
            } else {
                Kind::Tuple(1, "json".into())
            },
        );
        rust.commands
            .send(Command::Send {
                peer: me,
                cbor,
                req: req.clone(),
            })
            .expect("alive");
        let outcome = recv_matching(&rt, &mut rust.reports, |r| match r {
            Report::Outcome(o) => Some(o),
            _ => None,
        });
        assert_eq!(outcome.expect("lp2p answered"), answer(&req), "cbor={cbor}");
    }
    // lp2p omits the answer: rust-libp2p reports a failure (not a hang).
    for cbor in [false, true] {
        let mut req = request(50, Kind::Plain);
        req.omit = true;
        rust.commands
            .send(Command::Send {
                peer: me,
                cbor,
                req,
            })
            .expect("alive");
        let outcome = recv_matching(&rt, &mut rust.reports, |r| match r {
            Report::Outcome(o) => Some(o),
            _ => None,
        });
        assert!(outcome.is_err(), "cbor={cbor}: {outcome:?}");
    }
    assert_eq!(lp2p.json.stats().responses_omitted, 1);
    assert_eq!(lp2p.cbor.stats().responses_omitted, 1);
    assert_eq!(lp2p.json.stats().inbound_malformed, 0);
    run("close", lp2p.host.close());
}
