//! The `Runtime` seen by the code under test, its timers, and the handle tests hold.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lp2p_core::{Keypair, Runtime, RuntimeHandle};

use crate::rng::SimRng;
use crate::shared::Shared;
use crate::timers::TimerKey;

/// The [`Runtime`] of a simulation: `spawn` queues on its executor, `now` is its virtual
/// clock and `sleep` completes when that clock reaches the deadline.
pub(crate) struct VirtualRuntime {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime for VirtualRuntime {
    fn name(&self) -> &'static str {
        "virtual"
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.shared.spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(Sleep::new(self.shared.clone(), duration))
    }

    fn now(&self) -> Instant {
        self.shared.lock().now
    }
}

/// A timer on the virtual clock. The deadline is fixed when it is created (like tokio's and
/// async-io's timers); a deadline beyond what an `Instant` holds never fires.
struct Sleep {
    shared: Arc<Shared>,
    deadline: Option<Instant>,
    key: Option<TimerKey>,
}

impl Sleep {
    fn new(shared: Arc<Shared>, duration: Duration) -> Sleep {
        let deadline = shared.lock().now.checked_add(duration);
        Sleep {
            shared,
            deadline,
            key: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let mut state = self.shared.lock();
        if state.now >= deadline {
            if let Some(key) = self.key {
                state.timers.remove(key);
            }
            drop(state);
            self.key = None;
            return Poll::Ready(());
        }
        if let Some(key) = self.key {
            state.timers.update(key, cx.waker());
        } else {
            drop(state);
            let key = self.shared.add_timer(deadline, cx.waker().clone());
            self.key = Some(key);
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.lock().timers.remove(key);
        }
    }
}

/// A cloneable handle to a running [`Sim`](crate::Sim), for use inside the test: the
/// [`RuntimeHandle`] to give to hosts and protocol code, the virtual clock, and seeded keys.
#[derive(Clone)]
pub struct SimHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runtime: RuntimeHandle,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("SimHandle")
            .field("seed", &state.config.seed)
            .field("elapsed", &state.elapsed())
            .field("tasks", &state.task_count())
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The runtime handle of the simulation (every clone shares one live-task count; hosts
    /// take their own scope of it).
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.runtime
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.shared.lock().now
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.shared.lock().elapsed()
    }

    /// A future that completes after `duration` of virtual time.
    pub fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.runtime.sleep(duration)
    }

    /// The seed the simulation runs with.
    pub fn seed(&self) -> u64 {
        self.shared.lock().config.seed
    }

    /// A fresh Ed25519 identity derived from the seed: the n-th call of a run returns the
    /// same key in every run with that seed (so peer ids, and whatever is ordered by them,
    /// repeat).
    pub fn keypair(&self) -> Keypair {
        let mut secret = [0u8; 32];
        self.shared.lock().keys.fill(&mut secret);
        match Keypair::ed25519_from_bytes(secret) {
            Ok(key) => key,
            // Any 32 bytes are a valid Ed25519 secret key; the error is unreachable.
            Err(err) => panic!("32 bytes were refused as an Ed25519 secret key: {err}"),
        }
    }

    /// A generator for the test's own random choices, derived from the seed (independent of
    /// the schedule and of [`keypair`](SimHandle::keypair)).
    pub fn rng(&self) -> SimRng {
        self.shared.lock().keys.fork()
    }

    /// Moves the virtual clock forward by `by` and wakes the timers that became due (they
    /// run the next time the simulation runs). For synchronous tests of code that reads
    /// the clock; inside a running simulation, `sleep` is the usual way to let time pass.
    pub fn advance(&self, by: Duration) {
        let wakers = {
            let mut state = self.shared.lock();
            let to = state.now.checked_add(by).unwrap_or(state.now);
            Shared::set_now(&mut state, to)
        };
        for waker in wakers {
            waker.wake();
        }
    }
}
