//! The connection task: socket bytes into the core, the core's frames onto the socket, the
//! core's timers, and the close.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};

use crate::config::{POLL_BUDGET, ShellConfig};
use crate::muxer::MuxerCore;
use crate::read_buffer::ReadBuffer;
use crate::shared::{Shared, Wakeups, register};

/// Offers `core` the bytes `buf[*start..*end]` read earlier and not taken yet; keeps what it
/// leaves. Returns whether it took any.
fn feed<M: MuxerCore>(
    core: &mut M,
    buf: &[u8],
    start: &mut usize,
    end: &mut usize,
    now: Instant,
) -> bool {
    let pending = buf.get(*start..*end).unwrap_or_default();
    let used = match core.handle_input(pending, now) {
        // Never more than offered, whatever the core says.
        Ok(used) => used.min(pending.len()),
        Err(err) => {
            // The core closed itself (and may have queued a last frame): drop the rest.
            tracing::debug!(error = %err, "input ended the connection");
            pending.len()
        }
    };
    *start = start.saturating_add(used);
    if *start >= *end {
        *start = 0;
        *end = 0;
    }
    used > 0
}

/// What a buffered socket read produced.
enum Input {
    None,
    Data(usize),
    Eof,
    Failed(io::Error),
}

/// The future run by the connection task.
pub(crate) struct Driver<M: MuxerCore, C> {
    io: C,
    shared: Arc<Shared<M>>,
    read_buf: ReadBuffer,
    /// `read_buf[read_start..read_end]` was read but not taken by the core yet (it paused
    /// input in the middle); offered again before anything more is read.
    read_start: usize,
    read_end: usize,
    /// EOF or a read error was seen.
    read_done: bool,
    /// The core's wish at the end of the last round: read more input.
    can_read: bool,
    /// Frames taken from the core and not yet written; `write_pos` bytes of it are written.
    write_buf: Vec<u8>,
    write_pos: usize,
    needs_flush: bool,
    /// Writing failed: nothing more is written.
    write_failed: bool,
    /// The core's next deadline and the sleep that ends at it.
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    close_timeout: Duration,
    /// Armed once the core is closed: when it fires, the flush is abandoned.
    close_deadline: Option<BoxFuture<'static, ()>>,
}

