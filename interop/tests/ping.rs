//! Ping between an lp2p host (lp2p-ping) and a rust-libp2p 0.57 swarm (libp2p-ping 0.48)
//! over TCP on 127.0.0.1 with noise + yamux, in both directions: lp2p pings rust-libp2p's
//! echo handler, and rust-libp2p's ping behaviour (which pings every connection on its
//! interval, reusing one stream) gets its echoes from lp2p's handler. Which side dials is
//! varied too.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, ping};
use lp2p_host::Host;
use lp2p_interop::{EXCHANGE_TIMEOUT, init_tracing, run, tokio_runtime};
use lp2p_ping::{Ping, PingConfig};
use tokio::sync::mpsc;

/// What the rust swarm's task reports.
enum Report {
    Listening(Multiaddr),
    /// A ping rust-libp2p ran (outbound) on a connection to this peer, and its outcome.
    Pinged(PeerId, Result<Duration, String>),
}

struct RustPeer {
    peer: PeerId,
    dial: mpsc::UnboundedSender<Multiaddr>,
    reports: mpsc::UnboundedReceiver<Report>,
}

/// A listening rust-libp2p swarm whose only behaviour is ping, every 200 ms.
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
            .with_behaviour(|_| {
                ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(Duration::from_millis(200))
                        .with_timeout(Duration::from_secs(20)),
                )
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
                    SwarmEvent::Behaviour(ping::Event { peer, result, .. }) => {
                        let _ = report_tx.send(Report::Pinged(peer, result.map_err(|e| e.to_string())));
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

async fn lp2p_host() -> (Host, Ping) {
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .build()
        .await
        .expect("lp2p host");
    let ping = Ping::new(&host, PingConfig::default());
    (host, ping)
}

/// rust-libp2p pinged lp2p successfully three times (three echoes on its one stream).
fn rust_pings_lp2p(rt: &tokio::runtime::Runtime, rust: &mut RustPeer, lp2p: PeerId) {
    for _ in 0..3 {
        let rtt = wait_report(rt, rust, |r| match r {
            Report::Pinged(p, result) if p == lp2p => Some(result),
            _ => None,
        });
        let rtt = rtt.expect("rust-libp2p's ping of lp2p succeeded");
        assert!(rtt < EXCHANGE_TIMEOUT);
    }
}

#[test]
fn lp2p_dials_and_both_ping() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let rust_addr = wait_report(&rt, &mut rust, |r| match r {
        Report::Listening(addr) => Some(addr),
        Report::Pinged(..) => None,
    });
    let (host, ping) = run("lp2p host", lp2p_host());
    let conn = run("lp2p pings rust-libp2p", async {
        let conn = host
            .connect(rust.peer, vec![rust_addr.clone()])
            .await
            .expect("connect");
        for _ in 0..3 {
            let rtt = ping.ping(&rust.peer).await.expect("ping rust-libp2p");
            assert!(rtt < EXCHANGE_TIMEOUT);
        }
        conn
    });
    run("ping_on", async {
        ping.ping_on(&conn).await.expect("ping_on rust-libp2p");
    });
    rust_pings_lp2p(&rt, &mut rust, host.local_peer_id());
    run("close", host.close());
    drop(rust.dial);
}

#[test]
fn rust_libp2p_dials_and_both_ping() {
    init_tracing();
    let rt = tokio_runtime();
    let mut rust = start_rust_peer(&rt);
    let (host, ping) = run("lp2p host", lp2p_host());
    let mut target = host.listen_addrs()[0].clone();
    target.push(libp2p::multiaddr::Protocol::P2p(host.local_peer_id()));
    rust.dial.send(target).expect("swarm alive");
    rust_pings_lp2p(&rt, &mut rust, host.local_peer_id());
    run("lp2p pings rust-libp2p on its connection", async {
        // The connection rust-libp2p opened is there; ping reuses it.
        assert_eq!(host.connected_peers(), vec![rust.peer]);
        for _ in 0..3 {
            ping.ping(&rust.peer).await.expect("ping rust-libp2p");
        }
    });
    run("close", host.close());
    drop(rust.dial);
}
