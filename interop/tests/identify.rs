//! Identify between an lp2p host (lp2p-identify) and a rust-libp2p 0.57 swarm
//! (libp2p-identify 0.48, with a keypair so it sends signed peer records) over TCP on
//! 127.0.0.1 with noise + yamux, in both directions. Each side sees the other's agent
//! version, protocols and listen addresses, and each verifies the other's signed record.
//! A push from lp2p after adding a handler reaches rust-libp2p.
//!
//! rust-libp2p 0.57's identify signs and verifies peer records only in the legacy format
//! (`libp2p-routing-state`); lp2p signs the standard one (`libp2p-peer-record`, what go and
//! js use) by default and accepts both. So lp2p is configured with `RecordFormat::Legacy` for
//! rust-libp2p to verify its record, and one test shows that with the default format
//! rust-libp2p drops the record and falls back to the plain addresses.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, ping};
use lp2p_host::{EventStream, Host, HostStream};
use lp2p_identify::{
    ID_PROTOCOL, Identify, IdentifyConfig, IdentifyEvent, IdentifyInfo, PUSH_PROTOCOL, RecordFormat,
};
use lp2p_interop::{init_tracing, run, tokio_runtime};
use tokio::sync::mpsc;

const RUST_AGENT: &str = "rust-interop/0.57";

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// What the rust swarm's task reports.
enum Report {
    Listening(Multiaddr),
    Identified(PeerId, Box<identify::Info>),
}

struct RustPeer {
    peer: PeerId,
    dial: mpsc::UnboundedSender<Multiaddr>,
    reports: mpsc::UnboundedReceiver<Report>,
}

/// A listening rust-libp2p swarm with identify (signed records on) and ping.
fn start_rust_peer(rt: &tokio::runtime::Runtime) -> RustPeer {
    let (dial, mut dials) = mpsc::unbounded_channel::<Multiaddr>();
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
            .with_behaviour(|key| Behaviour {
                identify: identify::Behaviour::new(
                    identify::Config::new_with_signed_peer_record("ipfs/0.1.0".into(), key)
                        .with_agent_version(RUST_AGENT.into()),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
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
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(
                        identify::Event::Received { peer_id, info, .. },
                    )) => {
                        let _ = report_tx.send(Report::Identified(peer_id, Box::new(info)));
                    }
                    _ => {}
                },
                addr = dials.recv() => match addr {
                    Some(addr) => swarm.dial(addr).expect("dial"),
                    None => break,
                },
            }
        }
    });
    let peer = ready_rx.blocking_recv().expect("swarm started");
    RustPeer {
        peer,
        dial,
        reports,
    }
}

fn wait_report<T>(
    rt: &tokio::runtime::Runtime,
    peer: &mut RustPeer,
    pick: impl FnMut(Report) -> Option<T>,
) -> T {
    lp2p_interop::recv_matching(rt, &mut peer.reports, pick)
}

fn rust_listen_addr(rt: &tokio::runtime::Runtime, rust: &mut RustPeer) -> Multiaddr {
    wait_report(rt, rust, |r| match r {
        Report::Listening(addr) => Some(addr),
        Report::Identified(..) => None,
    })
}

fn rust_identified(
    rt: &tokio::runtime::Runtime,
    rust: &mut RustPeer,
    peer: PeerId,
) -> identify::Info {
    wait_report(rt, rust, |r| match r {
        Report::Identified(p, info) if p == peer => Some(*info),
        _ => None,
    })
}

/// A listening lp2p host with identify and ping.
async fn lp2p_host(format: RecordFormat) -> (Host, Identify) {
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host");
    let identify = Identify::new(
        &host,
        IdentifyConfig {
            record_format: format,
            ..IdentifyConfig::default()
        },
    );
    let _ping = lp2p_ping::Ping::new(&host, lp2p_ping::PingConfig::default());
    (host, identify)
}

async fn lp2p_identified(
    events: &mut EventStream<IdentifyEvent>,
    peer: PeerId,
) -> Arc<IdentifyInfo> {
    loop {
        if let IdentifyEvent::Identified { peer: p, info } = events.next().await.expect("events")
            && p == peer
        {
            return info;
        }
    }
}

