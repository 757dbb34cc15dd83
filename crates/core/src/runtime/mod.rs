//! The runtime seam: spawning tasks and timers behind one small trait.
//!
//! Protocol crates never name an executor. They take a [`RuntimeHandle`] and call
//! [`spawn`](RuntimeHandle::spawn), [`sleep`](RuntimeHandle::sleep) and
//! [`timeout`](RuntimeHandle::timeout) on it. Two implementations ship here: async-std
//! (feature `async-std`, the default) and smol (feature `smol`); both run on the same engine
//! (`async-io` for sockets and timers), so the TCP transport serves both. Any other executor
//! can be plugged in by implementing [`Runtime`].
//!
//! Every handle counts the tasks spawned through it that are still alive
//! ([`live_tasks`](RuntimeHandle::live_tasks)); [`scope`](RuntimeHandle::scope) makes a
//! handle with a fresh count, which is how a host checks that closing it left no task behind.
//!
//! ```
//! # #[cfg(any(feature = "async-std", feature = "smol"))] {
//! use lp2p_core::RuntimeHandle;
//! use std::time::Duration;
//!
//! let rt = RuntimeHandle::default();
//! let answer = lp2p_core::runtime::block_on(async {
//!     let task = rt.spawn(async { 6 * 7 });
//!     rt.timeout(Duration::from_secs(10), task).await
//! });
//! assert_eq!(answer.unwrap().unwrap(), 42);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable, BoxFuture};

use crate::Error;

#[cfg(feature = "async-std")]
mod async_std_rt;
mod choice;
#[cfg(feature = "smol")]
mod smol_rt;

#[cfg(feature = "async-std")]
pub use async_std_rt::AsyncStdRuntime;
pub use choice::RUNTIME_ENV;
#[cfg(feature = "smol")]
pub use smol_rt::SmolRuntime;

/// An executor and timer source. Implement it to run lp2p on another runtime.
pub trait Runtime: Send + Sync + 'static {
    /// A short name for logs, e.g. `"async-std"`.
    fn name(&self) -> &'static str;

    /// Runs `task` in the background until it completes. The runtime must poll it on some
    /// thread; it may drop it unpolled only when the runtime itself shuts down.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// The current time. Every lp2p shell reads the clock through this (never through
    /// `Instant::now()` directly), so a virtual-time runtime (`lp2p-testkit`) can drive
    /// whole hosts in tests; `sleep` must agree with it.
    fn now(&self) -> Instant;
}

/// A cheap, cloneable handle to a [`Runtime`] that also counts the tasks spawned through it.
#[derive(Clone)]
pub struct RuntimeHandle {
    runtime: Arc<dyn Runtime>,
    live: Arc<AtomicUsize>,
}

impl RuntimeHandle {
    /// A handle to the given runtime, with a fresh task count.
    pub fn new(runtime: impl Runtime) -> RuntimeHandle {
        RuntimeHandle {
            runtime: Arc::new(runtime),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A handle to the same runtime with its own task count: tasks spawned through the new
    /// handle (and its clones) are counted there and not here.
    #[must_use]
    pub fn scope(&self) -> RuntimeHandle {
        RuntimeHandle {
            runtime: self.runtime.clone(),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The runtime's name.
    pub fn name(&self) -> &'static str {
        self.runtime.name()
    }

    /// Spawns `future` and returns a handle to await its output or abort it.
    ///
    /// Dropping the [`JoinHandle`] detaches the task (it keeps running). A panic inside the
    /// task is caught: it ends that task only, and its handle yields
    /// [`Error::TaskPanicked`].
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let (abort, registration) = AbortHandle::new_pair();
        let task = Abortable::new(AssertUnwindSafe(future).catch_unwind(), registration);
        let guard = LiveGuard::new(self.live.clone());
        self.runtime.spawn(Box::pin(async move {
            let _guard = guard;
            let outcome = match task.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(panic)) => {
                    let message = panic_message(&*panic);
                    tracing::error!(panic = %message, "a spawned task panicked");
                    Err(Error::TaskPanicked(message))
                }
                Err(_aborted) => Err(Error::TaskAborted),
            };
            let _ = tx.send(outcome);
        }));
        JoinHandle { rx, abort }
    }

