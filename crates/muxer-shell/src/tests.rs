//! The shell on its own, driving a toy core over an in-memory pipe: one stream each way, no
//! framing, and knobs for the paths the real muxers reach only under load (input the core
//! leaves for later, a deadline a stream call moves earlier, a remote that never reads).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::io;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Role, RuntimeHandle};
use lp2p_memory::MemoryConnection;

use crate::{Event, MuxerCore, ShellConfig, ShellConnection};

/// Generous: a loaded 2-core machine. A healthy run takes milliseconds.
const TIMEOUT: Duration = Duration::from_secs(120);

/// One stream (id 0) over the whole connection.
struct Toy {
    /// Received bytes not read yet; input pauses at `max_received`.
    received: Vec<u8>,
    max_received: usize,
    eof: bool,
    out: Vec<u8>,
    closed: bool,
    taken: bool,
    events: Vec<Event<u8>>,
    /// A read that finds nothing arms this; when it fires, "tick" is received.
    read_timer: Option<Duration>,
    deadline: Option<Instant>,
}

impl Toy {
    fn new() -> Toy {
        Toy {
            received: Vec::new(),
            max_received: usize::MAX,
            eof: false,
            out: Vec::new(),
            closed: false,
            taken: false,
            events: Vec::new(),
            read_timer: None,
            deadline: None,
        }
    }
}

impl MuxerCore for Toy {
    type StreamId = u8;
    type Error = io::Error;
    const PROTOCOL_ID: &'static str = "/toy";

    fn handle_input(&mut self, input: &[u8], _now: Instant) -> io::Result<usize> {
        let room = self.max_received.saturating_sub(self.received.len());
        let n = room.min(input.len());
        self.received.extend_from_slice(&input[..n]);
        if n > 0 {
            self.events.push(Event::Readable(0));
        }
        Ok(n)
    }
    fn wants_input(&self) -> bool {
        !self.eof && !self.closed && self.received.len() < self.max_received
    }
    fn handle_eof(&mut self) {
        self.eof = true;
        self.events.push(Event::Readable(0));
    }
    fn handle_io_error(&mut self, _err: io::Error) {
        self.handle_eof();
        self.close();
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        self.events.push(Event::Writable(0));
        true
    }
    fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|at| now >= at) {
            self.deadline = None;
            self.received.extend_from_slice(b"tick");
            self.events.push(Event::Readable(0));
        }
    }
    fn poll_event(&mut self) -> Option<Event<u8>> {
        self.events.pop()
    }
    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.events.push(Event::Closed);
        }
    }
    fn is_closed(&self) -> bool {
        self.closed
    }
    fn num_streams(&self) -> usize {
        usize::from(self.taken)
    }
    fn open_stream(&mut self) -> io::Result<Option<u8>> {
        self.accept_stream()
    }
    fn accept_stream(&mut self) -> io::Result<Option<u8>> {
        if self.taken || self.closed {
            return Err(io::ErrorKind::Unsupported.into());
        }
        self.taken = true;
        Ok(Some(0))
    }
    fn read(&mut self, _: u8, buf: &mut [u8], now: Instant) -> io::Result<Option<usize>> {
        let n = buf.len().min(self.received.len());
        buf[..n].copy_from_slice(&self.received[..n]);
        self.received.drain(..n);
        if n > 0 || self.eof {
            return Ok(Some(n));
        }
        if let Some(after) = self.read_timer.take() {
            self.deadline = Some(now + after);
        }
        Ok(None)
    }
    fn write(&mut self, _: u8, data: &[u8]) -> io::Result<Option<usize>> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.out.extend_from_slice(data);
        Ok(Some(data.len()))
    }
    fn close_stream(&mut self, _: u8) -> io::Result<()> {
        Ok(())
    }
    fn reset_stream(&mut self, _: u8) {
        self.close();
    }
    fn drop_stream(&mut self, _: u8) {}
}

fn pipe(capacity: usize) -> (MemoryConnection, MemoryConnection) {
    MemoryConnection::pair(
        capacity,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    )
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    let rt = RuntimeHandle::default();
    lp2p_core::runtime::block_on(async { rt.timeout(TIMEOUT, future).await.unwrap() })
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn input_the_core_leaves_is_offered_again_in_order() {
    // The core takes at most 1,000 unread bytes; the remote sends 200 KB at once. The shell
    // keeps what the core left, stops reading, and goes on when the reader makes room.
    let rt = RuntimeHandle::default();
    let (a, mut remote) = pipe(64 * 1024);
    let mut core = Toy::new();
    core.max_received = 1000;
    let config = ShellConfig::default();
    let conn = ShellConnection::start(a, core, &config, &rt, Role::Responder, None);
    run(async move {
        let data = pattern(200_000);
        let sender = {
            let data = data.clone();
            rt.spawn(async move {
                remote.write_all(&data).await.unwrap();
                remote.close().await.unwrap();
                remote
            })
        };
        let mut stream = conn.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data, "{} bytes, in order", got.len());
        drop(sender.await.unwrap());
    });
}

#[test]
fn a_deadline_a_stream_call_moves_earlier_is_kept() {
    // The connection task has no deadline and waits on the socket; a read arms one in the
    // core. Only a task that notices (and arms its timer) delivers the "tick".
    let rt = RuntimeHandle::default();
    let (a, _remote) = pipe(1024);
    let mut core = Toy::new();
    core.read_timer = Some(Duration::from_millis(20));
    let conn = ShellConnection::start(a, core, &ShellConfig::default(), &rt, Role::Initiator, None);
    run(async move {
        let mut stream = conn.open().await.unwrap();
        // Let the task finish its first rounds and wait on the socket with no timer.
        rt.sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"tick");
    });
}

#[test]
fn close_gives_up_on_a_remote_that_does_not_read() {
    // 1 MiB queued for a remote that never reads a 1 KiB pipe: close returns after the
    // close timeout instead of waiting for ever, and the task ends.
    let rt = RuntimeHandle::default().scope();
    let (a, remote) = pipe(1024);
    let config = ShellConfig::default().with_close_timeout(Duration::from_millis(50));
    let conn = ShellConnection::start(a, Toy::new(), &config, &rt, Role::Initiator, None);
    assert_eq!(rt.live_tasks(), 1);
    let live = rt.clone();
    run(async move {
        let mut stream = conn.open().await.unwrap();
        stream.write_all(&pattern(1024 * 1024)).await.unwrap();
        conn.close().await;
        assert!(conn.is_closed());
        assert!(stream.write_all(b"more").await.is_err());
        while live.live_tasks() > 0 {
            live.sleep(Duration::from_millis(5)).await;
        }
        drop(remote);
    });
}

#[test]
fn dropping_the_handle_closes_flushes_and_ends_the_task() {
    let rt = RuntimeHandle::default().scope();
    let (a, mut remote) = pipe(64 * 1024);
    let conn = ShellConnection::start(
        a,
        Toy::new(),
        &ShellConfig::default(),
        &rt,
        Role::Initiator,
        None,
    );
    let live = rt.clone();
    run(async move {
        let mut stream = conn.open().await.unwrap();
        stream.write_all(b"last words").await.unwrap();
        drop(conn);
        // What was written is flushed before the socket closes: the remote reads it, then EOF.
        let mut got = Vec::new();
        remote.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
        assert!(stream.write_all(b"more").await.is_err());
        while live.live_tasks() > 0 {
            live.sleep(Duration::from_millis(5)).await;
        }
    });
}
