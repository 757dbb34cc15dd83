//! Whole-dial durations (`Swarm::dial_durations`): one observation per dial call that
//! dialed, by outcome; a call answered by an existing connection is not a dial.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lp2p_core::RuntimeHandle;
use lp2p_core::runtime::block_on;
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_swarm::Swarm;
use lp2p_yamux::Yamux;

fn swarm() -> Swarm {
    Swarm::builder()
        .transport(MemoryTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
        .build()
        .unwrap()
}

#[test]
fn each_dial_is_timed_once_by_outcome_and_a_reused_connection_is_not() {
    let rt = RuntimeHandle::default();
    block_on(rt.clone().timeout(Duration::from_secs(120), async move {
        let server = swarm();
        let addr = server
            .listen_on(&"/memory/0".parse().unwrap())
            .await
            .unwrap();
        let client = swarm();

        // Nobody listens there: a failed dial.
        let nowhere = "/memory/999999".parse().unwrap();
        assert!(client.dial_addr(nowhere).await.is_err());
        let d = client.dial_durations();
        assert_eq!((d.ok.count(), d.failed.count()), (0, 1));

        // A dial that connects, then one answered by that connection (not a dial).
        let peer = server.local_peer_id();
        client.dial_with_addrs(peer, vec![addr]).await.unwrap();
        client.dial(peer).await.unwrap();
        let d = client.dial_durations();
        assert_eq!((d.ok.count(), d.failed.count()), (1, 1));
        assert!(d.ok.sum() > 0.0 && d.ok.sum() < 120.0, "{}", d.ok.sum());
    }))
    .expect("test timed out");
}
