//! The simulation: a single-threaded executor on a virtual clock.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lp2p_core::RuntimeHandle;

use crate::config::SimConfig;
use crate::error::TestkitError;
use crate::runtime::{SimHandle, VirtualRuntime};
use crate::shared::{Next, Shared};

/// A virtual-time runtime with a deterministic single-threaded executor.
///
/// Tasks spawned through its [`RuntimeHandle`] run on the thread that calls
/// [`block_on`](Sim::block_on). When no task can make progress, the clock jumps to the next
/// timer (like tokio's paused time with auto-advance), so a test that waits ten minutes for
/// a TTL takes microseconds. Which ready task runs next is drawn from a generator seeded by
/// [`SimConfig::seed`]: the same seed gives the same schedule, another seed another
/// interleaving.
///
/// Everything the code under test waits on must be woken from inside the simulation (its
/// tasks, its timers) or from a thread the test started; sockets are not (TCP's readiness
/// comes from the OS, which virtual time cannot wait for), so virtual-time tests use the
/// memory transport.
///
/// Dropping the `Sim` drops every task still alive.
pub struct Sim {
    handle: SimHandle,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sim").field(&self.handle).finish()
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

impl Sim {
    /// A simulation with [`SimConfig::default`] (a fixed seed).
    pub fn new() -> Sim {
        Sim::with_config(SimConfig::default())
    }

    /// A simulation with this configuration.
    pub fn with_config(config: SimConfig) -> Sim {
        // The one reading of the real clock: virtual time needs an `Instant` to count from.
        // Only offsets from it are ever observed, so runs stay comparable.
        let shared = Shared::new(config, Instant::now());
        let runtime = RuntimeHandle::new(VirtualRuntime {
            shared: shared.clone(),
        });
        Sim {
            handle: SimHandle { shared, runtime },
        }
    }

    /// The handle to use inside the test (cloneable, `Send`).
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The runtime handle to give to hosts and protocol code.
    pub fn runtime(&self) -> RuntimeHandle {
        self.handle.runtime.clone()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.handle.now()
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.handle.elapsed()
    }

    /// Moves the clock forward by `by` without running anything (see [`SimHandle::advance`]).
    pub fn advance(&self, by: Duration) {
        self.handle.advance(by);
    }

    /// Tasks spawned and not finished.
    pub fn tasks(&self) -> usize {
        self.handle.shared.lock().task_count()
    }

    /// A fingerprint of every scheduling decision and clock move so far: two runs of the
    /// same program with the same seed end with the same fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.handle.shared.lock().fingerprint()
    }

