//! The hostile-peer suite: each case attacks a fresh `listen` process of lp2p-node and of
//! rust-libp2p-node (rust-libp2p 0.57) on 127.0.0.1 the same way, and while the attack
//! holds, an honest `lp2p-node dial --ping 1` must be served. Per case and implementation
//! it records the target's resident memory before, at peak (`VmHWM`) and after the attack,
//! what happened to the attacker's connections, and how long the honest dial and ping took.
//!
//! The table goes to stdout and, when `LP2P_HOSTILE_TABLE` names a file, to that file
//! (docs/hostile-peers.md holds a copy with the machine it ran on). lp2p's rows are also
//! checked: the honest peer is served in every case, protocol violations cut the attacker
//! off, floods of silent connections are closed, and memory stays under each case's bound.
//! rust-libp2p's rows are for comparison only.
//!
//! Its own harness (`harness = false`): the cases run one after another (they measure a
//! whole process), and `LP2P_HOSTILE_CASES=a,b` runs only those. The targets' logs are kept
//! (their folder is printed) when a case fails or `LP2P_HOSTILE_KEEP_LOGS` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use lp2p_core::Multiaddr;
use lp2p_interop::hostile::{
    self, MULTISTREAM_HEADER, StalledClient, closed_within, connect, frame, mplex_frame,
    multistream_message, pb, select,
};
use lp2p_interop::peers::{Implementation, Peer, Programs, run_to_end};

const MIB: f64 = 1024.0;
const MESHSUB: &str = "/meshsub/1.1.0";
const PUSH: &str = "/ipfs/id/push/1.0.0";

/// What a case reports about the attacker, and whether lp2p met the case's bar.
struct Verdict {
    /// What happened to the attacker's connections, for the table.
    attacker: String,
    /// For lp2p: why the case failed, if it did (the attacker was not cut off where it
    /// must be). rust-libp2p's verdicts are not checked.
    failure: Option<String>,
}

/// One case: its name, what it does, lp2p's memory bound above the baseline (MiB), and
/// the attack (given the target's address and the honest probe to run mid-attack).
struct Case {
    name: &'static str,
    what: &'static str,
    /// Arguments added to the target's `listen` (e.g. a topic to be subscribed to).
    listen: &'static [&'static str],
    max_growth_mib: f64,
    run: fn(Multiaddr, Probe) -> BoxFuture<'static, Verdict>,
}

/// Runs the honest dial + ping once; its outcome is kept for the table.
#[derive(Clone)]
struct Probe {
    lp2p_node: PathBuf,
    addr: String,
    result: std::sync::Arc<std::sync::Mutex<Option<Result<Duration, String>>>>,
}