impl<M, C> Driver<M, C>
where
    M: MuxerCore,
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    pub(crate) fn new(io: C, shared: Arc<Shared<M>>, config: &ShellConfig) -> Driver<M, C> {
        Driver {
            io,
            shared,
            read_buf: ReadBuffer::new(config.read_buffer_size()),
            read_start: 0,
            read_end: 0,
            read_done: false,
            can_read: true,
            write_buf: Vec::new(),
            write_pos: 0,
            needs_flush: false,
            write_failed: false,
            timer: None,
            close_timeout: config.close_timeout(),
            close_deadline: None,
        }
    }

    fn has_leftover(&self) -> bool {
        self.read_start < self.read_end
    }

    /// Reads the payload of a frame straight into its stream's buffer, when the core offers
    /// one. Returns `Ok(progress)`, or `Err(limit)` when a buffered read should be done
    /// instead, taking at most `limit` bytes.
    fn poll_direct_input(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, usize> {
        let mut inner = self.shared.lock();
        let Some(spare) = inner.core.direct_input() else {
            return Err(inner.core.input_limit().unwrap_or(usize::MAX));
        };
        match Pin::new(&mut self.io).poll_read(cx, spare) {
            Poll::Ready(Ok(0)) => {
                self.read_done = true;
                inner.core.handle_eof();
                Ok(true)
            }
            Poll::Ready(Ok(n)) => {
                inner.core.commit_direct_input(n, now);
                Ok(true)
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Poll::Ready(Err(e)) => {
                self.read_done = true;
                inner.core.handle_io_error(e);
                Ok(true)
            }
            Poll::Pending => Ok(false),
        }
    }

    /// A read into the shell's own buffer, outside the lock.
    fn poll_input(&mut self, cx: &mut Context<'_>, limit: usize) -> Input {
        self.read_buf.prepare();
        let len = self.read_buf.len().min(limit.max(1));
        loop {
            let buf = self.read_buf.bytes_mut().get_mut(..len).unwrap_or_default();
            return match Pin::new(&mut self.io).poll_read(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    Input::Eof
                }
                Poll::Ready(Ok(n)) => {
                    self.read_buf.filled(n);
                    Input::Data(n)
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    Input::Failed(e)
                }
                Poll::Pending => Input::None,
            };
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|(_, sleep)| sleep.as_mut().poll(cx).is_ready());
        if fired {
            self.timer = None;
        }
        fired
    }

    fn arm_timer(&mut self, deadline: Option<Instant>, now: Instant, cx: &mut Context<'_>) {
        match deadline {
            None => self.timer = None,
            Some(at) => {
                if self.timer.as_ref().is_some_and(|(t, _)| *t == at) {
                    return;
                }
                let mut sleep = self.shared.runtime.sleep(at.saturating_duration_since(now));
                // Register the waker now; a deadline already due wakes us at once.
                if sleep.as_mut().poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                self.timer = Some((at, sleep));
            }
        }
    }

    /// Writes what is buffered. Returns whether bytes moved; a failure closes the core.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while self.write_pos < self.write_buf.len() && !self.write_failed {
            let pending = self.write_buf.get(self.write_pos..).unwrap_or_default();
            match Pin::new(&mut self.io).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => self.fail_write(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.write_pos = self.write_pos.saturating_add(n);
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => self.fail_write(e),
                Poll::Pending => break,
            }
        }
        if self.write_pos >= self.write_buf.len() && !self.write_buf.is_empty() {
            self.write_buf.clear();
            self.write_pos = 0;
            self.needs_flush = true;
        }
        progress
    }

    fn fail_write(&mut self, err: io::Error) {
        tracing::debug!(error = %err, "writing to the connection failed");
        self.write_failed = true;
        self.write_buf.clear();
        self.write_pos = 0;
        self.needs_flush = false;
        self.shared.with(|inner| inner.core.handle_io_error(err));
    }

    fn finish(&mut self) {
        let mut wake = Wakeups::new();
        self.shared.lock().finish(&mut wake);
        for w in wake {
            w.wake();
        }
        tracing::debug!("muxed connection task finished");
    }

    /// One round: read, hand input and time to the core, take its frames, write, arm the
    /// timer, and close the socket once the core is closed and everything is flushed.
    fn round(&mut self, cx: &mut Context<'_>) -> Round {
        let now = self.shared.runtime.now();
        let mut progress = false;
        let mut input = Input::None;
        // Whether this round polls the socket (and so registers for its wake-up).
        let polled_socket = !self.has_leftover() && !self.read_done && self.can_read;
        if polled_socket {
            match self.poll_direct_input(cx, now) {
                Ok(direct) => progress |= direct,
                Err(limit) => input = self.poll_input(cx, limit),
            }
        }
        let timer_fired = self.poll_timer(cx);
        progress |= timer_fired;

        let mut wake = Wakeups::new();
        let (closed, has_more, deadline) = {
            let mut guard = self.shared.lock();
            let inner = &mut *guard;
            match input {
                Input::None => {}
                Input::Data(n) => {
                    progress = true;
                    self.read_start = 0;
                    self.read_end = n;
                }
                Input::Eof => {
                    progress = true;
                    inner.core.handle_eof();
                }
                Input::Failed(e) => {
                    progress = true;
                    tracing::debug!(error = %e, "reading from the connection failed");
                    inner.core.handle_io_error(e);
                }
            }
            if self.read_start < self.read_end && inner.core.wants_input() {
                progress |= feed(
                    &mut inner.core,
                    self.read_buf.bytes(),
                    &mut self.read_start,
                    &mut self.read_end,
                    now,
                );
            }
            // Deadlines the core set since the timer was armed lie ahead of `now`, or woke
            // this task to arm a new timer, which fires at once: the armed one says enough.
            let due = self.timer.as_ref().is_some_and(|(at, _)| *at <= now);
            if timer_fired || due {
                inner.core.handle_timeout(now);
            }
            if self.write_buf.is_empty() && !self.write_failed {
                progress |= inner.core.poll_transmit(&mut self.write_buf);
            }
            self.can_read = inner.core.wants_input();
            // The core wants input again (a reader made room since the last round) but this
            // round skipped the socket: go round once more, or nothing would wake this task
            // (the socket has no waker of ours, and `input_paused` is cleared below).
            if self.can_read && !polled_socket && !self.has_leftover() && !self.read_done {
                progress = true;
            }
            let closed = inner.core.is_closed();
            let deadline = inner.core.poll_timeout();
            register(&mut inner.driver, cx.waker());
            inner.input_paused = !self.can_read;
            inner.closed_seen = closed;
            inner.armed_timeout = deadline;
            inner.collect_events(&mut wake);
            (closed, inner.core.has_transmit(), deadline)
        };
        for w in wake {
            w.wake();
        }

        progress |= self.poll_output(cx);
        if self.needs_flush && self.write_buf.is_empty() && !self.write_failed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => self.fail_write(e),
                Poll::Pending => {}
            }
        }
        self.arm_timer(deadline, now, cx);

        if closed {
            let flushed =
                self.write_failed || (self.write_buf.is_empty() && !has_more && !self.needs_flush);
            let (runtime, timeout) = (&self.shared.runtime, self.close_timeout);
            let close_deadline = self
                .close_deadline
                .get_or_insert_with(|| runtime.sleep(timeout));
            let gave_up = close_deadline.as_mut().poll(cx).is_ready();
            if gave_up {
                tracing::debug!("close timed out: abandoning the flush");
            }
            if flushed || gave_up {
                if !self.write_failed && !gave_up {
                    match Pin::new(&mut self.io).poll_close(cx) {
                        Poll::Ready(_) => {}
                        Poll::Pending => return Round::Idle,
                    }
                }
                return Round::Done;
            }
        }
        if progress {
            Round::Progress
        } else {
            Round::Idle
        }
    }
}

/// How a round of the connection task ended.
enum Round {
    /// Something moved: go again.
    Progress,
    /// Nothing to do until a waker fires.
    Idle,
    /// The connection is closed and flushed (or gave up flushing).
    Done,
}

impl<M, C> Future for Driver<M, C>
where
    M: MuxerCore,
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..POLL_BUDGET {
            match this.round(cx) {
                Round::Progress => {}
                Round::Idle => return Poll::Pending,
                Round::Done => {
                    this.finish();
                    return Poll::Ready(());
                }
            }
        }
        // Budget spent with work left: yield, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
