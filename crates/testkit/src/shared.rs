//! The state one simulation's executor, clock and wakers share.
//!
//! Locking rule: nothing is polled, woken or dropped (futures, wakers) while the state lock
//! is held, because all three can re-enter the executor (a task's drop can spawn, a wake
//! takes the lock).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::config::SimConfig;
use crate::rng::SimRng;
use crate::timers::{TimerKey, Timers};

/// The id the future given to `block_on` is scheduled under; spawned tasks count from 1.
pub(crate) const MAIN: u64 = 0;

/// A spawned task.
struct Slot {
    /// `None` while the executor polls it.
    future: Option<BoxFuture<'static, ()>>,
    /// Already in the ready list (so a second wake adds nothing).
    queued: bool,
    waker: Waker,
}

pub(crate) struct State {
    pub(crate) config: SimConfig,
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    tasks: BTreeMap<u64, Slot>,
    next_task: u64,
    /// Ready task ids; the next one is picked at random by `schedule`.
    ready: Vec<u64>,
    main_queued: bool,
    pub(crate) timers: Timers,
    schedule: SimRng,
    pub(crate) keys: SimRng,
    /// A `block_on` is in progress.
    pub(crate) running: bool,
    shutdown: bool,
    /// Polls in the current `block_on`.
    pub(crate) polls: u64,
    /// FNV-1a over every scheduling decision and clock move since the start.
    fingerprint: u64,
}

