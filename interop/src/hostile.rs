//! The attacker of the hostile-peer suite (`tests/hostile.rs`): raw TCP connections, the
//! handshake steps an attacker completes before misbehaving (multistream-select, noise with
//! a throwaway identity, yamux), raw yamux frames, a yamux client whose streams never read,
//! and the memory figures of the target process.
//!
//! Everything here speaks the wire by hand on purpose: an honest library would refuse to
//! send most of what the suite sends.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Keypair, Multiaddr, RuntimeHandle, SecureConnection, SecurityUpgrader};
use lp2p_core::{UpgradeContext, varint};
use lp2p_tcp::{TcpConnection, TcpTransport};

pub mod overrun;

/// The multistream-select header, framed.
pub const MULTISTREAM_HEADER: &[u8] = b"\x13/multistream/1.0.0\n";

/// Resident and peak memory of a process, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident set now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// The highest resident set so far (`VmHWM`), in KiB.
    pub peak_kib: u64,
}

/// The memory of process `pid`, or `None` when it is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// A TCP connection to `addr` (an `/ip4/.../tcp/...` address, `/p2p` allowed).
pub async fn connect(addr: &Multiaddr) -> io::Result<TcpConnection> {
    TcpTransport::default()
        .dial_tcp(addr)
        .await
        .map_err(io::Error::other)
}

/// One message of multistream-select: the length-prefixed `text` and a newline.
pub fn multistream_message(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    varint::encode_into(text.len() as u64 + 1, &mut out);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
    out
}

/// Proposes `protocol` with multistream-select (header and proposal in one write) and
/// checks that the listener accepted it.
pub async fn select<S>(io: &mut S, protocol: &str) -> io::Result<()>
where
    S: futures::AsyncRead + futures::AsyncWrite + Unpin,
{
    let proposal = multistream_message(protocol);
    let mut out = MULTISTREAM_HEADER.to_vec();
    out.extend_from_slice(&proposal);
    io.write_all(&out).await?;
    io.flush().await?;
    let mut answer = vec![0u8; out.len()];
    io.read_exact(&mut answer).await?;
    if answer != out {
        return Err(io::Error::other(format!(
            "multistream-select refused {protocol}: {:?}",
            String::from_utf8_lossy(&answer)
        )));
    }
    Ok(())
}

/// A connection secured with noise under a throwaway identity (no muxer offered in the
/// handshake, so the muxer is negotiated with multistream-select afterwards).
pub async fn secured(addr: &Multiaddr) -> io::Result<SecureConnection> {
    let mut tcp = connect(addr).await?;
    select(&mut tcp, "/noise").await?;
    let ctx = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
    lp2p_noise::Noise::new()
        .secure_outbound(Box::new(tcp), &ctx, None)
        .await
        .map_err(io::Error::other)
}

/// A TCP connection that corrupts one write when armed: the byte after the 2-byte length
/// prefix of the next noise message (its first ciphertext byte) is flipped, so the message
/// no longer authenticates. Reads pass through.
pub struct Tamper {
    inner: TcpConnection,
    armed: Arc<AtomicBool>,
}

