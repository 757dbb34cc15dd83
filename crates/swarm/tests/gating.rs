//! Connection gates at each stage, on real swarms: a refused connection is closed at once,
//! counted, and reported with the stage and the gate's reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, PeerId, RuntimeHandle};
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_swarm::{
    AllowDenyList, ConnectionGate, Denied, Direction, GateStage, Stage, Swarm, SwarmBuilder,
    SwarmError, SwarmEvent,
};
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn memory() -> SwarmBuilder {
    Swarm::builder()
        .transport(MemoryTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
}

async fn listening(builder: SwarmBuilder, addr: &str) -> (Swarm, Multiaddr) {
    let swarm = builder.build().unwrap();
    let addr = swarm.listen_on(&addr.parse().unwrap()).await.unwrap();
    (swarm, addr)
}

/// The next `IncomingConnectionError`'s error.
async fn incoming_error(events: &mut lp2p_swarm::EventStream<SwarmEvent>) -> Arc<SwarmError> {
    loop {
        if let SwarmEvent::IncomingConnectionError { error, .. } = events.next().await.unwrap() {
            return error;
        }
    }
}

#[test]
fn accept_gate_refuses_by_address_before_any_handshake() {
    run(async {
        let gate = AllowDenyList::new().deny_ip("127.0.0.1".parse().unwrap());
        let (server, addr) = listening(
            Swarm::builder()
                .transport(TcpTransport::default())
                .security(Plaintext::new())
                .muxer(Yamux::default())
                .gate(gate),
            "/ip4/127.0.0.1/tcp/0",
        )
        .await;
        let mut events = server.events();
        let client = Swarm::builder()
            .transport(TcpTransport::default())
            .security(Plaintext::new())
            .muxer(Yamux::default())
            .build()
            .unwrap();
        let err = client
            .dial_with_addrs(server.local_peer_id(), vec![addr])
            .await
            .unwrap_err();
        assert!(matches!(err, SwarmError::DialFailed { .. }), "{err}");
        let refusal = incoming_error(&mut events).await;
        let SwarmError::Denied { stage, reason } = &*refusal else {
            panic!("{refusal}");
        };
        assert_eq!(*stage, GateStage::Accept);
        assert!(
            reason.0.contains("127.0.0.1 is on the deny list"),
            "{reason}"
        );
        assert_eq!(server.stats().denied_accept, 1);
        assert_eq!(server.connection_counts(), (0, 0, 0));
        client.close().await;
        server.close().await;
    });
}

#[test]
fn secured_gate_refuses_a_peer_once_it_is_authenticated() {
    run(async {
        let client = memory().build().unwrap();
        let gate = AllowDenyList::new().deny_peer(client.local_peer_id());
        let (server, addr) = listening(memory().gate(gate), "/memory/0").await;
        let mut events = server.events();
        let err = client
            .dial_with_addrs(server.local_peer_id(), vec![addr])
            .await
            .unwrap_err();
        assert!(matches!(err, SwarmError::DialFailed { .. }), "{err}");
        let refusal = incoming_error(&mut events).await;
        assert!(
            matches!(&*refusal, SwarmError::Denied { stage: GateStage::Secured, reason } if reason.0.contains("deny list")),
            "{refusal}"
        );
        assert_eq!(server.stats().denied_secured, 1);
        assert!(!server.is_connected(&client.local_peer_id()));
        // An honest peer is still served.
        let honest = memory().build().unwrap();
        honest
            .dial_with_addrs(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        client.close().await;
        honest.close().await;
        server.close().await;
    });
}

#[test]
fn dial_gate_refuses_before_anything_is_sent() {
    run(async {
        let (server, addr) = listening(memory(), "/memory/0").await;
        let mut events = server.events();
        let client = memory()
            .gate(AllowDenyList::new().deny_peer(server.local_peer_id()))
            .build()
            .unwrap();
        let err = client
            .dial_with_addrs(server.local_peer_id(), vec![addr.clone()])
            .await
            .unwrap_err();
        let attempts = err.attempts();
        assert_eq!(attempts.len(), 1, "{err}");
        assert_eq!(attempts[0].stage, Stage::Denied);
        assert_eq!(client.stats().denied_dial, 1);
        // Nothing reached the server; a dial without the gate does.
        let other = memory().build().unwrap();
        other
            .dial_with_addrs(server.local_peer_id(), vec![addr])
            .await
            .unwrap();
        loop {
            if let SwarmEvent::ConnectionEstablished { connection, .. } =
                events.next().await.unwrap()
            {
                assert_eq!(
                    connection.peer(),
                    other.local_peer_id(),
                    "only the ungated dial arrived"
                );
                break;
            }
        }
        for s in [&client, &other, &server] {
            s.close().await;
        }
    });
}

/// Refuses ready connections that use a given muxer, and counts what it saw.
struct NoMuxer(&'static str, Arc<AtomicUsize>);

impl ConnectionGate for NoMuxer {
    fn allow_upgraded(
        &self,
        _peer: &PeerId,
        _remote: &Multiaddr,
        _direction: Direction,
        muxer: &str,
        _limited: bool,
    ) -> Result<(), Denied> {
        self.1.fetch_add(1, Ordering::Relaxed);
        if muxer == self.0 {
            Err(Denied(format!("{muxer} is not welcome")))
        } else {
            Ok(())
        }
    }
}

#[test]
fn upgraded_gate_sees_the_ready_connection_and_can_refuse_it() {
    run(async {
        let seen = Arc::new(AtomicUsize::new(0));
        let client = memory()
            .gate(NoMuxer("/yamux/1.0.0", seen.clone()))
            .build()
            .unwrap();
        let (server, addr) = listening(memory(), "/memory/0").await;
        let err = client
            .dial_with_addrs(server.local_peer_id(), vec![addr])
            .await
            .unwrap_err();
        let attempts = err.attempts();
        assert_eq!(attempts[0].stage, Stage::Denied, "{err}");
        assert!(err.to_string().contains("not welcome"), "{err}");
        assert_eq!(seen.load(Ordering::Relaxed), 1);
        assert_eq!(client.stats().denied_upgraded, 1);
        assert!(!client.is_connected(&server.local_peer_id()));
        // The address is not backed off: the refusal was ours, not the address's fault.
        assert!(client.dial_backoff(&server.listen_addrs()[0]).is_none());
        client.close().await;
        server.close().await;
    });
}

/// `dial_new_with_opts` makes a new connection alongside an existing one, from the listening
/// port when asked (what hole punching does after a relayed connection exists).
#[test]
fn a_new_connection_from_the_listening_port() {
    run(async {
        let tcp = || {
            Swarm::builder()
                .transport(TcpTransport::default())
                .security(Plaintext::new())
                .muxer(Yamux::default())
        };
        let (server, addr) = listening(tcp(), "/ip4/127.0.0.1/tcp/0").await;
        let (client, client_addr) = listening(tcp(), "/ip4/127.0.0.1/tcp/0").await;
        let first = client
            .dial_with_addrs(server.local_peer_id(), vec![addr.clone()])
            .await
            .unwrap();
        let second = client
            .dial_new_with_opts(
                vec![addr],
                lp2p_core::DialOpts {
                    expected_peer: Some(server.local_peer_id()),
                    port_reuse: true,
                    role: lp2p_core::Role::Initiator,
                },
            )
            .await
            .unwrap();
        assert_ne!(first.id(), second.id());
        assert_eq!(
            second.local_addr(),
            &client_addr,
            "dialed from the listen port"
        );
        assert_ne!(first.local_addr(), &client_addr);
        assert_eq!(client.connections(&server.local_peer_id()).len(), 2);
        client.close().await;
        server.close().await;
    });
}