impl Probe {
    async fn run(&self) {
        let (node, addr) = (self.lp2p_node.clone(), self.addr.clone());
        let outcome = async_std::task::spawn_blocking(move || {
            let start = Instant::now();
            let args: Vec<String> = ["dial", "--addr", &addr, "--ping", "1", "--timeout", "30"]
                .into_iter()
                .map(str::to_owned)
                .collect();
            run_to_end(Command::new(node), &args).map(|_| start.elapsed())
        })
        .await;
        *self.result.lock().unwrap() = Some(outcome);
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "silent-tcp-flood",
            listen: &[],
            what: "3,000 TCP connections that never send a byte",
            max_growth_mib: 64.0,
            run: |addr, probe| silent_flood(addr, probe).boxed(),
        },
        Case {
            name: "established-flood",
            listen: &[],
            what: "3,000 noise + yamux connections, each under its own identity, held idle (pings answered)",
            max_growth_mib: 160.0,
            run: |addr, probe| established_flood(addr, probe).boxed(),
        },
        Case {
            name: "slowloris-multistream",
            listen: &[],
            what: "200 connections sending the multistream header one byte per 500 ms",
            max_growth_mib: 32.0,
            run: |addr, probe| slowloris(addr, probe, None, MULTISTREAM_HEADER.to_vec()).boxed(),
        },
        Case {
            name: "slowloris-noise",
            listen: &[],
            what: "200 connections agreeing on /noise, then sending the first noise message one byte per 500 ms",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                slowloris(addr, probe, Some("/noise"), noise_first_message()).boxed()
            },
        },
        Case {
            name: "noise-first-message-payload",
            listen: &[],
            what: "/noise agreed, then a first message carrying a 16-byte payload (it must carry none)",
            max_growth_mib: 16.0,
            run: |addr, probe| first_message_payload(addr, probe).boxed(),
        },
        Case {
            name: "multistream-huge-varint",
            listen: &[],
            what: "a length prefix of ten 0xFF bytes",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                one_connection(addr, probe, |mut tcp| async move {
                    tcp.write_all(&[0xff; 10]).await.ok();
                    tcp.write_all(&[0x41; 1024]).await.ok();
                    tcp
                })
                .boxed()
            },
        },
        Case {
            name: "multistream-64k-line",
            listen: &[],
            what: "the header, then one 64 KiB protocol name",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                one_connection(addr, probe, |mut tcp| async move {
                    let name = format!("/{}", "a".repeat(64 * 1024));
                    let mut out = MULTISTREAM_HEADER.to_vec();
                    out.extend_from_slice(&multistream_message(&name));
                    tcp.write_all(&out).await.ok();
                    tcp
                })
                .boxed()
            },
        },
        Case {
            name: "multistream-10000-na",
            listen: &[],
            what: "the header, then 10,000 proposals the listener must refuse",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                one_connection(addr, probe, |mut tcp| async move {
                    let mut out = MULTISTREAM_HEADER.to_vec();
                    for i in 0..10_000 {
                        out.extend_from_slice(&multistream_message(&format!("/nope/{i}")));
                    }
                    tcp.write_all(&out).await.ok();
                    tcp
                })
                .boxed()
            },
        },
        Case {
            name: "noise-garbage",
            listen: &[],
            what: "/noise agreed, then a 65,535-byte first message of random bytes",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                one_connection(addr, probe, |mut tcp| async move {
                    if select(&mut tcp, "/noise").await.is_ok() {
                        let mut out = vec![0xff, 0xff];
                        out.extend(
                            (0..65_535u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8),
                        );
                        tcp.write_all(&out).await.ok();
                    }
                    tcp
                })
                .boxed()
            },
        },
        Case {
            name: "noise-tampered-frame",
            listen: &[],
            what: "noise completed, then a transport message with one ciphertext bit flipped",
            max_growth_mib: 16.0,
            run: |addr, probe| tampered_frame(addr, probe).boxed(),
        },
        Case {
            name: "yamux-10000-syn",
            listen: &[],
            what: "noise + yamux, then 10,000 stream opens, nothing read",
            max_growth_mib: 64.0,
            run: |addr, probe| {
                yamux_connection(
                    addr,
                    probe,
                    |mut conn| async move {
                        let mut out = Vec::new();
                        for i in 0..10_000u32 {
                            out.extend_from_slice(&frame::header(
                                frame::WINDOW_UPDATE,
                                frame::SYN,
                                1 + 2 * i,
                                0,
                            ));
                        }
                        conn.write_all(&out).await.ok();
                        conn
                    },
                    false,
                )
                .boxed()
            },
        },
        Case {
            name: "yamux-length-0xffffffff",
            listen: &[],
            what: "noise + yamux, then a Data frame announcing 4 GiB",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                yamux_connection(
                    addr,
                    probe,
                    |mut conn| async move {
                        let mut out = frame::header(frame::DATA, frame::SYN, 1, u32::MAX).to_vec();
                        out.extend_from_slice(&[0u8; 64 * 1024]);
                        conn.write_all(&out).await.ok();
                        conn
                    },
                    true,
                )
                .boxed()
            },
        },
        Case {
            name: "yamux-ping-flood",
            listen: &[],
            what: "noise + yamux, then 100,000 pings, answers never read",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                yamux_connection(
                    addr,
                    probe,
                    |mut conn| async move {
                        let mut out = Vec::new();
                        for i in 0..100_000u32 {
                            out.extend_from_slice(&frame::header(frame::PING, frame::SYN, 0, i));
                        }
                        // Written from a task: a target that stops reading must not stall the
                        // suite.
                        let _ = async_std::future::timeout(
                            Duration::from_secs(5),
                            conn.write_all(&out),
                        )
                        .await;
                        conn
                    },
                    false,
                )
                .boxed()
            },
        },
        Case {
            name: "yamux-window-overflow",
            listen: &[],
            what: "noise + yamux, a stream opened, then two window updates of 0xFFFFFFFF",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                yamux_connection(
                    addr,
                    probe,
                    |mut conn| async move {
                        let mut out =
                            frame::header(frame::WINDOW_UPDATE, frame::SYN, 1, 0).to_vec();
                        out.extend_from_slice(&frame::header(frame::WINDOW_UPDATE, 0, 1, u32::MAX));
                        out.extend_from_slice(&frame::header(frame::WINDOW_UPDATE, 0, 1, u32::MAX));
                        conn.write_all(&out).await.ok();
                        conn
                    },
                    false,
                )
                .boxed()
            },
        },
        Case {
            name: "yamux-data-over-window",
            listen: &[],
            what: "noise + yamux, an /echo/1.0.0 stream's window filled, then one byte more than the target granted",
            max_growth_mib: 16.0,
            run: |addr, probe| data_over_window(addr, probe).boxed(),
        },
        Case {
            name: "stalled-echo",
            listen: &[],
            what: "2 connections x 500 /echo/1.0.0 streams, 1 MiB written on each, nothing read back",
            // Measured 55-70 MiB (the issue measured 288 MiB). A bound against
            // regressions, not the goal: see docs/hostile-peers.md, and why rust-libp2p's
            // 2 MiB is not a like-for-like figure.
            max_growth_mib: 160.0,
            run: |addr, probe| {
                let payload = vec![0x5a; 1024 * 1024];
                stream_attack(addr, probe, 2, 500, "/echo/1.0.0", payload, false, false).boxed()
            },
        },
        Case {
            name: "negotiation-stall",
            listen: &[],
            what: "4 connections x 256 streams that send the multistream header and never propose",
            max_growth_mib: 32.0,
            run: |addr, probe| idle_streams(addr, probe, 4, 256, "").boxed(),
        },
        Case {
            name: "sybil-ping-slots",
            listen: &[],
            what: "600 identities holding 2 idle /ipfs/ping/1.0.0 streams each (1,200 streams)",
            max_growth_mib: 128.0,
            run: |addr, probe| idle_streams(addr, probe, 600, 2, "/ipfs/ping/1.0.0").boxed(),
        },
        Case {
            name: "yamux-50000-open-reset",
            listen: &[],
            what: "noise + yamux, then 50,000 streams opened and reset at once",
            max_growth_mib: 32.0,
            run: |addr, probe| open_reset(addr, probe).boxed(),
        },
        Case {
            name: "mplex-10000-new-streams",
            listen: &[],
            what: "noise + mplex, then 10,000 stream opens, nothing read",
            max_growth_mib: 64.0,
            run: |addr, probe| {
                mplex_frames(addr, probe, false, |out| {
                    for n in 0..10_000 {
                        mplex_frame::frame(n, mplex_frame::NEW_STREAM, b"", out);
                    }
                })
                .boxed()
            },
        },
        Case {
            name: "mplex-length-4gib",
            listen: &[],
            what: "noise + mplex, then a message announcing 4 GiB (the limit is 1 MiB)",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                mplex_frames(addr, probe, true, |out| {
                    mplex_frame::frame(0, mplex_frame::NEW_STREAM, b"", out);
                    lp2p_core::varint::encode_into(mplex_frame::MESSAGE_INITIATOR.into(), out);
                    lp2p_core::varint::encode_into(1 << 32, out);
                    out.extend_from_slice(&[0u8; 64 * 1024]);
                })
                .boxed()
            },
        },
        Case {
            name: "mplex-50000-open-reset",
            listen: &[],
            what: "noise + mplex, then 50,000 streams opened and reset at once",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                mplex_frames(addr, probe, false, |out| {
                    for n in 0..50_000 {
                        mplex_frame::frame(n, mplex_frame::NEW_STREAM, b"", out);
                        mplex_frame::frame(n, mplex_frame::RESET_INITIATOR, b"", out);
                    }
                })
                .boxed()
            },
        },
        Case {
            name: "mplex-stalled-echo",
            listen: &[],
            what: "noise + mplex, 1,000 /echo/1.0.0 streams with 64 KiB each, nothing read back",
            // mplex has no flow control: the target holds what it took in, up to its
            // per-stream share (4 MiB) and per-connection cap (32 MiB).
            max_growth_mib: 96.0,
            run: |addr, probe| {
                mplex_frames(addr, probe, false, |out| {
                    let mut body = MULTISTREAM_HEADER.to_vec();
                    body.extend(multistream_message("/echo/1.0.0"));
                    body.extend(std::iter::repeat_n(0x5a, 64 * 1024));
                    for n in 0..1_000 {
                        mplex_frame::frame(n, mplex_frame::NEW_STREAM, b"", out);
                        mplex_frame::frame(n, mplex_frame::MESSAGE_INITIATOR, &body, out);
                    }
                })
                .boxed()
            },
        },
        Case {
            name: "gossipsub-4mib-rpc",
            listen: &["--topic", "t"],
            what: "a /meshsub/1.1.0 stream carrying one 4 MiB RPC (the limit is 1 MiB)",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                stream_attack(addr, probe, 1, 1, MESHSUB, four_mib_rpc(), true, true).boxed()
            },
        },
        Case {
            name: "gossipsub-100000-topics",
            listen: &["--topic", "t"],
            what: "10 RPCs subscribing to 10,000 different topics each",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                stream_attack(
                    addr,
                    probe,
                    1,
                    1,
                    MESHSUB,
                    many_subscriptions(),
                    true,
                    false,
                )
                .boxed()
            },
        },
        Case {
            name: "gossipsub-ihave-100000-ids",
            listen: &["--topic", "t"],
            what: "4 RPCs with one IHAVE of 25,000 message ids each",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                stream_attack(addr, probe, 1, 1, MESHSUB, huge_ihave(), true, false).boxed()
            },
        },
        Case {
            name: "gossipsub-graft-spam",
            listen: &["--topic", "t"],
            what: "10 RPCs of 1,000 GRAFTs each",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                stream_attack(addr, probe, 1, 1, MESHSUB, graft_spam(), true, false).boxed()
            },
        },
        Case {
            name: "gossipsub-10000-bad-signatures",
            listen: &["--topic", "t"],
            what: "10,000 messages on a subscribed topic with forged signatures",
            max_growth_mib: 32.0,
            run: |addr, probe| {
                stream_attack(addr, probe, 1, 1, MESHSUB, bad_signatures(), true, false).boxed()
            },
        },
        Case {
            name: "identify-push-10000-addrs",
            listen: &[],
            what: "an identify push listing 10,000 addresses",
            max_growth_mib: 16.0,
            run: |addr, probe| {
                stream_attack(addr, probe, 1, 1, PUSH, identify_push(), true, false).boxed()
            },
        },
    ]
}

