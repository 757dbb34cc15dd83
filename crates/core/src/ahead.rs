//! Values made ahead of the moment they are needed, by a background thread at the lowest
//! priority.
//!
//! A handshake starts by making an ephemeral key pair: a base point multiplication on the
//! connection's critical path, on both sides. [`MadeAhead`] keeps a few ready. Taking one
//! wakes its thread to make the next; the thread sleeps on a condition variable while the
//! pool is full, so an idle node spends nothing on it. Each value is handed out once.
//!
//! Used by lp2p-tls for its X25519 key shares (decision D63) and by lp2p-noise for its
//! ephemeral keys (D75).
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use lp2p_core::ahead::MadeAhead;
//!
//! static MADE: AtomicU64 = AtomicU64::new(0);
//! // Stands in for an expensive computation, such as a key pair.
//! fn make() -> Option<u64> {
//!     Some(MADE.fetch_add(1, Ordering::Relaxed))
//! }
//! static NUMBERS: MadeAhead<u64> = MadeAhead::new("doc-numbers", 4, make);
//!
//! // The first take starts the thread and may find the pool still empty.
//! let first = NUMBERS.take().or_else(make);
//! let second = NUMBERS.take().or_else(make);
//! assert_ne!(first, second);
//! ```

use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};

/// The nice value of every [`MadeAhead`] thread (Linux, where it is per thread): the lowest
/// priority. At the default priority, the thread, woken when a handshake took a value,
/// preempted the thread running the next handshake whenever both shared a core, which put
/// the making back on the critical path (decision D64). With nothing else to run, a nice
/// thread still gets the whole core.
pub const MADE_AHEAD_THREAD_NICE: i32 = 19;

/// A pool of values made ahead by a background thread; see the module docs.
///
/// Meant for a `static`: the thread, started by the first [`take`](Self::take), refers to
/// the pool for the life of the process.
pub struct MadeAhead<T> {
    thread_name: &'static str,
    capacity: usize,
    make: fn() -> Option<T>,
    ready: Mutex<Vec<T>>,
    /// Signalled when a value was taken.
    wanted: Condvar,
    started: Once,
}

impl<T: Send + 'static> MadeAhead<T> {
    /// A pool that keeps `capacity` values ready, made by `make` on a thread named
    /// `thread_name`. `make` returning `None` (it failed; it should log why) stops the thread
    /// for good: [`take`](Self::take) then finds the pool empty, and callers make their own.
    #[must_use]
    pub const fn new(
        thread_name: &'static str,
        capacity: usize,
        make: fn() -> Option<T>,
    ) -> MadeAhead<T> {
        MadeAhead {
            thread_name,
            capacity,
            make,
            ready: Mutex::new(Vec::new()),
            wanted: Condvar::new(),
            started: Once::new(),
        }
    }

    /// A value made ahead, or `None` when none is ready (the caller makes one inline, as it
    /// would without the pool). Starts the thread on the first call.
    pub fn take(&'static self) -> Option<T> {
        self.started.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name(self.thread_name.to_owned())
                .spawn(move || {
                    lower_this_threads_priority();
                    self.refill();
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, thread = self.thread_name, "cannot start a thread that makes values ahead");
            }
        });
        let taken = self.lock().pop();
        self.wanted.notify_one();
        taken
    }

    /// The thread's loop: make a value whenever the pool is not full, wait otherwise.
    fn refill(&self) {
        loop {
            {
                let mut ready = self.lock();
                while ready.len() >= self.capacity {
                    ready = self
                        .wanted
                        .wait(ready)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            // Made outside the lock, so a handshake taking a value never waits for it.
            match (self.make)() {
                Some(made) => self.lock().push(made),
                None => return,
            }
        }
    }
}

impl<T> MadeAhead<T> {
    /// How many values are ready now.
    pub fn ready(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> fmt::Debug for MadeAhead<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MadeAhead")
            .field("thread", &self.thread_name)
            .field("capacity", &self.capacity)
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

/// Gives the calling thread [`MADE_AHEAD_THREAD_NICE`]. On Linux, `setpriority` with
/// `PRIO_PROCESS` and no pid changes the calling thread only; elsewhere it would change the
/// whole process, so it is not called there.
fn lower_this_threads_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(err) = rustix::process::setpriority_process(None, MADE_AHEAD_THREAD_NICE) {
        // Still correct, only the handshakes may wait for a value's making again.
        tracing::debug!(%err, "cannot lower a made-ahead thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Long enough for a thread to run on a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(30);

    static COUNTED: AtomicU64 = AtomicU64::new(0);
    #[allow(clippy::unnecessary_wraps)] // the signature `MadeAhead::new` takes
    fn count() -> Option<u64> {
        Some(COUNTED.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn values_are_handed_out_once_and_the_pool_fills_up_again() {
        static POOL: MadeAhead<u64> = MadeAhead::new("lp2p-test-ahead", 4, count);
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let value = POOL.take().or_else(count).expect("a value");
            assert!(seen.insert(value), "value {value} handed out twice");
        }
        let deadline = Instant::now() + PATIENCE;
        while POOL.ready() < 4 {
            assert!(Instant::now() < deadline, "the pool did not fill up again");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Full means the thread waits: the pool never grows past its capacity.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(POOL.ready(), 4);
    }

    #[test]
    fn a_failing_maker_stops_its_thread_and_callers_make_their_own() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn fails() -> Option<u64> {
            CALLS.fetch_add(1, Ordering::Relaxed);
            None
        }
        static POOL: MadeAhead<u64> = MadeAhead::new("lp2p-test-fails", 4, fails);
        assert_eq!(POOL.take(), None);
        let deadline = Instant::now() + PATIENCE;
        while CALLS.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "the thread never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The thread tried once and ended; takes find nothing and make no new attempt.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(POOL.take(), None);
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    }

    /// The nice value of this process's thread named `name` (cut to 15 bytes in `/proc`),
    /// `None` until it exists.
    #[cfg(target_os = "linux")]
    fn thread_nice(name: &str) -> Option<i32> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            if comm.is_empty() || !name.starts_with(comm) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the name: state is field 3, the nice value field 19.
            let (_, after_name) = stat.rsplit_once(')')?;
            return after_name.split_whitespace().nth(19 - 3)?.parse().ok();
        }
        None
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_thread_runs_at_the_lowest_priority() {
        static POOL: MadeAhead<u64> = MadeAhead::new("lp2p-test-nice", 2, count);
        let _ = POOL.take();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let nice = thread_nice("lp2p-test-nice");
            if nice == Some(MADE_AHEAD_THREAD_NICE) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the thread's nice value is {nice:?}, not {MADE_AHEAD_THREAD_NICE}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