impl futures::AsyncRead for Tamper {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl futures::AsyncWrite for Tamper {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.len() < 3 || !self.armed.load(Ordering::SeqCst) {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        let mut bad = buf.to_vec();
        bad[2] ^= 0x01;
        let written = Pin::new(&mut self.inner).poll_write(cx, &bad);
        if matches!(written, Poll::Ready(Ok(n)) if n > 2) {
            self.armed.store(false, Ordering::SeqCst);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl lp2p_core::Connection for Tamper {
    fn local_addr(&self) -> Multiaddr {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Multiaddr {
        self.inner.remote_addr()
    }
}

/// A noise connection under a throwaway identity whose next message after the handshake is
/// corrupted once the returned flag is set.
pub async fn secured_tamperable(
    addr: &Multiaddr,
) -> io::Result<(SecureConnection, Arc<AtomicBool>)> {
    let mut tcp = connect(addr).await?;
    select(&mut tcp, "/noise").await?;
    let armed = Arc::new(AtomicBool::new(false));
    let tamper = Tamper {
        inner: tcp,
        armed: armed.clone(),
    };
    let ctx = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
    let conn = lp2p_noise::Noise::new()
        .secure_outbound(Box::new(tamper), &ctx, None)
        .await
        .map_err(io::Error::other)?;
    Ok((conn, armed))
}

/// A secured connection on which the muxer `protocol` was agreed: its raw frames follow.
pub async fn muxed(addr: &Multiaddr, protocol: &str) -> io::Result<SecureConnection> {
    let mut conn = secured(addr).await?;
    select(&mut conn, protocol).await?;
    Ok(conn)
}

/// A secured connection on which yamux was agreed: raw yamux frames follow.
pub async fn yamux(addr: &Multiaddr) -> io::Result<SecureConnection> {
    muxed(addr, "/yamux/1.0.0").await
}

/// mplex frames: a varint header (stream number << 3 | flag), a varint length, the body.
pub mod mplex_frame {
    use lp2p_core::varint;

    /// Opens a stream (the body may name it).
    pub const NEW_STREAM: u8 = 0;
    /// Data on a stream we opened.
    pub const MESSAGE_INITIATOR: u8 = 2;
    /// Resets a stream we opened.
    pub const RESET_INITIATOR: u8 = 6;

    /// Appends one frame to `out`.
    pub fn frame(stream: u64, flag: u8, body: &[u8], out: &mut Vec<u8>) {
        varint::encode_into(stream << 3 | u64::from(flag), out);
        varint::encode_into(body.len() as u64, out);
        out.extend_from_slice(body);
    }
}

/// Yamux frame types.
pub mod frame {
    /// Data.
    pub const DATA: u8 = 0;
    /// Window update.
    pub const WINDOW_UPDATE: u8 = 1;
    /// Ping.
    pub const PING: u8 = 2;
    /// Go away.
    pub const GO_AWAY: u8 = 3;
    /// Flag: open a stream.
    pub const SYN: u16 = 0x1;
    /// Flag: acknowledge (a stream, or a ping's answer).
    pub const ACK: u16 = 0x2;
    /// Flag: half-close.
    pub const FIN: u16 = 0x4;
    /// Flag: reset.
    pub const RST: u16 = 0x8;

    /// A decoded yamux header.
    #[derive(Clone, Copy, Debug)]
    pub struct Header {
        /// The frame type.
        pub kind: u8,
        /// The flags.
        pub flags: u16,
        /// The stream id (0 for the session).
        pub stream: u32,
        /// The length: body bytes of a Data frame, the credit of a window update, the
        /// opaque value of a ping.
        pub length: u32,
    }

    /// Decodes the 12 bytes of a yamux header.
    pub fn parse(h: &[u8; 12]) -> Header {
        Header {
            kind: h[1],
            flags: u16::from_be_bytes([h[2], h[3]]),
            stream: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            length: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        }
    }

    /// A yamux header.
    pub fn header(kind: u8, flags: u16, stream: u32, length: u32) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[1] = kind;
        h[2..4].copy_from_slice(&flags.to_be_bytes());
        h[4..8].copy_from_slice(&stream.to_be_bytes());
        h[8..12].copy_from_slice(&length.to_be_bytes());
        h
    }
}

/// Reads and discards until the remote closes `io` (end of file or an error), for at most
/// `within`: how long that took, or `None` if it was still open.
pub async fn closed_within<S>(io: &mut S, within: Duration) -> Option<Duration>
where
    S: futures::AsyncRead + Unpin,
{
    read_until_closed(io, within).await.0
}

/// [`closed_within`], also counting the bytes the remote sent meanwhile.
pub async fn read_until_closed<S>(io: &mut S, within: Duration) -> (Option<Duration>, u64)
where
    S: futures::AsyncRead + Unpin,
{
    let start = Instant::now();
    let mut received = 0u64;
    let drain = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n as u64,
            }
        }
    };
    let closed = async_std::future::timeout(within, drain)
        .await
        .ok()
        .map(|()| start.elapsed());
    (closed, received)
}

/// A stream of a [`StalledClient`]: what it may still send, whether its FIN went out, and
/// whether the remote ended it.
#[derive(Debug, Default)]
struct StreamState {
    credit: u64,
    sent: u64,
    fin_sent: bool,
    ended: bool,
}

/// Shared between the reader and the writer of a [`StalledClient`].
#[derive(Debug, Default)]
struct Streams {
    streams: HashMap<u32, StreamState>,
    closed: bool,
    received: u64,
    /// Frames to send before more data: pong answers, and the acceptance of streams the
    /// remote opened.
    control: Vec<u8>,
    /// Streams the remote opened whose multistream proposal is not answered yet: what
    /// arrived on them so far.
    proposals: HashMap<u32, Vec<u8>>,
}

/// The multistream header and the first message after it, if `buf` holds both.
fn header_and_proposal(buf: &[u8]) -> Option<&[u8]> {
    let rest = buf.strip_prefix(MULTISTREAM_HEADER)?;
    let (len, body) = varint::decode_prefix(rest).ok()?;
    let len = usize::try_from(len).ok()?;
    (body.len() >= len).then(|| &buf[..buf.len() - body.len() + len])
}

/// The yamux client of the stream attacks: it opens streams to a protocol, writes the same
/// payload on each as far as the remote's window allows (then, if asked, a FIN), reads the
/// socket (so the connection stays healthy: pings are answered, and a stream the remote
/// opens is accepted and its protocol agreed, as a pubsub peer's must be) but never grants a
/// byte of receive window: every stream's reader looks stalled to the remote.
pub struct StalledClient {
    state: Arc<Mutex<Streams>>,
    reader: async_std::task::JoinHandle<()>,
    writer: async_std::task::JoinHandle<io::Result<()>>,
}

impl StalledClient {
    /// Opens `streams` streams on a new connection to `addr`, each selecting `protocol`
    /// (lazily: the proposal leads the data) and sending `payload`, then a FIN when `fin`.
    /// An empty `protocol` sends the multistream header alone: a stream that never
    /// proposes anything.
    pub async fn start(
        addr: &Multiaddr,
        protocol: &str,
        streams: u32,
        payload: Arc<Vec<u8>>,
        fin: bool,
    ) -> io::Result<StalledClient> {
        let conn = yamux(addr).await?;
        let (read, write) = conn.split();
        let state = Arc::new(Mutex::new(Streams::default()));
        let reader = async_std::task::spawn(read_frames(read, state.clone()));
        let writer = async_std::task::spawn(write_streams(
            write,
            state.clone(),
            protocol.to_owned(),
            streams,
            payload,
            fin,
        ));
        Ok(StalledClient {
            state,
            reader,
            writer,
        })
    }