/// Opens `n` TCP connections to `addr`, 100 at a time; those that connected.
async fn open_many(addr: &Multiaddr, n: usize) -> Vec<lp2p_tcp::TcpConnection> {
    let mut conns = Vec::with_capacity(n);
    for start in (0..n).step_by(100) {
        let batch = join_all(
            (start..n.min(start + 100))
                .map(|_| async_std::future::timeout(Duration::from_secs(5), connect(addr))),
        )
        .await;
        conns.extend(
            batch
                .into_iter()
                .filter_map(|r| r.ok().and_then(Result::ok)),
        );
    }
    conns
}

/// How many of `conns` the target closed within `within`, and when the last of those
/// closed.
async fn count_closed<S>(conns: Vec<S>, within: Duration) -> (usize, usize, Duration)
where
    S: futures::AsyncRead + Unpin + Send + 'static,
{
    let total = conns.len();
    let closed: Vec<Duration> = join_all(
        conns
            .into_iter()
            .map(|mut c| async move { closed_within(&mut c, within).await }),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    let last = closed.iter().copied().max().unwrap_or_default();
    (total, closed.len(), last)
}

async fn silent_flood(addr: Multiaddr, probe: Probe) -> Verdict {
    let conns = open_many(&addr, 3_000).await;
    async_std::task::sleep(Duration::from_millis(1500)).await;
    probe.run().await;
    let (total, closed, last) = count_closed(conns, Duration::from_secs(20)).await;
    Verdict {
        attacker: format!(
            "{total} opened; {closed} closed by the target, the last after {:.1} s",
            last.as_secs_f64()
        ),
        failure: (closed < total).then(|| {
            format!(
                "{} of {total} silent connections still open after 20 s",
                total - closed
            )
        }),
    }
}

/// 3,000 connections that complete noise and yamux, each under a fresh identity (so no
/// per-peer limit binds), held without a stream by a client that answers pings (as an idle
/// honest peer would, so keep-alive does not close them); the honest peer comes after the
/// first 1,500. lp2p-node, a test tool, lifts the library's connection limits (65,536, no
/// idle timeout), so this measures memory and service with thousands of established
/// connections; what the library does at its default limit of 1,024 inbound (close the
/// connection idle the longest, decision D34) is tested in lp2p-swarm and lp2p-host.
async fn established_flood(addr: Multiaddr, probe: Probe) -> Verdict {
    const TOTAL: usize = 3_000;
    let started = Instant::now();
    let open = |n: usize| {
        let addr = addr.clone();
        async move {
            let mut held = Vec::new();
            for start in (0..n).step_by(100) {
                let batch = join_all((start..n.min(start + 100)).map(|_| {
                    let no_payload = std::sync::Arc::new(Vec::new());
                    async_std::future::timeout(
                        Duration::from_secs(15),
                        StalledClient::start(&addr, "", 0, no_payload, false),
                    )
                }))
                .await;
                held.extend(
                    batch
                        .into_iter()
                        .filter_map(|r| r.ok().and_then(Result::ok)),
                );
            }
            held
        }
    };
    let mut clients = open(TOTAL / 2).await;
    // Identify's request to each attacker times out after 5 s, idleness is checked every
    // 5 s, and a connection may be taken once idle 10 s.
    async_std::task::sleep(Duration::from_secs(15)).await;
    probe.run().await;
    clients.extend(open(TOTAL - TOTAL / 2).await);
    let opened_in = started.elapsed();
    async_std::task::sleep(Duration::from_millis(500)).await;
    let held = clients.len();
    let closed = clients.iter().filter(|c| c.closed()).count();
    join_all(clients.into_iter().map(StalledClient::stop)).await;
    Verdict {
        attacker: format!(
            "{held} of {TOTAL} handshakes completed over {:.0} s; {closed} of those closed \
             by the target while held",
            opened_in.as_secs_f64()
        ),
        failure: None,
    }
}

/// The first noise message of an initiator, framed: a 32-byte ephemeral key and no payload.
/// Trickled a byte at a time, it takes 17 s to arrive, longer than either target's upgrade
/// timeout.
fn noise_first_message() -> Vec<u8> {
    let mut out = vec![0x00, 0x20];
    out.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    out
}

/// 200 connections that send `trickle` one byte per 500 ms (after agreeing on `prelude`
/// with multistream-select, when given). The target must close every one of them.
async fn slowloris(
    addr: Multiaddr,
    probe: Probe,
    prelude: Option<&'static str>,
    trickle: Vec<u8>,
) -> Verdict {
    let mut conns = open_many(&addr, 200).await;
    if let Some(protocol) = prelude {
        // A connection the target refuses here (its pending-handshake slots are full) fails
        // the selection and is counted below as closed by the target.
        join_all(conns.iter_mut().map(|c| async move {
            let _ = async_std::future::timeout(Duration::from_secs(5), select(c, protocol)).await;
        }))
        .await;
    }
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for conn in conns {
        let (read, mut write) = conn.split();
        readers.push(read);
        let trickle = trickle.clone();
        writers.push(async_std::task::spawn(async move {
            for byte in trickle.iter().cycle() {
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
                async_std::task::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    async_std::task::sleep(Duration::from_millis(1500)).await;
    probe.run().await;
    let (total, closed, last) = count_closed(readers, Duration::from_secs(25)).await;
    for w in writers {
        w.cancel().await;
    }
    Verdict {
        attacker: format!(
            "{total} opened; {closed} closed by the target, the last after {:.1} s",
            last.as_secs_f64()
        ),
        failure: (closed < total).then(|| {
            format!(
                "{} of {total} slowloris connections still open after 25 s",
                total - closed
            )
        }),
    }
}

/// One raw TCP connection that `attack` misbehaves on; the target must close it.
async fn one_connection<F, Fut>(addr: Multiaddr, probe: Probe, attack: F) -> Verdict
where
    F: FnOnce(lp2p_tcp::TcpConnection) -> Fut,
    Fut: std::future::Future<Output = lp2p_tcp::TcpConnection>,
{
    let tcp = match connect(&addr).await {
        Ok(tcp) => tcp,
        Err(e) => {
            return not_started(&probe, "could not connect", &e).await;
        }
    };
    let mut tcp = attack(tcp).await;
    let closed = closed_within(&mut tcp, Duration::from_secs(10)).await;
    probe.run().await;
    cut_off(closed)
}

/// One noise + yamux connection that `attack` misbehaves on. With `must_close`, lp2p
/// must close it (a protocol violation); otherwise it is reported either way.
async fn yamux_connection<F, Fut>(
    addr: Multiaddr,
    probe: Probe,
    attack: F,
    must_close: bool,
) -> Verdict
where
    F: FnOnce(lp2p_core::SecureConnection) -> Fut,
    Fut: std::future::Future<Output = lp2p_core::SecureConnection>,
{
    muxed_connection(addr, probe, "/yamux/1.0.0", attack, must_close).await
}

/// [`yamux_connection`] with the muxer `protocol` (`/mplex/6.7.0`).
async fn muxed_connection<F, Fut>(
    addr: Multiaddr,
    probe: Probe,
    protocol: &'static str,
    attack: F,
    must_close: bool,
) -> Verdict
where
    F: FnOnce(lp2p_core::SecureConnection) -> Fut,
    Fut: std::future::Future<Output = lp2p_core::SecureConnection>,
{
    let conn = match hostile::muxed(&addr, protocol).await {
        Ok(conn) => conn,
        Err(e) => {
            return not_started(&probe, "handshake failed", &e).await;
        }
    };
    let mut conn = attack(conn).await;
    // Noise buffers what is written until a flush.
    let _ = async_std::future::timeout(Duration::from_secs(5), conn.flush()).await;
    // The honest peer comes while the attacker's connection is unread.
    probe.run().await;
    let closed = closed_within(&mut conn, Duration::from_secs(10)).await;
    let mut verdict = cut_off(closed);
    if !must_close {
        verdict.failure = None;
    }
    verdict
}

/// A noise handshake completed honestly, then the first transport message (the muxer
/// proposal) sent with a flipped ciphertext bit: the target must drop the connection, not
/// answer it or wait.
async fn tampered_frame(addr: Multiaddr, probe: Probe) -> Verdict {
    let (mut conn, armed) = match hostile::secured_tamperable(&addr).await {
        Ok(pair) => pair,
        Err(e) => return not_started(&probe, "handshake failed", &e).await,
    };
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut proposal = MULTISTREAM_HEADER.to_vec();
    proposal.extend(multistream_message("/yamux/1.0.0"));
    let _ = conn.write_all(&proposal).await;
    let _ = async_std::future::timeout(Duration::from_secs(5), conn.flush()).await;
    let closed = closed_within(&mut conn, Duration::from_secs(10)).await;
    probe.run().await;
    cut_off(closed)
}

/// A yamux stream sent one byte past the receive window the target granted it
/// ([`hostile::overrun`]): a protocol violation, so the target must close the connection.
async fn data_over_window(addr: Multiaddr, probe: Probe) -> Verdict {
    let mut conn = match hostile::yamux(&addr).await {
        Ok(conn) => conn,
        Err(e) => return not_started(&probe, "handshake failed", &e).await,
    };
    let overrun = async_std::future::timeout(
        Duration::from_secs(20),
        hostile::overrun::overrun_window(&mut conn),
    )
    .await
    .unwrap_or_else(|_| Err(std::io::Error::other("timed out")));
    let overrun = match overrun {
        Ok(overrun) => overrun,
        Err(e) => return not_started(&probe, "the window was not overrun", &e).await,
    };
    let closed = closed_within(&mut conn, Duration::from_secs(10)).await;
    probe.run().await;
    let mut verdict = cut_off(closed);
    verdict.attacker = format!(
        "{} KiB granted after the first 256 KiB, {} bytes sent: {}",
        overrun.granted / 1024,
        overrun.sent,
        verdict.attacker
    );
    verdict
}

/// /noise agreed, then a first noise message whose ephemeral key is followed by a 16-byte
/// payload. The spec's first message carries none: the target must close the connection
/// without answering with a second message.
async fn first_message_payload(addr: Multiaddr, probe: Probe) -> Verdict {
    let mut tcp = match connect(&addr).await {
        Ok(tcp) => tcp,
        Err(e) => return not_started(&probe, "could not connect", &e).await,
    };
    if let Err(e) = select(&mut tcp, "/noise").await {
        return not_started(&probe, "/noise refused", &e).await;
    }
    let mut message = noise_first_message();
    message[1] = 32 + 16;
    message.extend_from_slice(b"sixteen bytes!!!");
    let _ = tcp.write_all(&message).await;
    let (closed, answered) = hostile::read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    probe.run().await;
    let mut verdict = cut_off(closed);
    if answered > 0 {
        verdict.attacker = format!("answered with {answered} bytes; {}", verdict.attacker);
        verdict.failure = Some(format!(
            "the target answered a first message carrying a payload ({answered} bytes)"
        ));
    }
    verdict
}

/// One noise + mplex connection on which the frames `write` produces are sent (as one
/// write, however large; a target that stops reading leaves the rest unsent). With
/// `must_close`, lp2p must close the connection.
async fn mplex_frames(
    addr: Multiaddr,
    probe: Probe,
    must_close: bool,
    write: impl FnOnce(&mut Vec<u8>) + Send + 'static,
) -> Verdict {
    muxed_connection(
        addr,
        probe,
        "/mplex/6.7.0",
        |mut conn| async move {
            let mut out = Vec::new();
            write(&mut out);
            let _ = async_std::future::timeout(Duration::from_secs(10), conn.write_all(&out)).await;
            conn
        },
        must_close,
    )
    .await
}

/// The attack could not start (`what`: connecting or the handshake failed): the honest probe
/// still runs, and for lp2p the case fails.
async fn not_started(probe: &Probe, what: &str, e: &(dyn std::fmt::Display + Sync)) -> Verdict {
    let e = e.to_string();
    probe.run().await;
    Verdict {
        attacker: format!("{what}: {e}"),
        failure: Some(e),
    }
}

fn cut_off(closed: Option<Duration>) -> Verdict {
    match closed {
        Some(after) => Verdict {
            attacker: format!("closed after {:.2} s", after.as_secs_f64()),
            failure: None,
        },
        None => Verdict {
            attacker: "still open after 10 s".into(),
            failure: Some("the connection was not closed".into()),
        },
    }
}

/// `identities` connections, each under its own identity, each holding `streams` idle
/// streams to `protocol` (an empty `protocol`: streams that send the multistream header and
/// never propose). The honest peer must still be served.
async fn idle_streams(
    addr: Multiaddr,
    probe: Probe,
    identities: usize,
    streams: u32,
    protocol: &'static str,
) -> Verdict {
    let payload = std::sync::Arc::new(Vec::new());
    let mut clients = Vec::new();
    let mut failed = 0;
    for start in (0..identities).step_by(20) {
        let batch = join_all(
            (start..identities.min(start + 20))
                .map(|_| StalledClient::start(&addr, protocol, streams, payload.clone(), false)),
        )
        .await;
        for client in batch {
            match client {
                Ok(c) => clients.push(c),
                Err(_) => failed += 1,
            }
        }
    }
    async_std::task::sleep(Duration::from_secs(2)).await;
    probe.run().await;
    let ended: usize = clients.iter().map(|c| c.progress().1).sum();
    let closed = clients.iter().filter(|c| c.closed()).count();
    let opened = clients.len();
    for c in clients {
        c.stop().await;
    }
    Verdict {
        attacker: format!(
            "{opened} connections ({failed} failed to connect); {ended} of {} streams reset or closed; {closed} connections closed",
            opened * streams as usize
        ),
        failure: None,
    }
}

/// `conns` connections of a [`StalledClient`] each opening `streams` streams to `protocol`
/// and writing `payload` on each (then a FIN when `fin`). With `must_refuse`, lp2p must
/// reset the streams or close the connections before the whole payload is taken.
#[allow(clippy::too_many_arguments)]
async fn stream_attack(
    addr: Multiaddr,
    probe: Probe,
    conns: usize,
    streams: u32,
    protocol: &str,
    payload: Vec<u8>,
    fin: bool,
    must_refuse: bool,
) -> Verdict {
    let payload = std::sync::Arc::new(payload);
    let mut clients = Vec::new();
    for _ in 0..conns {
        match StalledClient::start(&addr, protocol, streams, payload.clone(), fin).await {
            Ok(c) => clients.push(c),
            Err(e) => {
                return not_started(&probe, "handshake failed", &e).await;
            }
        }
    }
    // Until the windows are spent or the target refused everything: no progress for a
    // second.
    let mut last = (0, 0);
    for _ in 0..30 {
        async_std::task::sleep(Duration::from_secs(1)).await;
        let now = clients.iter().fold((0, 0), |(sent, ended), c| {
            let (s, e) = c.progress();
            (sent + s, ended + e)
        });
        if now == last {
            break;
        }
        last = now;
    }
    probe.run().await;
    let (sent, ended) = last;
    let closed = clients.iter().filter(|c| c.closed()).count();
    let received: u64 = clients.iter().map(StalledClient::received).sum();
    for c in clients {
        c.stop().await;
    }
    let total_streams = conns * streams as usize;
    let offered = payload.len() as u64 * total_streams as u64;
    let refused = closed == conns || ended == total_streams;
    Verdict {
        attacker: format!(
            "{} of {} written, {} received back; {ended} of {total_streams} streams reset or closed; {closed} of {conns} connections closed",
            size(sent),
            size(offered),
            size(received),
        ),
        failure: (must_refuse && !refused)
            .then(|| "the target took the stream instead of refusing it".to_owned()),
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB / MIB)
    } else {
        format!("{:.0} KiB", bytes as f64 / MIB)
    }
}

/// Length-prefixed pubsub RPCs.
fn rpcs(rpcs: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    rpcs.into_iter().flat_map(|rpc| pb::framed(&rpc)).collect()
}

/// An RPC carrying one control message.
fn control_rpc(control: &[u8]) -> Vec<u8> {
    let mut rpc = Vec::new();
    pb::bytes(3, control, &mut rpc);
    rpc
}

/// 10 RPCs of 10,000 subscriptions each, every topic different.
fn many_subscriptions() -> Vec<u8> {
    rpcs((0..10).map(|r| {
        let mut rpc = Vec::new();
        for i in 0..10_000 {
            let mut sub = Vec::new();
            pb::uint(1, 1, &mut sub);
            pb::bytes(2, format!("t-{r}-{i:05}").as_bytes(), &mut sub);
            pb::bytes(1, &sub, &mut rpc);
        }
        rpc
    }))
}

/// 4 RPCs, each one IHAVE of 25,000 message ids for topic `t`.
fn huge_ihave() -> Vec<u8> {
    rpcs((0..4u32).map(|r| {
        let mut ihave = Vec::new();
        pb::bytes(1, b"t", &mut ihave);
        for i in 0..25_000u32 {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&r.to_be_bytes());
            id[4..8].copy_from_slice(&i.to_be_bytes());
            pb::bytes(2, &id, &mut ihave);
        }
        let mut control = Vec::new();
        pb::bytes(1, &ihave, &mut control);
        control_rpc(&control)
    }))
}

/// 10 RPCs of 1,000 GRAFTs for topic `t` each.
fn graft_spam() -> Vec<u8> {
    rpcs((0..10).map(|_| {
        let mut graft = Vec::new();
        pb::bytes(1, b"t", &mut graft);
        let mut control = Vec::new();
        for _ in 0..1_000 {
            pb::bytes(3, &graft, &mut control);
        }
        control_rpc(&control)
    }))
}

/// 10 RPCs of 1,000 messages on topic `t` each, signed with garbage.
fn bad_signatures() -> Vec<u8> {
    let author = lp2p_core::PeerId::random().to_bytes();
    rpcs((0..10u64).map(|r| {
        let mut rpc = Vec::new();
        for i in 0..1_000u64 {
            let mut message = Vec::new();
            pb::bytes(1, &author, &mut message);
            pb::bytes(2, b"forged", &mut message);
            pb::bytes(3, &(r * 1_000 + i).to_be_bytes(), &mut message);
            pb::bytes(4, b"t", &mut message);
            pb::bytes(5, &[0x42; 64], &mut message);
            pb::bytes(2, &message, &mut rpc);
        }
        rpc
    }))
}

/// One RPC length prefix announcing 4 MiB, then 4 MiB.
fn four_mib_rpc() -> Vec<u8> {
    let mut rpc = Vec::new();
    let mut message = Vec::new();
    pb::bytes(2, &vec![0x61; 4 * 1024 * 1024 - 64], &mut message);
    pb::bytes(4, b"t", &mut message);
    pb::bytes(2, &message, &mut rpc);
    pb::framed(&rpc)
}

/// An identify push with 10,000 listen addresses.
fn identify_push() -> Vec<u8> {
    let mut identify = Vec::new();
    for i in 0..10_000u32 {
        let addr: Multiaddr = format!("/ip4/10.{}.{}.1/tcp/4001", i >> 8, i & 0xff)
            .parse()
            .unwrap();
        pb::bytes(2, &addr.to_vec(), &mut identify);
    }
    pb::framed(&identify)
}

/// 50,000 streams opened and reset at once, on one connection whose answers are read.
async fn open_reset(addr: Multiaddr, probe: Probe) -> Verdict {
    let conn = match hostile::yamux(&addr).await {
        Ok(conn) => conn,
        Err(e) => {
            return not_started(&probe, "handshake failed", &e).await;
        }
    };
    let (mut read, mut write) = conn.split();
    let drain =
        async_std::task::spawn(
            async move { closed_within(&mut read, Duration::from_secs(60)).await },
        );
    let mut written = 0u32;
    for batch in 0..50u32 {
        let mut out = Vec::new();
        for i in 0..1_000u32 {
            let id = 1 + 2 * (batch * 1_000 + i);
            out.extend_from_slice(&frame::header(frame::WINDOW_UPDATE, frame::SYN, id, 0));
            out.extend_from_slice(&frame::header(frame::WINDOW_UPDATE, frame::RST, id, 0));
        }
        let sent = async {
            write.write_all(&out).await?;
            write.flush().await
        };
        match async_std::future::timeout(Duration::from_secs(5), sent).await {
            Ok(Ok(())) => written += 1_000,
            _ => break,
        }
    }
    probe.run().await;
    drop(write);
    let closed = async_std::future::timeout(Duration::from_secs(3), drain)
        .await
        .ok()
        .flatten();
    Verdict {
        attacker: format!(
            "{written} streams opened and reset; connection {}",
            if closed.is_some() { "closed" } else { "kept" }
        ),
        failure: None,
    }
}

struct Row {
    case: &'static str,
    implementation: Implementation,
    before_mib: f64,
    peak_mib: f64,
    after_mib: f64,
    attacker: String,
    honest: Result<Duration, String>,
    failure: Option<String>,
}

fn run_case(
    programs: &Programs,
    lp2p_node: &Path,
    case: &Case,
    which: Implementation,
    log_dir: &Path,
) -> Result<Row, String> {
    let command = programs.command(which)?;
    let args: Vec<String> = ["listen", "--addr", "/ip4/127.0.0.1/tcp/0"]
        .into_iter()
        .chain(case.listen.iter().copied())
        .map(str::to_owned)
        .collect();
    let log = log_dir.join(format!("{}-{}.log", case.name, which.key()));
    let target = Peer::listen(command, &args, Some(&log))?;
    let pid = target.pid();
    let addr: Multiaddr = target
        .addr
        .parse()
        .map_err(|e| format!("{}: {e}", target.addr))?;
    // Let it settle before the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let before = hostile::memory(pid).ok_or("the target exited before the attack")?;
    let probe = Probe {
        lp2p_node: lp2p_node.to_path_buf(),
        addr: target.addr.clone(),
        result: Default::default(),
    };
    let verdict = async_std::task::block_on((case.run)(addr, probe.clone()));
    let during = hostile::memory(pid).ok_or("the target died during the attack")?;
    std::thread::sleep(Duration::from_secs(2));
    let after = hostile::memory(pid).ok_or("the target died after the attack")?;
    let honest = probe
        .result
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(|| Err("not run".into()));
    let mut failure = verdict.failure;
    if let Err(e) = &honest {
        failure = Some(format!("the honest peer was not served: {e}"));
    }
    let growth = (during.peak_kib.saturating_sub(before.rss_kib)) as f64 / MIB;
    if growth > case.max_growth_mib {
        failure = Some(format!(
            "peak memory grew by {growth:.0} MiB, the bound is {} MiB",
            case.max_growth_mib
        ));
    }
    drop(target);
    Ok(Row {
        case: case.name,
        implementation: which,
        before_mib: before.rss_kib as f64 / MIB,
        peak_mib: during.peak_kib as f64 / MIB,
        after_mib: after.rss_kib as f64 / MIB,
        attacker: verdict.attacker,
        honest,
        failure,
    })
}

fn table(rows: &[Row], cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str("| case | implementation | RSS before | peak | after (2 s) | the attacker's connections | honest dial + ping |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for row in rows {
        let honest = match &row.honest {
            Ok(d) => format!("served in {:.0} ms", d.as_secs_f64() * 1000.0),
            Err(e) => format!("NOT served: {}", e.lines().next().unwrap_or_default()),
        };
        out.push_str(&format!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {} |\n",
            row.case,
            row.implementation.name(),
            row.before_mib,
            row.peak_mib,
            row.after_mib,
            row.attacker,
            honest
        ));
    }
    out.push_str("\nCases:\n");
    for case in cases {
        out.push_str(&format!("- `{}`: {}\n", case.name, case.what));
    }
    out
}

fn main() {
    let interop_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lp2p_node = lp2p_interop::lp2p_node_binary(false);
    let programs = Programs::new(
        lp2p_node.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        interop_dir,
    );
    let only: Option<Vec<String>> = std::env::var("LP2P_HOSTILE_CASES")
        .ok()
        .map(|s| s.split(',').map(|c| c.trim().to_owned()).collect());
    let log_dir = std::env::temp_dir().join(format!("lp2p-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let all = cases();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &all {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|c| c == case.name))
        {
            continue;
        }
        for which in [Implementation::Lp2p, Implementation::Rust] {
            println!("hostile: {} against {} ...", case.name, which.name());
            match run_case(&programs, &lp2p_node, case, which, &log_dir) {
                Ok(row) => {
                    if which == Implementation::Lp2p
                        && let Some(f) = &row.failure
                    {
                        failures.push(format!("{}: {f}", case.name));
                    }
                    rows.push(row);
                }
                Err(e) if which == Implementation::Lp2p => {
                    failures.push(format!("{}: {e}", case.name))
                }
                Err(e) => println!(
                    "hostile: {} against rust-libp2p could not run: {e}",
                    case.name
                ),
            }
        }
    }
    let table = table(&rows, &all);
    println!("\n{table}");
    if let Ok(path) = std::env::var("LP2P_HOSTILE_TABLE") {
        std::fs::write(&path, &table).unwrap();
    }
    if failures.is_empty() && std::env::var_os("LP2P_HOSTILE_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(&log_dir);
        println!("hostile: every lp2p case passed");
        if log_dir.exists() {
            println!("hostile: the targets' logs are in {}", log_dir.display());
        }
    } else {
        println!("hostile: the targets' logs are in {}", log_dir.display());
        for f in &failures {
            println!("hostile: FAILED {f}");
        }
        std::process::exit(1);
    }
}
