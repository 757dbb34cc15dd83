//! The state a connection's handle, its streams and its task share: the core, under one
//! mutex, with the wakers of everyone waiting on it.
//!
//! Every locked section is short: one core call, then the core's events are drained into a
//! small list of wakers that are woken after the lock is released.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use lp2p_core::RuntimeHandle;
use smallvec::SmallVec;

use crate::id_map::IdMap;
use crate::muxer::{Event, MuxerCore};

/// Wakers collected under the lock and woken after it is released.
pub(crate) type Wakeups = SmallVec<[Waker; 8]>;

/// Stores `waker` in `slot` unless it already holds one that wakes the same task.
pub(crate) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// Adds `waker` to `list` unless a waker of the same task is there.
pub(crate) fn register_in(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

fn register_stream<K: std::hash::Hash + Eq>(map: &mut IdMap<K, Waker>, id: K, waker: &Waker) {
    match map.get_mut(&id) {
        Some(w) if w.will_wake(waker) => {}
        Some(w) => w.clone_from(waker),
        None => {
            map.insert(id, waker.clone());
        }
    }
}

/// The core and everyone waiting on it.
pub(crate) struct Inner<M: MuxerCore> {
    pub(crate) core: M,
    read_wakers: IdMap<M::StreamId, Waker>,
    write_wakers: IdMap<M::StreamId, Waker>,
    accept_wakers: Vec<Waker>,
    open_wakers: Vec<Waker>,
    close_wakers: Vec<Waker>,
    /// The connection task, when it waits for something.
    pub(crate) driver: Option<Waker>,
    /// What the connection task last saw, so a handle's call that changes it wakes the task:
    /// input was paused (the core did not want input),
    pub(crate) input_paused: bool,
    /// the core was closed,
    pub(crate) closed_seen: bool,
    /// and the deadline its timer is armed for.
    pub(crate) armed_timeout: Option<Instant>,
    /// The connection task has finished: nothing will ever move again.
    pub(crate) driver_done: bool,
}

impl<M: MuxerCore> Inner<M> {
    pub(crate) fn new(core: M) -> Inner<M> {
        Inner {
            core,
            read_wakers: IdMap::default(),
            write_wakers: IdMap::default(),
            accept_wakers: Vec::new(),
            open_wakers: Vec::new(),
            close_wakers: Vec::new(),
            driver: None,
            input_paused: false,
            closed_seen: false,
            armed_timeout: None,
            driver_done: false,
        }
    }

    /// Turns the core's events into wakers to wake.
    pub(crate) fn collect_events(&mut self, wake: &mut Wakeups) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Readable(id) => wake.extend(self.read_wakers.remove(&id)),
                Event::Writable(id) => wake.extend(self.write_wakers.remove(&id)),
                Event::InboundStream => wake.extend(self.accept_wakers.drain(..)),
                Event::OutboundAvailable => wake.extend(self.open_wakers.drain(..)),
                Event::Closed => self.take_waiters(wake),
            }
        }
    }

    /// Every task waiting on a stream, to accept or to open.
    fn take_waiters(&mut self, wake: &mut Wakeups) {
        wake.extend(self.read_wakers.drain().map(|(_, w)| w));
        wake.extend(self.write_wakers.drain().map(|(_, w)| w));
        wake.extend(self.accept_wakers.drain(..));
        wake.extend(self.open_wakers.drain(..));
    }

    /// Events, plus the connection task when a handle's call gave it work: frames to send,
    /// input to take again, a close to carry out, or an earlier deadline.
    fn collect(&mut self, wake: &mut Wakeups) {
        self.collect_events(wake);
        if self.driver.is_some() && self.driver_has_work() {
            wake.extend(self.driver.take());
        }
    }

    fn driver_has_work(&self) -> bool {
        if self.core.has_transmit()
            || (self.input_paused && self.core.wants_input())
            || (!self.closed_seen && self.core.is_closed())
        {
            return true;
        }
        match (self.core.poll_timeout(), self.armed_timeout) {
            (Some(at), Some(armed)) => at < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The connection task finished: make sure the core is closed and wake everyone.
    pub(crate) fn finish(&mut self, wake: &mut Wakeups) {
        self.driver_done = true;
        self.driver = None;
        if !self.core.is_closed() {
            self.core.close();
        }
        self.collect_events(wake);
        self.take_waiters(wake);
        wake.extend(self.close_wakers.drain(..));
    }

    pub(crate) fn wait_read(&mut self, id: M::StreamId, waker: &Waker) {
        register_stream(&mut self.read_wakers, id, waker);
    }

    pub(crate) fn wait_write(&mut self, id: M::StreamId, waker: &Waker) {
        register_stream(&mut self.write_wakers, id, waker);
    }

    pub(crate) fn wait_accept(&mut self, waker: &Waker) {
        register_in(&mut self.accept_wakers, waker);
    }

    pub(crate) fn wait_open(&mut self, waker: &Waker) {
        register_in(&mut self.open_wakers, waker);
    }

    pub(crate) fn wait_close(&mut self, waker: &Waker) {
        register_in(&mut self.close_wakers, waker);
    }

    /// The wakers of whoever waits on this stream.
    pub(crate) fn take_stream_wakers(&mut self, id: M::StreamId) -> Wakeups {
        let mut wake = Wakeups::new();
        wake.extend(self.read_wakers.remove(&id));
        wake.extend(self.write_wakers.remove(&id));
        wake
    }

    /// A stream handle is gone: forget its wakers.
    pub(crate) fn forget_stream(&mut self, id: M::StreamId) {
        self.read_wakers.remove(&id);
        self.write_wakers.remove(&id);
    }
}

/// The state shared by a connection's handle, its streams and its task.
pub(crate) struct Shared<M: MuxerCore> {
    inner: Mutex<Inner<M>>,
    /// The clock (and the task spawner) of this connection.
    pub(crate) runtime: RuntimeHandle,
}

impl<M: MuxerCore> Shared<M> {
    pub(crate) fn new(core: M, runtime: RuntimeHandle) -> Shared<M> {
        Shared {
            inner: Mutex::new(Inner::new(core)),
            runtime,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<M>> {
        // Every core call leaves the core consistent before it could panic (and none
        // should), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the lock, then wakes whoever `f`'s changes concern.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner<M>) -> R) -> R {
        let mut wake = Wakeups::new();
        let result = {
            let mut inner = self.lock();
            let result = f(&mut inner);
            inner.collect(&mut wake);
            result
        };
        for w in wake {
            w.wake();
        }
        result
    }

    pub(crate) fn poll_read(
        &self,
        id: M::StreamId,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, M::Error>> {
        let now = self.runtime.now();
        self.with(|inner| match inner.core.read(id, buf, now) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => {
                inner.wait_read(id, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        })
    }

    pub(crate) fn poll_write(
        &self,
        id: M::StreamId,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, M::Error>> {
        self.with(|inner| match inner.core.write(id, buf) {
            Ok(Some(n)) => Poll::Ready(Ok(n)),
            Ok(None) => {
                inner.wait_write(id, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        })
    }
}