    /// [`spawn`](RuntimeHandle::spawn) for a task nobody awaits: it runs to its end (or
    /// until the runtime shuts down), still counted and panic-contained.
    pub fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.spawn(future));
    }

    /// A future that completes after `duration`.
    pub fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.runtime.sleep(duration)
    }

    /// The runtime's current time (see [`Runtime::now`]).
    pub fn now(&self) -> Instant {
        self.runtime.now()
    }

    /// A future that completes at `deadline` (at once when it has passed).
    pub fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.runtime
            .sleep(deadline.saturating_duration_since(self.runtime.now()))
    }

    /// Runs `future` for at most `duration`; fails with [`Error::Timeout`] after that.
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Error> {
        let sleep = self.runtime.sleep(duration);
        futures::pin_mut!(future);
        match futures::future::select(future, sleep).await {
            futures::future::Either::Left((value, _)) => Ok(value),
            futures::future::Either::Right(((), _)) => Err(Error::Timeout(duration)),
        }
    }

    /// The number of tasks spawned through this handle (or its clones, not its scopes) that
    /// have not finished yet.
    pub fn live_tasks(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

impl RuntimeHandle {
    /// The runtime chosen by lp2p-core's cargo features, or `None` when neither `async-std`
    /// nor `smol` is enabled. Crates above lp2p-core call this instead of testing features
    /// themselves, so enabling a runtime feature on lp2p-core anywhere in the build is enough.
    /// With both features on, [`RUNTIME_ENV`] picks (async-std unless it says `smol`).
    pub fn try_default() -> Option<RuntimeHandle> {
        match choice::chosen()? {
            #[cfg(feature = "async-std")]
            choice::Choice::AsyncStd => Some(RuntimeHandle::new(AsyncStdRuntime)),
            #[cfg(feature = "smol")]
            choice::Choice::Smol => Some(RuntimeHandle::new(SmolRuntime)),
        }
    }
}

#[cfg(any(feature = "async-std", feature = "smol"))]
impl Default for RuntimeHandle {
    /// The runtime chosen by cargo features: the one enabled, or with both enabled the one
    /// [`RUNTIME_ENV`] names (async-std unless it says `smol`).
    fn default() -> RuntimeHandle {
        match choice::chosen() {
            #[cfg(feature = "smol")]
            Some(choice::Choice::Smol) => RuntimeHandle::new(SmolRuntime),
            #[cfg(feature = "async-std")]
            _ => RuntimeHandle::new(AsyncStdRuntime),
            #[cfg(not(feature = "async-std"))]
            _ => RuntimeHandle::new(SmolRuntime),
        }
    }
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("runtime", &self.runtime.name())
            .field("live", &self.live_tasks())
            .finish()
    }
}

/// Runs a future to completion on the current thread, with the runtime chosen by cargo
/// features (see [`RuntimeHandle::default`]). For `main` functions, tests and examples.
#[cfg(any(feature = "async-std", feature = "smol"))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    match choice::chosen() {
        #[cfg(feature = "smol")]
        Some(choice::Choice::Smol) => smol::block_on(future),
        #[cfg(feature = "async-std")]
        _ => async_std::task::block_on(future),
        #[cfg(not(feature = "async-std"))]
        _ => smol::block_on(future),
    }
}

/// A handle to a task spawned with [`RuntimeHandle::spawn`].
///
/// Await it for the task's output; drop it to detach the task; call
/// [`abort`](JoinHandle::abort) to stop the task at its next suspension point.
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    rx: oneshot::Receiver<Result<T, Error>>,
    abort: AbortHandle,
}

impl<T> JoinHandle<T> {
    /// Stops the task at its next suspension point. Awaiting the handle then yields
    /// [`Error::TaskAborted`] (unless the task had already finished).
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// A handle that can abort the task without owning the `JoinHandle`.
    pub fn abort_handle(&self) -> AbortHandle {
        self.abort.clone()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.rx.poll_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            // The runtime dropped the task without running it to the end.
            Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(Error::TaskAborted)),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

/// Counts a task as live from spawn until its future is dropped (finished or not).
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: Arc<AtomicUsize>) -> LiveGuard {
        live.fetch_add(1, Ordering::AcqRel);
        LiveGuard(live)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(all(test, any(feature = "async-std", feature = "smol")))]
mod tests {
    use super::*;

    #[test]
    fn spawn_returns_output_and_counts_tasks() {
        let rt = RuntimeHandle::default();
        block_on(async {
            let (tx, rx) = oneshot::channel::<()>();
            let task = rt.spawn(async move {
                let _ = rx.await;
                7
            });
            assert_eq!(rt.live_tasks(), 1);
            tx.send(()).unwrap();
            assert_eq!(task.await.unwrap(), 7);
            // The guard drops right after the output is sent; wait for it.
            while rt.live_tasks() != 0 {
                rt.sleep(Duration::from_millis(1)).await;
            }
        });
    }

    #[test]
    fn abort_stops_a_task() {
        let rt = RuntimeHandle::default();
        block_on(async {
            let task = rt.spawn(futures::future::pending::<()>());
            task.abort();
            assert!(matches!(task.await, Err(Error::TaskAborted)));
        });
    }

    #[test]
    fn panic_is_contained() {
        let rt = RuntimeHandle::default();
        block_on(async {
            let task = rt.spawn(async { panic!("boom") });
            match task.await {
                Err(Error::TaskPanicked(msg)) => assert_eq!(msg, "boom"),
                other => panic!("unexpected {other:?}"),
            }
            // The runtime still works.
            assert_eq!(rt.spawn(async { 1 }).await.unwrap(), 1);
        });
    }

    #[test]
    fn timeout_fires() {
        let rt = RuntimeHandle::default();
        block_on(async {
            let r = rt
                .timeout(Duration::from_millis(10), futures::future::pending::<()>())
                .await;
            assert!(matches!(r, Err(Error::Timeout(_))));
            let r = rt.timeout(Duration::from_secs(30), async { 3 }).await;
            assert_eq!(r.unwrap(), 3);
        });
    }

    #[test]
    fn scopes_count_separately() {
        let rt = RuntimeHandle::default();
        let scoped = rt.scope();
        block_on(async {
            let task = scoped.spawn(futures::future::pending::<()>());
            assert_eq!(scoped.live_tasks(), 1);
            assert_eq!(rt.live_tasks(), 0);
            task.abort();
            let _ = task.await;
        });
    }
}
