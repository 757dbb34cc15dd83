//! Identify learns about connections from the host's lossless lifecycle stream: a service
//! that is stalled while thousands of connections open still identifies every one of them
//! once it runs again (the lossy event bus it used before dropped events past its buffer, and
//! a missed `Connected` meant a peer never identified).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, Runtime, RuntimeHandle};
use lp2p_host::{Host, HostBuilder, SwarmConfig};
use lp2p_identify::{Identify, IdentifyConfig};
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_yamux::Yamux;

const CLIENTS: usize = 250;
const PER_CLIENT: usize = 8;
const CONNECTIONS: usize = CLIENTS * PER_CLIENT;
/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(300);

/// Holds back every task spawned while `capture` is on until `open` is called.
#[derive(Default)]
struct Gate {
    capture: AtomicBool,
    open: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Gate {
    fn release(&self) {
        self.open.store(true, Ordering::Release);
        for w in self.wakers.lock().unwrap().drain(..) {
            w.wake();
        }
    }
}

struct Wait(Arc<Gate>);

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.0.wakers.lock().unwrap().push(cx.waker().clone());
        if self.0.open.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The default runtime (async-std, or smol under `LP2P_RUNTIME=smol`), with the gate in
/// front of captured tasks.
struct GatedRuntime(Arc<Gate>, RuntimeHandle);

impl Runtime for GatedRuntime {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        if self.0.capture.load(Ordering::Acquire) {
            let gate = self.0.clone();
            self.1.spawn_detached(async move {
                Wait(gate).await;
                task.await;
            });
        } else {
            self.1.spawn_detached(task);
        }
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.1.sleep(duration)
    }
    fn now(&self) -> Instant {
        self.1.now()
    }
}

fn memory() -> HostBuilder {
    Host::builder()
        .transport(MemoryTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
}

#[test]
fn a_stalled_identify_service_still_identifies_every_connection() {
    let rt = RuntimeHandle::default();
    block_on(async move {
        rt.clone()
            .timeout(LIMIT, async move {
                let gate = Arc::new(Gate::default());
                let server = memory()
                    .runtime(RuntimeHandle::new(GatedRuntime(
                        gate.clone(),
                        RuntimeHandle::default(),
                    )))
                    .swarm_config(SwarmConfig {
                        max_inbound: CONNECTIONS * 2,
                        // A tiny general event buffer: the lossy bus would drop almost
                        // everything here.
                        event_buffer: 4,
                        ..SwarmConfig::default()
                    })
                    .listen_on("/memory/0".parse().unwrap())
                    .build()
                    .await
                    .unwrap();
                // The identify service's own tasks are held back: it is stalled.
                gate.capture.store(true, Ordering::Release);
                let identify = Identify::new(&server, IdentifyConfig::default());
                gate.capture.store(false, Ordering::Release);

                let target: Multiaddr = server.listen_addrs()[0]
                    .clone()
                    .with(lp2p_core::Protocol::P2p(server.local_peer_id()));
                let mut clients = Vec::new();
                for _ in 0..CLIENTS {
                    let client = memory().build().await.unwrap();
                    let _answers = Identify::new(&client, IdentifyConfig::default());
                    clients.push(client);
                }
                let dials = clients.iter().flat_map(|c| {
                    (0..PER_CLIENT).map(|_| {
                        let (c, target) = (c.clone(), target.clone());
                        async move { c.swarm().dial_new(target).await.unwrap() }
                    })
                });
                // Keep well under the pending-inbound limit.
                let conns: Vec<_> = futures::stream::iter(dials)
                    .buffer_unordered(32)
                    .collect()
                    .await;
                assert_eq!(conns.len(), CONNECTIONS);
                while server.swarm().connection_counts().0 < CONNECTIONS {
                    rt.sleep(Duration::from_millis(20)).await;
                }
                assert_eq!(identify.stats().applied, 0, "the service is stalled");

                gate.release();
                loop {
                    let identified = clients
                        .iter()
                        .filter(|c| identify.info(&c.local_peer_id()).is_some())
                        .count();
                    if identified == CLIENTS && identify.stats().applied >= CONNECTIONS as u64 {
                        break;
                    }
                    rt.sleep(Duration::from_millis(50)).await;
                }
                assert_eq!(identify.stats().failed, 0);
                for c in &clients {
                    c.close().await;
                }
                server.close().await;
            })
            .await
            .expect("test timed out");
    });
}