    /// Bytes sent on all streams so far, and streams the remote reset or closed.
    pub fn progress(&self) -> (u64, usize) {
        let state = lock(&self.state);
        let sent = state.streams.values().map(|s| s.sent).sum();
        let ended = state.streams.values().filter(|s| s.ended).count();
        (sent, ended)
    }

    /// Payload bytes received from the remote on all streams (read and dropped).
    pub fn received(&self) -> u64 {
        lock(&self.state).received
    }

    /// Whether the remote closed the connection.
    pub fn closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Stops writing and reading and drops the connection.
    pub async fn stop(self) {
        self.writer.cancel().await;
        self.reader.cancel().await;
    }
}

fn lock(state: &Mutex<Streams>) -> std::sync::MutexGuard<'_, Streams> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_frames(mut read: ReadHalf<SecureConnection>, state: Arc<Mutex<Streams>>) {
    let mut header = [0u8; 12];
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        if read.read_exact(&mut header).await.is_err() {
            break;
        }
        let frame::Header {
            kind,
            flags,
            stream,
            length,
        } = frame::parse(&header);
        // A stream the remote opens (even ids: we are the client) is accepted.
        let remote_stream = stream != 0 && stream % 2 == 0;
        if remote_stream && flags & frame::SYN != 0 {
            let mut st = lock(&state);
            st.control.extend_from_slice(&frame::header(
                frame::WINDOW_UPDATE,
                frame::ACK,
                stream,
                0,
            ));
            st.proposals.insert(stream, Vec::new());
        }
        if kind == frame::DATA {
            let mut left = length as usize;
            while left > 0 {
                let n = left.min(scratch.len());
                if read.read_exact(&mut scratch[..n]).await.is_err() {
                    lock(&state).closed = true;
                    return;
                }
                let mut st = lock(&state);
                if let Some(buf) = st.proposals.get_mut(&stream) {
                    buf.extend_from_slice(&scratch[..n]);
                    // Agree to what it proposed: echo the header and the proposal.
                    if let Some(answer) = header_and_proposal(buf).map(<[u8]>::to_vec) {
                        st.proposals.remove(&stream);
                        st.control.extend_from_slice(&frame::header(
                            frame::DATA,
                            0,
                            stream,
                            answer.len() as u32,
                        ));
                        st.control.extend_from_slice(&answer);
                    }
                }
                left -= n;
            }
            lock(&state).received += u64::from(length);
        }
        let mut st = lock(&state);
        if kind == frame::PING && flags & frame::SYN != 0 {
            st.control
                .extend_from_slice(&frame::header(frame::PING, frame::ACK, 0, length));
        }
        if kind == frame::GO_AWAY {
            break;
        }
        if let Some(s) = st.streams.get_mut(&stream) {
            if kind == frame::WINDOW_UPDATE {
                s.credit = s.credit.saturating_add(u64::from(length));
            }
            if flags & (frame::RST | frame::FIN) != 0 {
                s.ended = true;
            }
        }
    }
    lock(&state).closed = true;
}

