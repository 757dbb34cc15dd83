//! The connection task: socket bytes into the core, the core's frames onto the socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use lp2p_core::RuntimeHandle;

use super::{Shared, Wakeups, register};
use crate::config::YamuxConfig;

/// Rounds of read/handle/write done in one poll before the task yields to others, so one
/// busy connection cannot hog an executor thread.
const POLL_BUDGET: usize = 32;

enum Input {
    None,
    Data(usize),
    Eof,
    Failed(io::Error),
}

/// The future run by the connection task. See the [shell module](super).
pub(crate) struct Driver<C> {
    io: C,
    shared: Arc<Shared>,
    runtime: RuntimeHandle,
    read_buf: Box<[u8]>,
    /// Frames taken from the core and not yet written; `write_pos` bytes of it are written.
    write_buf: Vec<u8>,
    write_pos: usize,
    needs_flush: bool,
    /// EOF or a read error was seen.
    read_done: bool,
    /// Writing failed: nothing more is written.
    write_failed: bool,
    /// The core's current wish: read more input.
    can_read: bool,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    close_timeout: Duration,
    /// Armed once the core is closed: when it fires, the flush is abandoned.
    close_deadline: Option<BoxFuture<'static, ()>>,
    socket_closed: bool,
    conn_id: u64,
}

impl<C> Driver<C>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    pub(crate) fn new(
        io: C,
        shared: Arc<Shared>,
        runtime: RuntimeHandle,
        config: &YamuxConfig,
    ) -> Driver<C> {
        let conn_id = shared.lock().core.id();
        Driver {
            io,
            shared,
            runtime,
            read_buf: vec![0u8; config.read_buffer_size].into_boxed_slice(),
            write_buf: Vec::new(),
            write_pos: 0,
            needs_flush: false,
            read_done: false,
            write_failed: false,
            can_read: true,
            timer: None,
            close_timeout: config.close_timeout,
            close_deadline: None,
            socket_closed: false,
            conn_id,
        }
    }

    /// Reads the body of a Data frame straight into the stream's receive buffer, when that
    /// is what comes next. Returns `None` when a buffered read should be done instead, with
    /// how many bytes it should take at most.
    fn poll_direct_input(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, usize> {
        if self.read_done || !self.can_read {
            return Ok(false);
        }
        let mut inner = self.shared.lock();
        let Some(spare) = inner.core.body_input_buffer() else {
            return Err(inner.core.input_hint().unwrap_or(usize::MAX));
        };
        match Pin::new(&mut self.io).poll_read(cx, spare) {
            Poll::Ready(Ok(0)) => {
                self.read_done = true;
                inner.core.handle_eof();
                Ok(true)
            }
            Poll::Ready(Ok(n)) => {
                inner.core.commit_body_input(n, now);
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

    fn poll_input(&mut self, cx: &mut Context<'_>, limit: usize) -> Input {
        if self.read_done || !self.can_read {
            return Input::None;
        }
        let len = self.read_buf.len().min(limit.max(1));
        loop {
            let buf = self.read_buf.get_mut(..len).unwrap_or_default();
            return match Pin::new(&mut self.io).poll_read(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    Input::Eof
                }
                Poll::Ready(Ok(n)) => Input::Data(n),
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
                let mut sleep = self.runtime.sleep(at.saturating_duration_since(now));
                // Register the waker now; a timer already due wakes us at once.
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
                Poll::Ready(Ok(0)) => {
                    self.fail_write(io::ErrorKind::WriteZero.into());
                }
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
        tracing::debug!(conn = self.conn_id, error = %err, "writing to the socket failed");
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
        tracing::debug!(conn = self.conn_id, "yamux connection task finished");
    }
}

impl<C> Future for Driver<C>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..POLL_BUDGET {
            let now = Instant::now();
            let (direct, input) = match this.poll_direct_input(cx, now) {
                Ok(direct) => (direct, Input::None),
                Err(limit) => (false, this.poll_input(cx, limit)),
            };
            let timer_fired = this.poll_timer(cx);
            let mut progress = direct || !matches!(input, Input::None) || timer_fired;

            let mut wake = Wakeups::new();
            let (closed, has_more, deadline) = {
                let mut inner = this.shared.lock();
                match input {
                    Input::None => {}
                    Input::Data(n) => {
                        let bytes = this.read_buf.get(..n).unwrap_or_default();
                        // A protocol violation closes the core, which queues GoAway.
                        let _ = inner.core.handle_input(bytes, now);
                    }
                    Input::Eof => inner.core.handle_eof(),
                    Input::Failed(e) => inner.core.handle_io_error(e),
                }
                if timer_fired || inner.core.poll_timeout().is_some_and(|t| t <= now) {
                    inner.core.handle_timeout(now);
                }
                if this.write_buf.is_empty() && !this.write_failed {
                    progress |= inner.core.poll_transmit(&mut this.write_buf);
                }
                this.can_read = inner.core.wants_input();
                register(&mut inner.driver, cx.waker());
                inner.collect_events(&mut wake);
                (
                    inner.core.is_closed(),
                    inner.core.has_transmit(),
                    inner.core.poll_timeout(),
                )
            };
            for w in wake {
                w.wake();
            }

            progress |= this.poll_output(cx);
            if this.needs_flush && this.write_buf.is_empty() && !this.write_failed {
                match Pin::new(&mut this.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => this.needs_flush = false,
                    Poll::Ready(Err(e)) => this.fail_write(e),
                    Poll::Pending => {}
                }
            }
            this.arm_timer(deadline, now, cx);

            if closed {
                let flushed = this.write_failed
                    || (this.write_buf.is_empty() && !has_more && !this.needs_flush);
                if this.close_deadline.is_none() {
                    this.close_deadline = Some(this.runtime.sleep(this.close_timeout));
                }
                let gave_up = this
                    .close_deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if gave_up {
                    tracing::debug!(conn = this.conn_id, "close timed out: abandoning the flush");
                }
                if flushed || gave_up {
                    if !this.socket_closed && !this.write_failed && !gave_up {
                        match Pin::new(&mut this.io).poll_close(cx) {
                            Poll::Ready(_) => this.socket_closed = true,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    this.finish();
                    return Poll::Ready(());
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Budget spent with work left: yield, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
