//! The async shell end to end: 20 real hosts (memory transport, noise + yamux), gossipsub,
//! each dialing its ring successor and two random others, everyone subscribed to one topic.
//! Two runs, signed 256-byte messages from rotating publishers:
//!
//! - **burst**: `BURST` messages published as fast as `publish` returns, timed until all
//!   `BURST × 19` deliveries happened (throughput; latency includes queueing);
//! - **paced**: `PACED` messages at `PACED_RATE` per second (latency of a lightly loaded mesh).
//!
//! Latency is wall-clock time from `publish` to a subscriber's stream yielding the message.
//! `cargo bench -p lp2p-pubsub --bench shell` prints the numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lp2p_core::RuntimeHandle;
use lp2p_host::Host;
use lp2p_pubsub::{Config, PubSub};

const NODES: usize = 20;
const TOPIC: &str = "bench";
const SIZE: usize = 256;
const BURST: usize = 1000;
const PACED: usize = 250;
const PACED_RATE: u64 = 50;
/// Give up waiting for deliveries after this (a loaded machine is slow, not stuck).
const PATIENCE: Duration = Duration::from_secs(60);

struct Recorder {
    start: Instant,
    latencies: Mutex<Vec<Duration>>,
    delivered: AtomicUsize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn wait_for(rt: &RuntimeHandle, recorder: &Recorder, target: usize) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while recorder.delivered.load(Ordering::Acquire) < target {
        if Instant::now() > deadline {
            return false;
        }
        rt.sleep(Duration::from_millis(2)).await;
    }
    true
}

fn payload(recorder: &Recorder, seq: usize) -> Vec<u8> {
    let mut data = vec![0u8; SIZE];
    let nanos = recorder.start.elapsed().as_nanos() as u64;
    data[..8].copy_from_slice(&nanos.to_be_bytes());
    data[8..16].copy_from_slice(&(seq as u64).to_be_bytes());
    data
}

fn report(name: &str, recorder: &Recorder, messages: usize, elapsed: Duration, complete: bool) {
    let mut latencies = std::mem::take(&mut *recorder.latencies.lock().unwrap());
    latencies.sort();
    let deliveries = latencies.len();
    println!(
        "{name}: {messages} messages, {deliveries} deliveries{} in {:.2} s: {:.0} messages/s, {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if complete { "" } else { " (INCOMPLETE)" },
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that a no-op.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    lp2p_core::runtime::block_on(async {
        let rt = RuntimeHandle::default();
        let mut hosts = Vec::new();
        for _ in 0..NODES {
            hosts.push(
                Host::builder()
                    .transport(lp2p_memory::MemoryTransport::default())
                    .security(lp2p_noise::Noise::new())
                    .muxer(lp2p_yamux::Yamux::default())
                    .listen_on("/memory/0".parse().unwrap())
                    .build()
                    .await
                    .unwrap(),
            );
        }
        let recorder = Arc::new(Recorder {
            start: Instant::now(),
            latencies: Mutex::new(Vec::new()),
            delivered: AtomicUsize::new(0),
        });
        let services: Vec<PubSub> = hosts
            .iter()
            .map(|h| PubSub::gossipsub(h, Config::default()).unwrap())
            .collect();
        for service in &services {
            let mut sub = service.subscribe(TOPIC).unwrap();
            let recorder = recorder.clone();
            rt.spawn_detached(async move {
                while let Some(message) = sub.next().await {
                    let sent = u64::from_be_bytes(message.data[..8].try_into().unwrap());
                    let now = recorder.start.elapsed().as_nanos() as u64;
                    let latency = Duration::from_nanos(now.saturating_sub(sent));
                    recorder.latencies.lock().unwrap().push(latency);
                    recorder.delivered.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for i in 0..NODES {
            let mut targets = vec![(i + 1) % NODES];
            while targets.len() < 3 {
                let t = random(NODES);
                if t != i && !targets.contains(&t) {
                    targets.push(t);
                }
            }
            for t in targets {
                let (a, b) = (&hosts[i], &hosts[t]);
                if !a.swarm().is_connected(&b.local_peer_id()) {
                    a.connect(b.local_peer_id(), b.listen_addrs())
                        .await
                        .unwrap();
                }
            }
        }
        let linked = Instant::now();
        while !hosts.iter().zip(&services).all(|(h, s)| {
            let peers = s.peers(TOPIC);
            !s.mesh_peers(TOPIC).is_empty() && h.connected_peers().iter().all(|p| peers.contains(p))
        }) {
            assert!(linked.elapsed() < PATIENCE, "mesh did not form");
            rt.sleep(Duration::from_millis(20)).await;
        }
        // Let a few heartbeats settle the mesh degrees.
        rt.sleep(Duration::from_secs(3)).await;
        let degrees: Vec<usize> = services.iter().map(|s| s.mesh_peers(TOPIC).len()).collect();
        println!(
            "20 hosts, mesh degrees {}..={}",
            degrees.iter().min().unwrap(),
            degrees.iter().max().unwrap()
        );

        let started = Instant::now();
        for seq in 0..BURST {
            services[seq % NODES]
                .publish(TOPIC, payload(&recorder, seq))
                .await
                .unwrap();
            if seq % 50 == 49 {
                // Let the tasks run: publish does not yield by itself.
                rt.sleep(Duration::ZERO).await;
            }
        }
        let complete = wait_for(&rt, &recorder, BURST * (NODES - 1)).await;
        report("burst", &recorder, BURST, started.elapsed(), complete);

        let base = recorder.delivered.load(Ordering::Acquire);
        let started = Instant::now();
        let interval = Duration::from_micros(1_000_000 / PACED_RATE);
        for seq in 0..PACED {
            let due = started + interval * seq as u32;
            let now = Instant::now();
            if due > now {
                rt.sleep(due - now).await;
            }
            services[(seq * 7) % NODES]
                .publish(TOPIC, payload(&recorder, BURST + seq))
                .await
                .unwrap();
        }
        let complete = wait_for(&rt, &recorder, base + PACED * (NODES - 1)).await;
        report("paced", &recorder, PACED, started.elapsed(), complete);
        let dropped: u64 = services.iter().map(PubSub::dropped_deliveries).sum();
        let slow: u64 = services
            .iter()
            .map(|s| s.counters().send_queue_dropped)
            .sum();
        println!("subscriber drops {dropped}, send-queue drops {slow}");

        for host in &hosts {
            host.close().await;
        }
    });
}
