//! Delaying relays for the whole-stack bench: a TCP and a UDP forwarder on 127.0.0.1 that
//! hold every chunk or datagram for half a round trip in each direction, so that the setup
//! figures show what a handshake's round trips cost. (The machine's kernel has no netem.)
//!
//! TCP: the relay answers the client's connect at once, then waits one round trip before it
//! connects to the server and starts forwarding, which stands in for the SYN round trip the
//! client would have waited for. Bytes are forwarded in the chunks they were read in, each
//! held until half a round trip after it was read. UDP: one upstream socket per client
//! address, each datagram held for half a round trip.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes read at a time by a TCP pump.
const CHUNK: usize = 64 * 1024;
/// Largest datagram forwarded (QUIC's are at most about 1,500 bytes on loopback).
const MAX_DATAGRAM: usize = 65_536;

/// Sends each item when it is due, in order (a constant delay keeps due times monotonic).
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

/// Starts a TCP relay to `upstream` delaying by `rtt`; returns its address.
pub fn tcp(upstream: SocketAddr, rtt: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TCP relay");
    let addr = listener.local_addr().expect("relay address");
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            thread::spawn(move || {
                thread::sleep(rtt);
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                pump(client, server2, rtt / 2);
                pump(server, client2, rtt / 2);
            });
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk held for `delay`; the end of `from` half-closes `to`.
fn pump(mut from: TcpStream, to: TcpStream, delay: Duration) {
    let mut writer = to;
    let tx = delayed(move |chunk: Option<Vec<u8>>| match chunk {
        Some(bytes) => writer.write_all(&bytes).is_ok(),
        None => {
            let _ = writer.shutdown(Shutdown::Write);
            false
        }
    });
    thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send((Instant::now() + delay, None));
                    return;
                }
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, Some(buf[..n].to_vec())))
                        .is_err()
                    {
                        let _ = from.shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    });
}

/// Starts a UDP relay to `upstream` delaying by `rtt`; returns its address.
pub fn udp(upstream: SocketAddr, rtt: Duration) -> SocketAddr {
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
                        thread::spawn(move || {
                            let mut buf = vec![0u8; MAX_DATAGRAM];
                            while let Ok(n) = reader.recv(&mut buf) {
                                let due = Instant::now() + rtt / 2;
                                if back.send((due, (client, buf[..n].to_vec()))).is_err() {
                                    return;
                                }
                            }
                        });
                        socket
                    })
                    .clone()
            };
            let due = Instant::now() + rtt / 2;
            if to_server.send((due, (socket, buf[..n].to_vec()))).is_err() {
                return;
            }
        }
    });
    addr
}
