//! A dial whose every caller dropped its future is cancelled: its attempt's socket closes
//! at once (not at the attempt timeout), the failure names the cancellation, and the address
//! is not put in backoff. Hole punching depends on it: a retry dials the same 4-tuple.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, PeerId, RuntimeHandle};
use lp2p_plaintext::Plaintext;
use lp2p_swarm::{Stage, Swarm, SwarmConfig, SwarmError, SwarmEvent};
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Far beyond the test's waits: only a cancellation can close the socket in time.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the silent server waits for the dialer to hang up (generous: CI is loaded).
const EOF_WAIT: Duration = Duration::from_secs(60);

/// A TCP server that accepts one connection, never answers, and reports whether the dialer
/// closed it (`true`) or it was still open after [`EOF_WAIT`] (`false`).
fn silent_server() -> (Multiaddr, mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(EOF_WAIT)).unwrap();
        let mut buf = [0u8; 256];
        let closed = loop {
            match socket.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        let _ = tx.send(closed);
    });
    (format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(), rx)
}

#[test]
fn dropping_the_last_waiter_cancels_the_dial_and_closes_its_socket() {
    let rt = RuntimeHandle::default();
    let (addr, closed) = silent_server();
    let swarm = Swarm::builder()
        .transport(TcpTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
        .config(SwarmConfig {
            transport_timeout: ATTEMPT_TIMEOUT,
            upgrade_timeout: ATTEMPT_TIMEOUT,
            dial_timeout: ATTEMPT_TIMEOUT,
            ..SwarmConfig::default()
        })
        .build()
        .unwrap();
    let mut events = swarm.events();
    let peer = PeerId::random();
    let failed = block_on(async {
        // Two callers share the dial. The first gives up at 0.2 s; the dial goes on for the
        // second (the server still holds an open socket at 1 s), who gives up at 2 s.
        let (first, (open_while_second_waits, second)) = futures::join!(
            rt.timeout(
                Duration::from_millis(200),
                swarm.dial_with_addrs(peer, vec![addr.clone()])
            ),
            async {
                rt.sleep(Duration::from_millis(50)).await;
                let second = rt.timeout(Duration::from_secs(2), swarm.dial(peer));
                let check = async {
                    rt.sleep(Duration::from_secs(1)).await;
                    closed.try_recv().is_err()
                };
                futures::join!(check, second)
            }
        );
        assert!(
            first.is_err() && second.is_err(),
            "a silent server completes no dial"
        );
        assert!(
            open_while_second_waits,
            "the dial stopped while a caller waited"
        );
        // The last caller left: the dial failed as cancelled.
        rt.timeout(Duration::from_secs(60), async {
            loop {
                if let SwarmEvent::DialFailed { error, .. } = events.next().await.unwrap() {
                    return error;
                }
            }
        })
        .await
        .expect("no DialFailed event")
    });
    let SwarmError::DialFailed { attempts, .. } = &*failed else {
        panic!("unexpected error: {failed}");
    };
    assert_eq!(attempts.len(), 1, "{failed}");
    assert_eq!(attempts[0].stage, Stage::Cancelled, "{failed}");
    assert_eq!(
        swarm.dial_backoff(&addr),
        None,
        "a cancellation is no failure of the address"
    );
    // The swarm is still alive; only the cancellation can have closed the socket.
    assert!(
        closed.recv_timeout(EOF_WAIT * 2).unwrap(),
        "the cancelled attempt's socket stayed open"
    );
    drop(swarm);
}