    /// Runs `future` and the spawned tasks until `future` completes, advancing virtual time
    /// whenever nothing is ready.
    ///
    /// # Panics
    ///
    /// With the [`TestkitError`] message when [`try_block_on`](Sim::try_block_on) fails:
    /// a deadlock, the virtual time limit, the poll limit, or a nested call. A panic inside
    /// a task spawned with [`RuntimeHandle::spawn`] is contained there; one inside `future`
    /// propagates.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self.try_block_on(future) {
            Ok(output) => output,
            Err(err) => panic!("lp2p-testkit: {err}"),
        }
    }

    /// [`block_on`](Sim::block_on), with failures returned instead of panicking.
    pub fn try_block_on<F: Future>(&self, future: F) -> Result<F::Output, TestkitError> {
        let shared = &self.handle.shared;
        let _running = Running::enter(shared)?;
        let waker = shared.main_waker();
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        shared.wake(crate::shared::MAIN);
        loop {
            match self.step(true)? {
                Step::Main => {
                    if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                        Shared::clear_main(&mut shared.lock());
                        return Ok(output);
                    }
                }
                // `step(true)` advances the clock instead of reporting idle.
                Step::Polled | Step::Idle => {}
            }
        }
    }

    /// Runs every task that is ready, and those they wake, without moving the clock; returns
    /// when none is ready.
    pub fn run_until_idle(&self) -> Result<(), TestkitError> {
        let _running = Running::enter(&self.handle.shared)?;
        loop {
            match self.step(false)? {
                Step::Idle => return Ok(()),
                Step::Main | Step::Polled => {}
            }
        }
    }

    /// Runs the simulation for `duration` of virtual time (tasks run and timers fire up to
    /// then).
    pub fn run_for(&self, duration: Duration) -> Result<(), TestkitError> {
        let sleep = self.handle.sleep(duration);
        self.try_block_on(sleep)
    }

    /// One scheduling step: polls one ready task, or reports the main future ready, or
    /// (with `advance`) moves the clock to the next timer, or waits for an outside wake.
    fn step(&self, advance: bool) -> Result<Step, TestkitError> {
        let shared = &self.handle.shared;
        loop {
            let mut state = shared.lock();
            match Shared::next(&mut state) {
                Next::Main => {
                    count_poll(&mut state)?;
                    return Ok(Step::Main);
                }
                Next::Task(id, mut future, waker) => {
                    count_poll(&mut state)?;
                    drop(state);
                    let finished = future
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_ready();
                    let dropped = Shared::put_back(&mut shared.lock(), id, future, finished);
                    drop(dropped);
                    return Ok(Step::Polled);
                }
                Next::Idle if !advance => return Ok(Step::Idle),
                Next::Idle => {}
            }
            if let Some(deadline) = state.timers.next_deadline() {
                let next = deadline.saturating_duration_since(state.start);
                if next > state.config.time_limit {
                    return Err(TestkitError::TimeLimit {
                        limit: state.config.time_limit,
                        next,
                        tasks: state.task_count(),
                    });
                }
                let due = Shared::set_now(&mut state, deadline);
                drop(state);
                for waker in due {
                    waker.wake();
                }
                continue;
            }
            let wait = state.config.stall_wait;
            let (state, progress) = shared.wait_for_outside(state, wait);
            if !progress {
                return Err(TestkitError::Stalled {
                    elapsed: state.elapsed(),
                    tasks: state.task_count(),
                });
            }
        }
    }
}

fn count_poll(state: &mut crate::shared::State) -> Result<(), TestkitError> {
    if state.polls >= state.config.poll_limit {
        return Err(TestkitError::PollLimit {
            limit: state.config.poll_limit,
            elapsed: state.elapsed(),
        });
    }
    state.polls = state.polls.saturating_add(1);
    Ok(())
}

enum Step {
    Main,
    Polled,
    Idle,
}

/// Marks the simulation as running for the duration of a `block_on` (reset on unwind too).
struct Running<'a>(&'a Arc<Shared>);

impl<'a> Running<'a> {
    fn enter(shared: &'a Arc<Shared>) -> Result<Running<'a>, TestkitError> {
        let mut state = shared.lock();
        if state.running {
            return Err(TestkitError::Nested);
        }
        state.running = true;
        state.polls = 0;
        Ok(Running(shared))
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let (tasks, timers) = self.handle.shared.shut_down();
        // Dropped outside the lock: a task's drop may spawn (refused now) or drop timers.
        drop(tasks);
        drop(timers);
    }
}

/// Runs a test body in a fresh [`Sim`] configured by [`SimConfig::from_env`] (the default
/// seed unless `LP2P_TESTKIT_SEED` is set) and returns its output.
///
/// ```
/// use std::time::Duration;
///
/// let elapsed = lp2p_testkit::run(|sim| async move {
///     sim.sleep(Duration::from_secs(600)).await; // ten virtual minutes, no real wait
///     sim.elapsed()
/// });
/// assert_eq!(elapsed, Duration::from_secs(600));
/// ```
///
/// # Panics
///
/// As [`Sim::block_on`] does.
pub fn run<F, Fut>(test: F) -> Fut::Output
where
    F: FnOnce(SimHandle) -> Fut,
    Fut: Future,
{
    let sim = Sim::with_config(SimConfig::from_env());
    let future = test(sim.handle());
    sim.block_on(future)
}
