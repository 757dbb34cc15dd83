//! Where this program's work runs: its command as a task on the executor
//! ([`run_on_executor`]), and on how many executor threads.
//!
//! async-std starts one executor thread per core. lp2p-node starts one fewer, at least one
//! ([`executor_threads`]), unless `ASYNC_STD_THREAD_COUNT` (async-std's own setting) is set,
//! which wins. Each executor thread also drives the I/O reactor while it has nothing to run,
//! and the program's main thread runs its own future. With a thread per core, a socket
//! event woken on one thread is mostly run on another: every wake-up of a connection's tasks
//! becomes a cross-thread hand-off, with a context switch and a cold cache.
//!
//! Measured on the 2-core build machine (release build, `lp2p-node conn-bench` against its
//! own listener on loopback, TCP + noise + yamux, 2,000 connections; decision D58): with one
//! executor thread instead of two, the listener made 6.6 context switches per connection
//! instead of 18.2 and spent 452 instead of 556 µs of CPU on it, the dialer 602 instead of
//! 657 µs, and the whole-stack bench's connection rate rose by about a sixth with throughput
//! unchanged or better. The price: a node on a machine of `n` cores runs its tasks on at
//! most `n - 1` of them; with `ASYNC_STD_THREAD_COUNT` set to the number of cores it gets
//! async-std's default back. The smol runtime (`LP2P_RUNTIME=smol` in builds with both)
//! already runs one executor thread unless `SMOL_THREADS` says otherwise.

use std::future::Future;
use std::num::NonZeroUsize;

/// async-std's setting of its executor threads; when set, this program leaves the count to
/// it.
pub(crate) const ASYNC_STD_THREADS_ENV: &str = "ASYNC_STD_THREAD_COUNT";

/// Executor threads on a machine of `cores` cores: one fewer, at least one.
pub(crate) fn executor_threads(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

/// Sizes async-std's executor (before anything is spawned on it) with [`executor_threads`]
/// of this machine's cores, unless [`ASYNC_STD_THREADS_ENV`] is set or another runtime was
/// chosen.
pub(crate) fn size_async_std_executor() {
    let runs_async_std =
        lp2p::RuntimeHandle::try_default().is_some_and(|runtime| runtime.name() == "async-std");
    if !runs_async_std {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = executor_threads(cores);
    // The environment variable, when set, still wins (the config reads it first), as it
    // does in async-std's own start-up; the thread name is async-std's too.
    async_global_executor::init_with_config(
        async_global_executor::GlobalExecutorConfig::default()
            .with_env_var(ASYNC_STD_THREADS_ENV)
            .with_min_threads(threads)
            .with_thread_name_fn(|| "async-std/runtime".to_owned()),
    );
    tracing::debug!(threads, cores, "async-std executor sized");
}

/// Runs the program's `command` to its end as a task on the executor, beside the tasks of
/// its connections, and waits for it on this thread. Run on this thread instead (the
/// runtime's `block_on`), every step of the command (a dial, a ping, each chunk of a
/// transfer) would wait for a wake-up from an executor thread: a cross-thread hand-off per
/// step (D58).
pub(crate) fn run_on_executor<F>(command: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    match lp2p::RuntimeHandle::try_default() {
        Some(runtime) => lp2p::core::runtime::block_on(runtime.spawn(command))
            .unwrap_or_else(|err| Err(format!("the command's task ended early: {err}"))),
        None => lp2p::core::runtime::block_on(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_left_to_the_rest_but_one_thread_always_runs() {
        assert_eq!(executor_threads(0), 1);
        assert_eq!(executor_threads(1), 1);
        assert_eq!(executor_threads(2), 1);
        assert_eq!(executor_threads(8), 7);
    }
}
