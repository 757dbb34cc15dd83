use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::Runtime;

/// The smol runtime: tasks on smol's global executor, timers from async-io.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn name(&self) -> &'static str {
        "smol"
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
