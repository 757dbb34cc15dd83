//! Emulated links for the whole-stack bench: a TCP and a UDP forwarder on 127.0.0.1 that
//! give every round trip a fixed delay and, optionally, each direction a bottleneck of a
//! given rate with a bounded queue, so that setup figures show what a handshake's round
//! trips cost and throughput figures show how fast a transfer opens its windows. (The
//! machine's kernel has no netem.)
//!
//! The model, per direction: bytes read at `t` enter the bottleneck's queue, leave it at the
//! link's rate in arrival order, and arrive half a round trip after they left. The queue
//! holds at most [`Link::queue`] of transmission time. TCP: a full queue stops the relay
//! from reading, so the sender's socket backs up (back-pressure, no loss). UDP: a datagram
//! that finds the queue full is dropped, as a router would, and QUIC's congestion control
//! sees the loss.
//!
//! TCP: the relay answers the client's connect at once, then waits one round trip before it
//! connects to the server and starts forwarding, which stands in for the SYN round trip the
//! client would have waited for. Bytes are forwarded in the chunks they were read in. UDP:
//! one upstream socket per client address.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read at a time by a TCP pump. Smaller than a socket buffer so that pacing at a
/// rate is smooth: 16 KiB take 1.3 ms at 100 Mbit/s.
const CHUNK: usize = 16 * 1024;
/// Largest datagram forwarded (QUIC's are at most about 16 KB on loopback).
const MAX_DATAGRAM: usize = 65_536;
/// Smallest bottleneck queue, in bytes: a few full-size TCP chunks, so that a link with a
/// tiny bandwidth-delay product still takes a burst.
const MIN_QUEUE_BYTES: f64 = 64.0 * 1024.0;

/// An emulated path: round-trip time and, if not zero, the rate of a bottleneck in each
/// direction.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Added to every round trip, half in each direction.
    pub rtt: Duration,
    /// Bottleneck rate in bits per second in each direction; 0 means no bottleneck.
    pub bits_per_sec: u64,
}

impl Link {
    /// Bytes per second through the bottleneck, if there is one.
    #[allow(clippy::cast_precision_loss)]
    fn bytes_per_sec(self) -> Option<f64> {
        (self.bits_per_sec > 0).then(|| self.bits_per_sec as f64 / 8.0)
    }

    /// The bottleneck queue, as transmission time: one bandwidth-delay product (the usual
    /// rule for a router's buffer), at least [`MIN_QUEUE_BYTES`].
    fn queue(self) -> Duration {
        match self.bytes_per_sec() {
            Some(rate) => {
                let bdp = rate * self.rtt.as_secs_f64();
                Duration::from_secs_f64(bdp.max(MIN_QUEUE_BYTES) / rate)
            }
            None => Duration::ZERO,
        }
    }
}

/// One direction's bottleneck: when it is next free, given what it has been sent.
struct Bottleneck {
    link: Link,
    free_at: Instant,
}

impl Bottleneck {
    fn new(link: Link) -> Bottleneck {
        Bottleneck {
            link,
            free_at: Instant::now(),
        }
    }

    /// Transmission time queued ahead of something arriving `now`.
    fn backlog(&self, now: Instant) -> Duration {
        self.free_at.saturating_duration_since(now)
    }

    /// Whether the queue has room for another arrival `now`.
    fn has_room(&self, now: Instant) -> bool {
        self.link.bytes_per_sec().is_none() || self.backlog(now) < self.link.queue()
    }

    /// Queues `len` bytes arriving `now`; when they reach the far end.
    #[allow(clippy::cast_precision_loss)]
    fn send(&mut self, now: Instant, len: usize) -> Instant {
        let left = match self.link.bytes_per_sec() {
            Some(rate) => {
                let start = self.free_at.max(now);
                self.free_at = start + Duration::from_secs_f64(len as f64 / rate);
                self.free_at
            }
            None => now,
        };
        left + self.link.rtt / 2
    }
}