/// What the executor does next.
pub(crate) enum Next {
    /// Poll the `block_on` future.
    Main,
    /// Poll this task (taken out of its slot).
    Task(u64, BoxFuture<'static, ()>, Waker),
    /// Nothing is ready.
    Idle,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every wake and spawn, for wakes from outside the simulation.
    wakeup: Condvar,
    /// Ourselves, for the wakers of new tasks.
    this: Weak<Shared>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(hash: u64, value: u64) -> u64 {
    value
        .to_le_bytes()
        .iter()
        .fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
}

impl Shared {
    /// A simulation's shared state; the clock starts at `start`.
    pub(crate) fn new(config: SimConfig, start: Instant) -> Arc<Shared> {
        let mut seed = SimRng::new(config.seed);
        let keys = seed.fork();
        Arc::new_cyclic(|this| Shared {
            state: Mutex::new(State {
                config,
                start,
                now: start,
                tasks: BTreeMap::new(),
                next_task: MAIN.wrapping_add(1),
                ready: Vec::new(),
                main_queued: false,
                timers: Timers::default(),
                schedule: seed,
                keys,
                running: false,
                shutdown: false,
                polls: 0,
                fingerprint: FNV_OFFSET,
            }),
            wakeup: Condvar::new(),
            this: this.clone(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a few field writes; a panic elsewhere (a test
        // assertion inside a task) leaves the state whole, so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waker(&self, id: u64) -> Waker {
        Waker::from(Arc::new(TaskWaker {
            id,
            shared: self.this.clone(),
        }))
    }

    /// The waker of the `block_on` future.
    pub(crate) fn main_waker(&self) -> Waker {
        self.waker(MAIN)
    }

    /// Adds a task, ready to run. After shutdown the task is dropped unpolled.
    pub(crate) fn spawn(&self, future: BoxFuture<'static, ()>) {
        let mut state = self.lock();
        if state.shutdown {
            drop(state);
            drop(future);
            return;
        }
        let id = state.next_task;
        state.next_task = id.wrapping_add(1);
        let waker = self.waker(id);
        state.tasks.insert(
            id,
            Slot {
                future: Some(future),
                queued: true,
                waker,
            },
        );
        state.ready.push(id);
        drop(state);
        self.wakeup.notify_all();
    }

    /// Makes task `id` (or the main future) ready.
    pub(crate) fn wake(&self, id: u64) {
        let mut state = self.lock();
        let state = &mut *state;
        if id == MAIN {
            if !state.main_queued {
                state.main_queued = true;
                state.ready.push(MAIN);
            }
        } else if let Some(slot) = state.tasks.get_mut(&id)
            && !slot.queued
        {
            slot.queued = true;
            state.ready.push(id);
        }
        self.wakeup.notify_all();
    }

    /// Takes the next ready entry, picked at random (by the seed) among the ready ones.
    pub(crate) fn next(state: &mut State) -> Next {
        loop {
            if state.ready.is_empty() {
                return Next::Idle;
            }
            let index = state.schedule.below(state.ready.len());
            let id = state.ready.swap_remove(index);
            state.fingerprint = fnv(state.fingerprint, id);
            if id == MAIN {
                state.main_queued = false;
                return Next::Main;
            }
            let Some(slot) = state.tasks.get_mut(&id) else {
                continue;
            };
            slot.queued = false;
            let Some(future) = slot.future.take() else {
                continue;
            };
            return Next::Task(id, future, slot.waker.clone());
        }
    }

    /// Puts a polled, still pending task back, or forgets a finished one. Returns the
    /// future when it must be dropped (finished, or the simulation shut down meanwhile);
    /// the caller drops it after releasing the lock.
    pub(crate) fn put_back(
        state: &mut State,
        id: u64,
        future: BoxFuture<'static, ()>,
        finished: bool,
    ) -> Option<BoxFuture<'static, ()>> {
        if finished || state.shutdown {
            state.tasks.remove(&id);
            return Some(future);
        }
        match state.tasks.get_mut(&id) {
            Some(slot) => {
                slot.future = Some(future);
                None
            }
            None => Some(future),
        }
    }

    /// Forgets a pending wake of the main future (it completed).
    pub(crate) fn clear_main(state: &mut State) {
        if state.main_queued {
            state.main_queued = false;
            state.ready.retain(|id| *id != MAIN);
        }
    }

    /// Moves the clock to `to` (never backwards) and returns the wakers of the timers now
    /// due, for the caller to wake after releasing the lock.
    pub(crate) fn set_now(state: &mut State, to: Instant) -> Vec<Waker> {
        if to > state.now {
            state.now = to;
            let nanos = to.saturating_duration_since(state.start).as_nanos();
            state.fingerprint = fnv(state.fingerprint, u64::try_from(nanos).unwrap_or(u64::MAX));
        }
        let now = state.now;
        state.timers.take_due(now)
    }

    /// Waits (real time) up to `wait` for a wake or spawn from outside the simulation.
    /// Returns the guard and whether anything became ready or a timer was armed.
    pub(crate) fn wait_for_outside<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
        wait: Duration,
    ) -> (MutexGuard<'a, State>, bool) {
        let (state, _) = self
            .wakeup
            .wait_timeout_while(state, wait, |s| s.ready.is_empty() && s.timers.len() == 0)
            .unwrap_or_else(PoisonError::into_inner);
        let progress = !state.ready.is_empty() || state.timers.len() > 0;
        (state, progress)
    }

    /// Registers a timer (see `Sleep`).
    pub(crate) fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        self.lock().timers.insert(deadline, waker)
    }

    /// Stops the simulation: no task runs or is accepted again. Returns what must be dropped
    /// after the lock is released.
    pub(crate) fn shut_down(&self) -> (Vec<BoxFuture<'static, ()>>, Vec<Waker>) {
        let mut state = self.lock();
        state.shutdown = true;
        state.ready.clear();
        state.main_queued = false;
        let tasks = std::mem::take(&mut state.tasks)
            .into_values()
            .filter_map(|slot| slot.future)
            .collect();
        let timers = state.timers.clear();
        (tasks, timers)
    }
}

impl State {
    /// Tasks alive (spawned and not finished).
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// The schedule's fingerprint so far.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }
}

/// Wakes one task (or the main future) of a simulation; harmless once it is gone.
struct TaskWaker {
    id: u64,
    shared: Weak<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.shared.upgrade() {
            shared.wake(self.id);
        }
    }
}
