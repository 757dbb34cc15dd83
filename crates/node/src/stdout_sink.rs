//! The one writer of lp2p-node's stdout. A line goes out at once when stdout takes it
//! without blocking: stdout is not a pipe, or is a pipe with room for it. Otherwise it waits
//! in a bounded queue that a writer thread empties. So a reader that stops reading (a full
//! pipe) holds up only that thread, never the executor that runs the node's networking.
//!
//! Lines keep their order: none goes out directly while older ones wait in the queue or
//! are being written.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// Bytes of output held for a reader that is not reading, at most; lines beyond it are
/// dropped, counted, and reported on stderr once the queue has been written. 16 MiB holds
/// tens of thousands of events (most are 100 to 500 bytes): minutes of a busy gossip node
/// whose reader paused, and a bounded cost for one that nobody reads.
pub(crate) const MAX_QUEUED_OUTPUT: usize = 16 * 1024 * 1024;

/// Room a pipe must keep beyond a line for the line to be written at once. The kernel fills
/// a pipe in page-sized slots, and the page the reader is part-way through still holds its
/// slot, so the capacity minus the unread bytes overstates the room by up to a page; one
/// more page covers the partly filled page a write appends to.
const PIPE_SLACK: usize = 2 * 4096;

/// What waits for the writer thread.
#[derive(Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    /// Bytes in `lines`.
    bytes: usize,
    /// The writer thread holds lines it took from `lines` and has not written yet.
    writing: bool,
    /// The writer thread runs.
    writer: bool,
    /// Lines dropped since the last report.
    dropped: u64,
}

impl Queue {
    /// Queues `line` unless that would hold more than `max` bytes; a refused line is
    /// counted in `dropped`. True when queued.
    fn admit(&mut self, line: Vec<u8>, max: usize) -> bool {
        if self.bytes.saturating_add(line.len()) > max {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        self.bytes = self.bytes.saturating_add(line.len());
        self.lines.push_back(line);
        true
    }
}

/// See the module docs. One per process: [`sink`].
pub(crate) struct StdoutSink {
    queue: Mutex<Queue>,
    /// Signalled when lines are queued and when the writer finished a batch.
    changed: Condvar,
    /// stdout's pipe capacity, when stdout is a pipe (Linux); `None` writes every line at
    /// once, as files and terminals take them.
    pipe_capacity: Option<usize>,
}

/// The process's sink.
pub(crate) fn sink() -> &'static StdoutSink {
    static SINK: OnceLock<StdoutSink> = OnceLock::new();
    SINK.get_or_init(|| StdoutSink {
        queue: Mutex::new(Queue::default()),
        changed: Condvar::new(),
        pipe_capacity: pipe_capacity(),
    })
}

impl StdoutSink {
    /// Writes `line`, which ends in a newline (see the module docs).
    pub(crate) fn write_line(&'static self, line: Vec<u8>) {
        let mut queue = self.lock();
        if queue.lines.is_empty() && !queue.writing && self.has_room(line.len()) {
            // Under the queue's lock, so that lines of several tasks never interleave.
            write_all(std::slice::from_ref(&line));
            return;
        }
        if !queue.admit(line, MAX_QUEUED_OUTPUT) {
            return;
        }
        if !queue.writer {
            let started = std::thread::Builder::new()
                .name("lp2p-node-stdout".to_owned())
                .spawn(|| sink().run_writer());
            match started {
                Ok(_) => queue.writer = true,
                Err(err) => {
                    // No thread: write here, blocking as a plain print would.
                    tracing::warn!(%err, "cannot start the stdout writer thread");
                    let lines: Vec<Vec<u8>> = queue.lines.drain(..).collect();
                    queue.bytes = 0;
                    write_all(&lines);
                    return;
                }
            }
        }
        self.changed.notify_all();
    }

    /// Waits until every line handed in so far is written (before the process exits).
    pub(crate) fn drain(&self) {
        let mut queue = self.lock();
        while !queue.lines.is_empty() || queue.writing {
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn run_writer(&self) {
        let mut queue = self.lock();
        loop {
            while queue.lines.is_empty() {
                if queue.dropped > 0 {
                    tracing::warn!(
                        dropped = queue.dropped,
                        max_bytes = MAX_QUEUED_OUTPUT,
                        "stdout was not read: events dropped"
                    );
                    queue.dropped = 0;
                }
                queue = self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let batch: Vec<Vec<u8>> = queue.lines.drain(..).collect();
            queue.writing = true;
            drop(queue);
            write_all(&batch);
            queue = self.lock();
            let written: usize = batch.iter().map(Vec::len).sum();
            queue.bytes = queue.bytes.saturating_sub(written);
            queue.writing = false;
            self.changed.notify_all();
        }
    }

    /// Whether stdout takes `len` more bytes without blocking.
    fn has_room(&self, len: usize) -> bool {
        let Some(capacity) = self.pipe_capacity else {
            return true;
        };
        match unread_bytes() {
            Some(unread) => unread
                .saturating_add(len)
                .saturating_add(PIPE_SLACK)
                .le(&capacity),
            // Cannot tell: write as a plain print would.
            None => true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `lines` to stdout and flushes. A closed stdout (the reader went away) is not worth
/// a crash: the error is dropped.
fn write_all(lines: &[Vec<u8>]) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        if out.write_all(line).is_err() {
            return;
        }
    }
    let _ = out.flush();
}

#[cfg(target_os = "linux")]
fn pipe_capacity() -> Option<usize> {
    // Fails (EBADF) when stdout is not a pipe.
    rustix::pipe::fcntl_getpipe_size(std::io::stdout()).ok()
}

#[cfg(not(target_os = "linux"))]
fn pipe_capacity() -> Option<usize> {
    None
}

#[cfg(target_os = "linux")]
fn unread_bytes() -> Option<usize> {
    rustix::io::ioctl_fionread(std::io::stdout())
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(not(target_os = "linux"))]
fn unread_bytes() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_cap_are_dropped_and_counted_and_order_holds() {
        let mut queue = Queue::default();
        assert!(queue.admit(b"first\n".to_vec(), 12));
        assert!(queue.admit(b"second\n".to_vec(), 13));
        assert!(!queue.admit(b"third\n".to_vec(), 13));
        assert!(!queue.admit(b"x\n".to_vec(), 13));
        assert_eq!(queue.dropped, 2);
        assert_eq!(queue.bytes, 13);
        let kept: Vec<&[u8]> = queue.lines.iter().map(Vec::as_slice).collect();
        assert_eq!(kept, [&b"first\n"[..], &b"second\n"[..]]);
    }
}
