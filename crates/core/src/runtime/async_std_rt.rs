use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::Runtime;

/// The async-std runtime: tasks on async-std's global executor, timers from async-io.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn name(&self) -> &'static str {
        "async-std"
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping async-std's JoinHandle detaches the task.
        drop(async_std::task::spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(duration))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