/// Sends each item when it is due, in order (due times never decrease: a constant delay
/// after a first-in first-out queue).
fn delayed<T: Send + 'static>(
    mut deliver: impl FnMut(T) -> bool + Send + 'static,
) -> mpsc::Sender<(Instant, T)> {
    let (tx, rx) = mpsc::channel::<(Instant, T)>();
    thread::spawn(move || {
        for (due, item) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if !deliver(item) {
                break;
            }
        }
    });
    tx
}

/// Starts a TCP relay to `upstream` over `link`; returns its address.
pub fn tcp(upstream: SocketAddr, link: Link) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TCP relay");
    let addr = listener.local_addr().expect("relay address");
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            thread::spawn(move || {
                thread::sleep(link.rtt);
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                pump(client, server2, link);
                pump(server, client2, link);
            });
        }
    });
    addr
}

/// Copies `from` to `to` through one direction of `link`; the end of `from` half-closes
/// `to` once the bytes before it have arrived.
fn pump(mut from: TcpStream, to: TcpStream, link: Link) {
    let mut writer = to;
    let tx = delayed(move |chunk: Option<Vec<u8>>| match chunk {
        Some(bytes) => writer.write_all(&bytes).is_ok(),
        None => {
            let _ = writer.shutdown(Shutdown::Write);
            false
        }
    });
    thread::spawn(move || {
        let mut bottleneck = Bottleneck::new(link);
        let mut buf = vec![0u8; CHUNK];
        loop {
            // A full queue: stop reading until it has drained below its size.
            let now = Instant::now();
            if !bottleneck.has_room(now) {
                thread::sleep(bottleneck.backlog(now) - link.queue());
            }
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let due = bottleneck.send(Instant::now(), 0);
                    let _ = tx.send((due, None));
                    return;
                }
                Ok(n) => {
                    let due = bottleneck.send(Instant::now(), n);
                    if tx.send((due, Some(buf[..n].to_vec()))).is_err() {
                        let _ = from.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    });
}

/// Starts a UDP relay to `upstream` over `link`; returns its address.
pub fn udp(upstream: SocketAddr, link: Link) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind the UDP relay"));
    let addr = front.local_addr().expect("relay address");
    let back_to_clients = {
        let front = front.clone();
        delayed(move |(client, bytes): (SocketAddr, Vec<u8>)| {
            let _ = front.send_to(&bytes, client);
            true
        })
    };
    let to_server = delayed(move |(socket, bytes): (Arc<UdpSocket>, Vec<u8>)| {
        let _ = socket.send(&bytes);
        true
    });
    // One bottleneck per direction, shared by every client (one path in each direction).
    let downstream = Arc::new(Mutex::new(Bottleneck::new(link)));
    let mut upstream_link = Bottleneck::new(link);
    let sockets: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>> = Mutex::default();
    thread::spawn(move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while let Ok((n, client)) = front.recv_from(&mut buf) {
            let socket = {
                let mut sockets = sockets.lock().unwrap_or_else(|e| e.into_inner());
                sockets
                    .entry(client)
                    .or_insert_with(|| {
                        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind upstream socket");
                        socket.connect(upstream).expect("connect upstream socket");
                        let socket = Arc::new(socket);
                        let reader = socket.clone();
                        let back = back_to_clients.clone();
                        let downstream = downstream.clone();
                        thread::spawn(move || {
                            let mut buf = vec![0u8; MAX_DATAGRAM];
                            while let Ok(n) = reader.recv(&mut buf) {
                                let due = {
                                    let mut down =
                                        downstream.lock().unwrap_or_else(|e| e.into_inner());
                                    let now = Instant::now();
                                    if !down.has_room(now) {
                                        continue; // dropped at the full queue
                                    }
                                    down.send(now, n)
                                };
                                if back.send((due, (client, buf[..n].to_vec()))).is_err() {
                                    return;
                                }
                            }
                        });
                        socket
                    })
                    .clone()
            };
            let now = Instant::now();
            if !upstream_link.has_room(now) {
                continue; // dropped at the full queue
            }
            let due = upstream_link.send(now, n);
            if to_server.send((due, (socket, buf[..n].to_vec()))).is_err() {
                return;
            }
        }
    });
    addr
}
