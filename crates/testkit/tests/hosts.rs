//! Host fixtures on the memory transport under virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_host::HostStream;
use lp2p_testkit::io::{ScriptedPeer, pipe};
use lp2p_testkit::{Sim, SimConfig, hosts, run};

async fn echo(mut s: HostStream) {
    let mut buf = [0u8; 64];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[test]
fn a_pair_talks_and_closes_without_leaving_tasks() {
    run(|sim| async move {
        let (server, client) = hosts::pair(&sim).await.unwrap();
        assert_eq!(client.connected_peers(), vec![server.local_peer_id()]);
        server.set_stream_handler("/echo", echo);
        let mut s = client
            .new_stream(&server.local_peer_id(), ["/echo"])
            .await
            .unwrap();
        s.write_all(b"over memory").await.unwrap();
        let mut got = [0u8; 11];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"over memory");
        drop(s);
        client.close().await;
        server.close().await;
        assert_eq!(client.runtime().live_tasks(), 0);
        assert_eq!(server.runtime().live_tasks(), 0);
    });
}

#[test]
fn a_network_connects_as_a_full_mesh() {
    run(|sim| async move {
        let net = hosts::network(&sim, 4).await.unwrap();
        hosts::connect_all(&net).await.unwrap();
        for host in &net {
            lp2p_testkit::wait_until(sim.runtime(), || host.connected_peers().len() == 3).await;
        }
        hosts::close_all(&net).await;
    });
}

#[test]
fn hosts_use_seeded_identities() {
    let ids = |seed| {
        let sim = Sim::with_config(SimConfig::default().with_seed(seed));
        let h = sim.handle();
        sim.block_on(async {
            let net = hosts::network(&h, 2).await.unwrap();
            let ids: Vec<_> = net.iter().map(lp2p_host::Host::local_peer_id).collect();
            hosts::close_all(&net).await;
            ids
        })
    };
    assert_eq!(ids(9), ids(9));
    assert_ne!(ids(9), ids(10));
}

#[test]
fn scripted_peer_sends_and_expects_exact_bytes() {
    run(|sim| async move {
        let (mut ours, theirs) = pipe();
        let mut peer = ScriptedPeer::new(theirs);
        peer.send(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        ours.read_exact(&mut buf).await.unwrap();
        ours.write_all(b"pong").await.unwrap();
        peer.expect(b"pong").await;
        // A reply that comes late in virtual time still arrives.
        let rt = sim.runtime().clone();
        let late = sim.runtime().spawn(async move {
            rt.sleep(Duration::from_secs(30)).await;
            ours.write_all(b"late").await.unwrap();
            ours.close().await.unwrap();
        });
        peer.expect(b"late").await;
        peer.expect_eof().await;
        late.await.unwrap();
        assert_eq!(sim.elapsed(), Duration::from_secs(30));
    });
}

#[test]
#[should_panic(expected = "scripted peer expected [6f6b]")]
fn scripted_peer_shows_both_byte_strings_on_a_mismatch() {
    run(|_sim| async move {
        let (mut ours, theirs) = pipe();
        let mut peer = ScriptedPeer::new(theirs);
        ours.write_all(b"no").await.unwrap();
        peer.expect(b"ok").await;
    });
}

/// Four hosts in a mesh, three streams to the first: the schedule's fingerprint.
fn mesh_run(seed: u64) -> u64 {
    let sim = Sim::with_config(SimConfig::default().with_seed(seed));
    let h = sim.handle();
    sim.block_on(async {
        let net = hosts::network(&h, 4).await.unwrap();
        hosts::connect_all(&net).await.unwrap();
        net[0].set_stream_handler("/echo", echo);
        for other in &net[1..] {
            let mut s = other
                .new_stream(&net[0].local_peer_id(), ["/echo"])
                .await
                .unwrap();
            s.write_all(b"abc").await.unwrap();
            let mut got = [0u8; 3];
            s.read_exact(&mut got).await.unwrap();
        }
        // Not closed: dropping the simulation ends every task. (Closing walks the swarm's
        // connection table, a HashMap whose order differs per process run.)
    });
    sim.fingerprint()
}

#[test]
fn a_host_level_run_repeats_with_its_seed() {
    let first = mesh_run(3);
    for _ in 0..3 {
        assert_eq!(
            mesh_run(3),
            first,
            "same seed, different schedule: something in the stack wakes tasks in an order \
             that is not a function of the seed (HashMap iteration, the real clock, threads)"
        );
    }
}
