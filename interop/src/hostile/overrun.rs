//! A yamux peer that sends one byte more than the receive window its target granted.
//!
//! The window is measured, not assumed: the attacker fills the initial window of an
//! `/echo/1.0.0` stream, reads until the target has gone quiet (the echo stalls once the
//! attacker's own window is spent, since the attacker never grants any), sums the credit
//! the target granted for the stream, and only then sends that credit plus one byte in one
//! frame. A target that counts its window right sees a frame over it.

use std::io;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::SecureConnection;

use super::{INITIAL_WINDOW, MULTISTREAM_HEADER, frame, multistream_message};

/// The attacker's stream (odd: the dialer's).
const STREAM: u32 = 1;

/// How long the target must stay silent before its window is taken as final.
const QUIET: Duration = Duration::from_millis(500);

/// What [`overrun_window`] did.
#[derive(Clone, Copy, Debug)]
pub struct Overrun {
    /// Credit the target granted after the initial window was filled.
    pub granted: u32,
    /// Length of the frame sent past the window (`granted + 1`).
    pub sent: u32,
}

/// Opens stream 1 of the yamux connection `conn` to `/echo/1.0.0`, fills its window, and
/// sends one byte more than the target then allows. Fails if the target resets the stream
/// or ends the connection before the overrun was started.
pub async fn overrun_window(conn: &mut SecureConnection) -> io::Result<Overrun> {
    let window = u32::try_from(INITIAL_WINDOW).map_err(io::Error::other)?;
    let mut body = MULTISTREAM_HEADER.to_vec();
    body.extend(multistream_message("/echo/1.0.0"));
    body.resize(INITIAL_WINDOW as usize, 0x5a);
    let mut out = frame::header(frame::DATA, frame::SYN, STREAM, window).to_vec();
    out.extend(body);
    conn.write_all(&out).await?;
    conn.flush().await?;

    let granted = granted_credit(conn).await?;
    let sent = granted
        .checked_add(1)
        .ok_or_else(|| io::Error::other("the target granted a 4 GiB window"))?;
    let mut out = frame::header(frame::DATA, 0, STREAM, sent).to_vec();
    out.resize(out.len() + sent as usize, 0x5a);
    // A target that checks the window closes the connection on the frame's header, while the
    // rest of its body is still being written: that write fails, and the caller sees the
    // connection closed.
    let _ = conn.write_all(&out).await;
    let _ = conn.flush().await;
    Ok(Overrun { granted, sent })
}

/// Reads frames until none has come for [`QUIET`]: the window credit granted for
/// [`STREAM`]. Pings are answered so the connection stays healthy; data is discarded.
async fn granted_credit(conn: &mut SecureConnection) -> io::Result<u32> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut credit: u32 = 0;
    loop {
        // `read` either takes bytes or not, so a timeout never loses part of a frame.
        let n = match async_std::future::timeout(QUIET, conn.read(&mut chunk)).await {
            Err(_) => return Ok(credit),
            Ok(read) => read?,
        };
        if n == 0 {
            return Err(io::Error::other("the target closed the connection first"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut pongs = Vec::new();
        let mut at = 0;
        while let Some(header) = buf
            .get(at..at + 12)
            .and_then(|h| <&[u8; 12]>::try_from(h).ok())
        {
            let frame::Header {
                kind,
                flags,
                stream,
                length,
            } = frame::parse(header);
            let body = if kind == frame::DATA {
                length as usize
            } else {
                0
            };
            if buf.len() < at + 12 + body {
                break;
            }
            at += 12 + body;
            if stream == STREAM && flags & frame::RST != 0 {
                return Err(io::Error::other("the target reset the stream"));
            }
            match kind {
                frame::WINDOW_UPDATE if stream == STREAM => {
                    credit = credit.saturating_add(length);
                }
                frame::PING if flags & frame::SYN != 0 => {
                    pongs.extend_from_slice(&frame::header(frame::PING, frame::ACK, 0, length));
                }
                frame::GO_AWAY => {
                    return Err(io::Error::other("the target sent GoAway"));
                }
                _ => {}
            }
        }
        buf.drain(..at);
        if !pongs.is_empty() {
            conn.write_all(&pongs).await?;
            conn.flush().await?;
        }
    }
}