/// What lp2p learned about the rust peer.
fn check_lp2p_view(host: &Host, info: &IdentifyInfo, rust: PeerId, rust_addr: &Multiaddr) {
    assert_eq!(info.agent_version, RUST_AGENT);
    assert_eq!(info.protocol_version, "ipfs/0.1.0");
    assert_eq!(info.public_key.to_peer_id(), rust);
    for p in [ID_PROTOCOL, PUSH_PROTOCOL, "/ipfs/ping/1.0.0"] {
        assert!(
            info.protocols.iter().any(|q| q == p),
            "rust-libp2p serves {p}"
        );
    }
    assert!(
        info.listen_addrs.contains(rust_addr),
        "{:?} lacks {rust_addr}",
        info.listen_addrs
    );
    assert!(
        info.signed_record,
        "rust-libp2p's (legacy) signed record verified"
    );
    let store = host.peerstore();
    assert_eq!(store.agent_version(&rust).as_deref(), Some(RUST_AGENT));
    assert!(store.addrs(&rust).contains(rust_addr));
    assert!(
        !store
            .supports_protocols(&rust, &["/ipfs/ping/1.0.0"])
            .is_empty()
    );
}

/// What rust-libp2p learned about the lp2p host.
fn check_rust_view(info: &identify::Info, host: &Host, signed: bool) {
    assert_eq!(info.agent_version, lp2p_identify::default_agent_version());
    assert_eq!(info.protocol_version, "ipfs/0.1.0");
    assert_eq!(info.public_key.to_peer_id(), host.local_peer_id());
    let protocols: Vec<String> = info.protocols.iter().map(ToString::to_string).collect();
    for p in [ID_PROTOCOL, PUSH_PROTOCOL, "/ipfs/ping/1.0.0"] {
        assert!(protocols.iter().any(|q| q == p), "{protocols:?} lacks {p}");
    }
    for addr in host.listen_addrs() {
        assert!(
            info.listen_addrs.contains(&addr),
            "{:?} lacks {addr}",
            info.listen_addrs
        );
    }
    if signed {
        let envelope = info
            .signed_peer_record
            .clone()
            .expect("rust-libp2p verified our signed record");
        let record = libp2p::core::PeerRecord::from_signed_envelope(envelope).expect("valid");
        assert_eq!(record.peer_id(), host.local_peer_id());
        assert_eq!(record.addresses(), host.listen_addrs().as_slice());
    } else {
        assert!(info.signed_peer_record.is_none());
    }
}

#[test]
fn lp2p_dials_rust_libp2p_and_both_identify() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let rust_addr = rust_listen_addr(&rt, &mut rust);
    let (host, identify) = run("lp2p host", lp2p_host(RecordFormat::Legacy));
    let mut events = identify.events();

    let info = run("lp2p identifies rust-libp2p", async {
        host.connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect");
        lp2p_identified(&mut events, rust.peer).await
    });
    check_lp2p_view(&host, &info, rust.peer, &rust_addr);
    assert_eq!(identify.info(&rust.peer), Some(info.clone()));
    // rust-libp2p saw us at our ephemeral dialing address; it told us so.
    assert!(info.observed_addr.is_some());

    let rust_view = rust_identified(&rt, &mut rust, host.local_peer_id());
    check_rust_view(&rust_view, &host, true);

    // Push: a new handler on lp2p reaches rust-libp2p.
    host.set_stream_handler("/lp2p-interop/new/1.0.0", |_s: HostStream| async {});
    let pushed = wait_report(&rt, &mut rust, |r| match r {
        Report::Identified(p, info)
            if p == host.local_peer_id()
                && info
                    .protocols
                    .iter()
                    .any(|q| q.as_ref() == "/lp2p-interop/new/1.0.0") =>
        {
            Some(*info)
        }
        _ => None,
    });
    assert_eq!(pushed.agent_version, lp2p_identify::default_agent_version());

    run("close", host.close());
    drop(rust.dial);
}

#[test]
fn rust_libp2p_dials_lp2p_and_both_identify() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let rust_addr = rust_listen_addr(&rt, &mut rust);
    let (host, identify) = run("lp2p host", lp2p_host(RecordFormat::Legacy));
    let mut events = identify.events();
    let mut target = host.listen_addrs()[0].clone();
    target.push(libp2p::multiaddr::Protocol::P2p(host.local_peer_id()));
    rust.dial.send(target).expect("swarm alive");

    let rust_view = rust_identified(&rt, &mut rust, host.local_peer_id());
    check_rust_view(&rust_view, &host, true);
    let info = run(
        "lp2p identifies rust-libp2p",
        lp2p_identified(&mut events, rust.peer),
    );
    check_lp2p_view(&host, &info, rust.peer, &rust_addr);

    run("close", host.close());
    drop(rust.dial);
}

#[test]
fn with_the_standard_record_format_rust_libp2p_uses_the_plain_addresses() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let rust_addr = rust_listen_addr(&rt, &mut rust);
    let (host, _identify) = run("lp2p host", lp2p_host(RecordFormat::Standard));
    run("connect", async {
        host.connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect");
    });
    let rust_view = rust_identified(&rt, &mut rust, host.local_peer_id());
    check_rust_view(&rust_view, &host, false);
    run("close", host.close());
    drop(rust.dial);
}