/// The yamux initial window: what may be sent on a new stream before any update.
const INITIAL_WINDOW: u64 = 256 * 1024;

async fn write_streams(
    mut write: WriteHalf<SecureConnection>,
    state: Arc<Mutex<Streams>>,
    protocol: String,
    streams: u32,
    payload: Arc<Vec<u8>>,
    fin: bool,
) -> io::Result<()> {
    let total = payload.len() as u64;
    // Open every stream with its proposal.
    let mut proposal = MULTISTREAM_HEADER.to_vec();
    if !protocol.is_empty() {
        proposal.extend_from_slice(&multistream_message(&protocol));
    }
    let mut out = Vec::new();
    for i in 0..streams {
        let id = 1 + 2 * i;
        out.extend_from_slice(&frame::header(
            frame::DATA,
            frame::SYN,
            id,
            proposal.len() as u32,
        ));
        out.extend_from_slice(&proposal);
        lock(&state).streams.insert(
            id,
            StreamState {
                credit: INITIAL_WINDOW - proposal.len() as u64,
                ..StreamState::default()
            },
        );
        if out.len() > 64 * 1024 {
            write.write_all(&out).await?;
            write.flush().await?;
            out.clear();
        }
    }
    write.write_all(&out).await?;
    write.flush().await?;
    // Then data, as far as each window allows, answering pings on the way.
    const CHUNK: u64 = 16 * 1024;
    loop {
        let mut out = Vec::new();
        {
            let mut st = lock(&state);
            if st.closed {
                return Ok(());
            }
            out.append(&mut st.control);
            for (id, s) in st.streams.iter_mut() {
                if s.ended || s.fin_sent {
                    continue;
                }
                if s.sent >= total {
                    if fin {
                        out.extend_from_slice(&frame::header(frame::DATA, frame::FIN, *id, 0));
                        s.fin_sent = true;
                    }
                    continue;
                }
                let n = s.credit.min(total - s.sent).min(CHUNK);
                if n == 0 {
                    continue;
                }
                let from = s.sent as usize;
                out.extend_from_slice(&frame::header(frame::DATA, 0, *id, n as u32));
                out.extend_from_slice(&payload[from..from + n as usize]);
                s.credit -= n;
                s.sent += n;
                if out.len() > 256 * 1024 {
                    break;
                }
            }
        }
        if out.is_empty() {
            async_std::task::sleep(Duration::from_millis(20)).await;
        } else {
            write.write_all(&out).await?;
            write.flush().await?;
            // The halves share one lock, taken per poll: a writer that always has more to
            // send would keep the reader from ever reading (and the remote's pings and
            // resets unseen). A pause per batch lets it in.
            async_std::task::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Protobuf encoding by hand, for messages no honest encoder would produce.
pub mod pb {
    use lp2p_core::varint;

    /// A length-delimited field (bytes, string, embedded message).
    pub fn bytes(tag: u32, data: &[u8], out: &mut Vec<u8>) {
        varint::encode_into(u64::from(tag << 3 | 2), out);
        varint::encode_into(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    /// A varint field.
    pub fn uint(tag: u32, value: u64, out: &mut Vec<u8>) {
        varint::encode_into(u64::from(tag << 3), out);
        varint::encode_into(value, out);
    }

    /// `message` with its unsigned-varint length prefix, as libp2p protocols frame them.
    pub fn framed(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 5);
        varint::encode_into(message.len() as u64, &mut out);
        out.extend_from_slice(message);
        out
    }
}
