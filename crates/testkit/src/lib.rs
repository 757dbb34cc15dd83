//! Test kit for lp2p: a virtual-time runtime, scripted peers and network fixtures.
//!
//! A dev-dependency only. What it holds:
//!
//! - [`Sim`]: a [`Runtime`](lp2p_core::Runtime) on a virtual clock with a deterministic
//!   single-threaded executor. `RuntimeHandle::now()` returns virtual time, `sleep` completes
//!   when virtual time reaches its deadline, and when no task can make progress the clock
//!   jumps to the next timer (tokio's paused time with auto-advance). A test that waits for a
//!   ten-minute TTL or a keep-alive timeout runs in microseconds and never depends on how
//!   fast the machine is. The next task to run is drawn from a generator seeded by
//!   [`SimConfig::seed`]: same seed, same schedule ([`Sim::fingerprint`] proves it);
//!   `LP2P_TESTKIT_SEED` picks another for [`run`].
//! - [`run`]: the entry point for a test body; [`SimHandle`] inside it gives the
//!   [`RuntimeHandle`](lp2p_core::RuntimeHandle), the clock and seeded identities.
//! - [`hosts`] (feature `hosts`, on by default): hosts on the memory transport with plaintext
//!   and yamux under the simulation: [`hosts::pair`], [`hosts::network`], [`hosts::builder`].
//! - [`io`]: in-memory pipes, [`ScriptedPeer`](io::ScriptedPeer) (send exact bytes, expect
//!   exact bytes), [`ScriptedStream`](io::ScriptedStream) (input cut into chosen pieces) and
//!   [`Recorder`](io::Recorder) (the bytes of every write call).
//! - [`wait_until`]: poll a condition on the runtime's clock.
//! - `netns` (feature `netns`, Linux, root): network namespaces joined by veth pairs and
//!   nftables NAT routers for tests over real sockets, removed when dropped;
//!   `hole_punching` builds the NAT tests' testbeds (IPv4 NATs, IPv6 firewalls) with it.
//!
//! Everything a simulated test waits on must be woken inside the simulation: its tasks, its
//! timers and the memory transport are; TCP sockets are not (their readiness comes from the
//! OS, which virtual time cannot wait for), so virtual-time tests use the memory transport.
//! A deadlock fails with [`TestkitError::Stalled`] instead of hanging, a future that never
//! completes with [`TestkitError::TimeLimit`].
//!
//! # Example: two hosts, an echo, and a minute that takes no time
//!
//! ```
//! # #[cfg(feature = "hosts")] {
//! use std::time::Duration;
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_host::HostStream;
//! use lp2p_testkit::hosts;
//!
//! lp2p_testkit::run(|sim| async move {
//!     let (server, client) = hosts::pair(&sim).await.unwrap();
//!     server.set_stream_handler("/echo/1.0.0", |mut s: HostStream| async move {
//!         let mut buf = [0u8; 5];
//!         if s.read_exact(&mut buf).await.is_ok() {
//!             let _ = s.write_all(&buf).await;
//!         }
//!     });
//!     let mut stream = client.new_stream(&server.local_peer_id(), ["/echo/1.0.0"]).await.unwrap();
//!     stream.write_all(b"hello").await.unwrap();
//!     let mut echo = [0u8; 5];
//!     stream.read_exact(&mut echo).await.unwrap();
//!     assert_eq!(&echo, b"hello");
//!
//!     // A minute of virtual time: timers fire, no real time passes.
//!     let before = sim.now();
//!     sim.sleep(Duration::from_secs(60)).await;
//!     assert_eq!(sim.now() - before, Duration::from_secs(60));
//!
//!     client.close().await;
//!     server.close().await;
//! });
//! # }
//! ```

mod config;
mod error;
#[cfg(feature = "netns")]
pub mod hole_punching;
#[cfg(feature = "hosts")]
pub mod hosts;
pub mod io;
#[cfg(feature = "netns")]
pub mod netns;
mod rng;
mod runtime;
mod shared;
mod sim;
mod timers;
mod wait;

pub use config::{
    DEFAULT_POLL_LIMIT, DEFAULT_SEED, DEFAULT_STALL_WAIT, DEFAULT_TIME_LIMIT, SEED_ENV, SimConfig,
};
pub use error::TestkitError;
pub use rng::SimRng;
pub use runtime::SimHandle;
pub use sim::{Sim, run};
pub use wait::{WAIT_INTERVAL, wait_until};
