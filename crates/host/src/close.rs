//! The graceful part of closing a host: work services registered with
//! [`Host::on_close`](crate::Host::on_close), run once, concurrently, within the close grace.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use lp2p_core::RuntimeHandle;

/// One service's "before close" work: called once when the host starts closing.
type Hook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// The registered hooks until the host starts closing, then the one run of all of them that
/// every caller of `close` waits for.
pub(crate) struct CloseHooks {
    state: Mutex<State>,
}

enum State {
    Open(Vec<Hook>),
    Closing(Shared<BoxFuture<'static, ()>>),
}

impl Default for CloseHooks {
    fn default() -> Self {
        CloseHooks {
            state: Mutex::new(State::Open(Vec::new())),
        }
    }
}

impl CloseHooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a hook; false (the hook is dropped unrun) once closing has begun.
    pub(crate) fn register<F, Fut>(&self, hook: F) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match &mut *self.lock() {
            State::Open(hooks) => {
                hooks.push(Box::new(move || hook().boxed()));
                true
            }
            State::Closing(_) => false,
        }
    }

    /// Whether closing has begun.
    pub(crate) fn is_closing(&self) -> bool {
        matches!(&*self.lock(), State::Closing(_))
    }

    /// Runs every hook at once (the first call starts them; later calls join the same run)
    /// and waits until all finished or `grace` ran out.
    pub(crate) async fn run(&self, runtime: &RuntimeHandle, grace: Duration) {
        let run = {
            let mut state = self.lock();
            match &mut *state {
                State::Closing(run) => run.clone(),
                State::Open(hooks) => {
                    let hooks = std::mem::take(hooks);
                    let run = start(hooks, runtime.clone(), grace).shared();
                    *state = State::Closing(run.clone());
                    run
                }
            }
        };
        run.await;
    }
}

fn start(hooks: Vec<Hook>, runtime: RuntimeHandle, grace: Duration) -> BoxFuture<'static, ()> {
    async move {
        if hooks.is_empty() || grace.is_zero() {
            return;
        }
        let count = hooks.len();
        let all = futures::future::join_all(hooks.into_iter().map(|hook| hook()));
        if runtime.timeout(grace, all).await.is_err() {
            tracing::warn!(
                hooks = count,
                ?grace,
                "services did not finish flushing within the close grace; closing anyway"
            );
        }
    }
    .boxed()
}

#[cfg(all(test, any(feature = "async-std", feature = "smol")))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn hooks_run_once_and_late_ones_are_refused() {
        let runtime = RuntimeHandle::default();
        let hooks = CloseHooks::default();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let runs = runs.clone();
            assert!(hooks.register(move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
            }));
        }
        assert!(!hooks.is_closing());
        lp2p_core::runtime::block_on(async {
            hooks.run(&runtime, Duration::from_secs(60)).await;
            hooks.run(&runtime, Duration::from_secs(60)).await;
        });
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(hooks.is_closing());
        assert!(!hooks.register(|| async {}));
    }

    #[test]
    fn a_stuck_hook_is_cut_off_by_the_grace() {
        let runtime = RuntimeHandle::default();
        let hooks = CloseHooks::default();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        hooks.register(futures::future::pending::<()>);
        hooks.register(move || async move {
            done.fetch_add(1, Ordering::SeqCst);
        });
        lp2p_core::runtime::block_on(hooks.run(&runtime, Duration::from_millis(50)));
        // The quick hook ran to its end; the stuck one did not hold close up.
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
