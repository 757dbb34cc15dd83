//! The sans-IO WebSocket connection after the handshake: bytes from the remote go in and
//! come out as the payload of binary messages; data to send goes in and comes out as
//! frames. Pings are answered, close frames are answered and end the stream, every rule of
//! RFC 6455 section 5 that a byte stream depends on is checked. No socket, no task, no
//! clock.

use crate::WsError;
use crate::close_code;
use crate::config::Limits;
use crate::frame::{Header, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, apply_mask};

/// Which end of the connection we are: a client masks what it sends and expects unmasked
/// frames, a server the opposite (RFC 6455 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The end that sent the upgrade request.
    Client,
    /// The end that accepted it.
    Server,
}

/// What the remote said when it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The status code, `None` when the close frame had no body.
    pub code: Option<u16>,
    /// The reason text.
    pub reason: String,
}

/// The body of a close frame we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseBody {
    /// A status code.
    Code(u16),
    /// No body (answering a close frame that had none).
    Empty,
}

/// What [`Session::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    /// Bytes of `input` used.
    pub consumed: usize,
    /// Payload bytes written to `out`.
    pub produced: usize,
}

#[derive(Debug)]
enum Rx {
    /// Between frames: collecting a header.
    Header,
    /// Inside the payload of a data frame.
    Data {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: u64,
    },
    /// Inside the payload of a control frame.
    Control {
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        len: usize,
        filled: usize,
    },
    /// After the remote's close frame (or a protocol error): nothing more is read.
    Done,
}

/// The state of one WebSocket connection, either side, after the opening handshake.
#[derive(Debug)]
pub struct Session {
    side: Side,
    limits: Limits,
    rx: Rx,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    control: [u8; MAX_CONTROL_PAYLOAD],
    /// A data message has started (binary, not yet FIN).
    in_message: bool,
    /// Payload bytes of the current message so far.
    message_len: u64,
    remote_close: Option<CloseInfo>,
    /// The latest ping's payload, to answer (older ones are superseded, RFC 6455 5.5.3).
    pending_pong: Option<([u8; MAX_CONTROL_PAYLOAD], usize)>,
    /// A close frame to send.
    pending_close: Option<CloseBody>,
    close_sent: bool,
    /// A violation found after payload bytes were produced in the same call: those bytes
    /// are returned first, the error on the next call.
    deferred: Option<WsError>,
    /// A violation ended reading: every later read fails.
    failed: bool,
}

impl Session {
    /// A session for `side` under `limits`.
    pub fn new(side: Side, limits: Limits) -> Session {
        Session {
            side,
            limits,
            rx: Rx::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            control: [0; MAX_CONTROL_PAYLOAD],
            in_message: false,
            message_len: 0,
            remote_close: None,
            pending_pong: None,
            pending_close: None,
            close_sent: false,
            deferred: None,
            failed: false,
        }
    }

    /// Our side.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Reads frames from `input` and writes the payload of binary messages to `out`, until
    /// `input` is used up, `out` is full, or the remote closed. Control frames are handled
    /// inside (see [`poll_transmit`](Session::poll_transmit) for the answers).
    ///
    /// On a violation the session stops reading, queues a close frame with the matching
    /// status code, and returns the error.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<Decoded, WsError> {
        if let Some(err) = self.deferred.take() {
            return Err(err);
        }
        if self.failed {
            return Err(WsError::Protocol("reading after the connection failed"));
        }
        let mut done = Decoded::default();
        loop {
            let rest = input.get(done.consumed..).unwrap_or_default();
            match &mut self.rx {
                Rx::Done => {
                    // Whatever follows the close frame is not ours to read.
                    done.consumed = input.len();
                    return Ok(done);
                }
                Rx::Header => {
                    if rest.is_empty() {
                        return Ok(done);
                    }
                    match self.take_header(rest) {
                        Ok(used) => done.consumed += used,
                        Err(err) => return self.fail_after(err, done),
                    }
                }
                Rx::Data {
                    remaining,
                    mask,
                    offset,
                } => {
                    let room = out.len().saturating_sub(done.produced);
                    let n = rest.len().min(room).min(clamp(*remaining));
                    if n == 0 && *remaining > 0 {
                        return Ok(done);
                    }
                    let (Some(src), Some(dst)) =
                        (rest.get(..n), out.get_mut(done.produced..done.produced + n))
                    else {
                        return Ok(done);
                    };
                    dst.copy_from_slice(src);
                    if let Some(key) = mask {
                        apply_mask(*key, *offset, dst);
                    }
                    *remaining -= n as u64;
                    *offset += n as u64;
                    done.consumed += n;
                    done.produced += n;
                    if *remaining == 0 {
                        self.rx = Rx::Header;
                    }
                }
                Rx::Control {
                    opcode,
                    mask,
                    len,
                    filled,
                } => {
                    let n = rest.len().min(*len - *filled);
                    if let (Some(src), Some(dst)) =
                        (rest.get(..n), self.control.get_mut(*filled..*filled + n))
                    {
                        dst.copy_from_slice(src);
                    }
                    *filled += n;
                    done.consumed += n;
                    if *filled < *len {
                        return Ok(done);
                    }
                    let (opcode, mask, len) = (*opcode, *mask, *len);
                    self.rx = Rx::Header;
                    if let Err(err) = self.on_control(opcode, mask, len) {
                        return self.fail_after(err, done);
                    }
                    if matches!(self.rx, Rx::Done) {
                        done.consumed = input.len();
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// Payload bytes left in the data frame being read, when the session is inside one: the
    /// shell may then read up to that many bytes straight into the caller's buffer and call
    /// [`unmask_in_place`](Session::unmask_in_place), saving a copy.
    pub fn data_remaining(&self) -> Option<u64> {
        match self.rx {
            Rx::Data { remaining, .. } if remaining > 0 => Some(remaining),
            _ => None,
        }
    }

    /// Accounts for `data`, payload bytes of the current data frame that the shell read
    /// directly, and unmasks them in place. `data` must not be longer than
    /// [`data_remaining`](Session::data_remaining); extra bytes are left untouched.
    pub fn unmask_in_place(&mut self, data: &mut [u8]) -> usize {
        let Rx::Data {
            remaining,
            mask,
            offset,
        } = &mut self.rx
        else {
            return 0;
        };
        let n = data.len().min(clamp(*remaining));
        if let (Some(key), Some(part)) = (mask, data.get_mut(..n)) {
            apply_mask(*key, *offset, part);
        }
        *remaining -= n as u64;
        *offset += n as u64;
        if *remaining == 0 {
            self.rx = Rx::Header;
        }
        n
    }

    /// Whether the session is between frames (a connection that ends here ended cleanly).
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.rx, Rx::Header | Rx::Done) && self.header_len == 0
    }

    /// The remote's close frame, once it arrived: reading is over.
    pub fn remote_close(&self) -> Option<&CloseInfo> {
        self.remote_close.as_ref()
    }

    /// Whether we sent (or queued) our close frame: writing is over.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Appends one binary frame carrying the first bytes of `data` (at most
    /// [`Limits::max_write_frame`]) to `out`, masked when we are the client. Returns how many
    /// bytes of `data` it carries.
    pub fn encode_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WsError> {
        if self.close_sent {
            return Err(WsError::Closed);
        }
        let n = data.len().min(self.limits.max_write_frame.max(1));
        let payload = data.get(..n).unwrap_or_default();
        self.push_frame(OpCode::Binary, payload, out);
        Ok(n)
    }

    /// Queues our close frame with `code` (normal closure for a graceful close), unless one
    /// was already queued or sent.
    pub fn close(&mut self, code: u16) {
        if !self.close_sent && self.pending_close.is_none() {
            self.pending_close = Some(CloseBody::Code(code));
        }
    }

    /// Appends the control frames waiting to be sent (a pong, a close) to `out`; whether
    /// there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        let mut any = false;
        if let Some((payload, len)) = self.pending_pong.take()
            && !self.close_sent
        {
            self.push_frame(OpCode::Pong, payload.get(..len).unwrap_or_default(), out);
            any = true;
        }
        if let Some(body) = self.pending_close.take()
            && !self.close_sent
        {
            match body {
                CloseBody::Code(code) => self.push_frame(OpCode::Close, &code.to_be_bytes(), out),
                CloseBody::Empty => self.push_frame(OpCode::Close, &[], out),
            }
            self.close_sent = true;
            any = true;
        }
        any
    }

    fn push_frame(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
        let mask = match self.side {
            Side::Client => Some(rand::random::<[u8; 4]>()),
            Side::Server => None,
        };
        let header = Header {
            fin: true,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.emit(&mut head);
        out.reserve(head_len + payload.len());
        out.extend_from_slice(head.get(..head_len).unwrap_or_default());
        let start = out.len();
        out.extend_from_slice(payload);
        if let (Some(key), Some(body)) = (mask, out.get_mut(start..)) {
            apply_mask(key, 0, body);
        }
    }

    /// Collects header bytes from `input`; on a complete header, checks it and enters the
    /// payload state. Returns the bytes of `input` used.
    fn take_header(&mut self, input: &[u8]) -> Result<usize, WsError> {
        // Fast path: a whole header at the start of `input` and nothing buffered.
        if self.header_len == 0
            && let Some((header, len)) = Header::parse(input)?
        {
            self.on_header(header)?;
            return Ok(len);
        }
        let before = self.header_len;
        let take = (MAX_HEADER_LEN - before).min(input.len());
        if let (Some(dst), Some(src)) = (
            self.header.get_mut(before..before + take),
            input.get(..take),
        ) {
            dst.copy_from_slice(src);
        }
        self.header_len = before + take;
        match Header::parse(self.header.get(..self.header_len).unwrap_or_default())? {
            None => Ok(take),
            Some((header, len)) => {
                self.header_len = 0;
                self.on_header(header)?;
                // Only the bytes that belong to this header were used.
                Ok(len.saturating_sub(before))
            }
        }
    }

    fn on_header(&mut self, header: Header) -> Result<(), WsError> {
        match (self.side, header.mask.is_some()) {
            (Side::Server, false) => return Err(WsError::Protocol("unmasked frame from a client")),
            (Side::Client, true) => return Err(WsError::Protocol("masked frame from a server")),
            _ => {}
        }
        match header.opcode {
            OpCode::Text => return Err(WsError::TextFrame),
            OpCode::Binary if self.in_message => {
                return Err(WsError::Protocol(
                    "new data frame while a fragmented message is unfinished",
                ));
            }
            OpCode::Continuation if !self.in_message => {
                return Err(WsError::Protocol("continuation frame without a message"));
            }
            OpCode::Binary | OpCode::Continuation => {
                if header.len > self.limits.max_frame_len {
                    return Err(WsError::FrameTooLarge {
                        len: header.len,
                        max: self.limits.max_frame_len,
                    });
                }
                let so_far = if header.opcode == OpCode::Binary {
                    0
                } else {
                    self.message_len
                };
                let total = so_far.saturating_add(header.len);
                if total > self.limits.max_message_len {
                    return Err(WsError::MessageTooLarge {
                        len: total,
                        max: self.limits.max_message_len,
                    });
                }
                self.message_len = if header.fin { 0 } else { total };
                self.in_message = !header.fin;
                self.rx = if header.len == 0 {
                    Rx::Header
                } else {
                    Rx::Data {
                        remaining: header.len,
                        mask: header.mask,
                        offset: 0,
                    }
                };
                return Ok(());
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        // A control frame: at most 125 bytes, checked by the header parser.
        let len = usize::try_from(header.len).unwrap_or(MAX_CONTROL_PAYLOAD);
        self.rx = Rx::Control {
            opcode: header.opcode,
            mask: header.mask,
            len,
            filled: 0,
        };
        if len == 0 {
            self.rx = Rx::Header;
            self.on_control(header.opcode, header.mask, 0)?;
        }
        Ok(())
    }

    fn on_control(
        &mut self,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        len: usize,
    ) -> Result<(), WsError> {
        let payload = self.control.get_mut(..len).unwrap_or_default();
        if let Some(key) = mask {
            apply_mask(key, 0, payload);
        }
        match opcode {
            OpCode::Ping => {
                let mut copy = [0u8; MAX_CONTROL_PAYLOAD];
                if let Some(dst) = copy.get_mut(..len) {
                    dst.copy_from_slice(payload);
                }
                self.pending_pong = Some((copy, len));
            }
            OpCode::Close => {
                let info = parse_close(payload)?;
                tracing::debug!(code = ?info.code, reason = %info.reason, "WebSocket close frame received");
                // Answer with the same code (RFC 6455 section 5.5.1), or an empty body.
                if !self.close_sent && self.pending_close.is_none() {
                    self.pending_close = Some(info.code.map_or(CloseBody::Empty, CloseBody::Code));
                }
                self.remote_close = Some(info);
                self.rx = Rx::Done;
            }
            // Unsolicited pongs are allowed and ignored.
            _ => {}
        }
        Ok(())
    }

    /// Stops reading after a violation and queues the matching close frame. Payload
    /// already produced in this call is returned first and the error kept for the next.
    fn fail_after(&mut self, err: WsError, done: Decoded) -> Result<Decoded, WsError> {
        self.rx = Rx::Done;
        self.failed = true;
        self.close(err.close_code());
        if done.produced > 0 {
            self.deferred = Some(err);
            Ok(Decoded {
                consumed: done.consumed,
                produced: done.produced,
            })
        } else {
            Err(err)
        }
    }
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Checks a close frame's body (RFC 6455 section 5.5.1 and 7.4).
fn parse_close(payload: &[u8]) -> Result<CloseInfo, WsError> {
    match payload {
        [] => Ok(CloseInfo {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(WsError::BadClose("a one-byte body")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            // 1000-1003, 1007-1011 (and 1012-1014 registered since) are defined; 3000-4999
            // are for libraries and applications. 1004-1006 and 1015 must not be sent.
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(WsError::BadClose("a status code that must not be sent"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| WsError::BadClose("a reason that is not UTF-8"))?;
            Ok(CloseInfo {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

/// The close code for a graceful close.
pub const NORMAL_CLOSE: u16 = close_code::NORMAL;

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn frame(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            fin,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut head);
        let mut out = head[..n].to_vec();
        let mut body = payload.to_vec();
        if let Some(k) = mask {
            apply_mask(k, 0, &mut body);
        }
        out.extend(body);
        out
    }

    const K: Option<[u8; 4]> = Some([7, 1, 200, 3]);

    fn decode_all(s: &mut Session, input: &[u8]) -> Result<Vec<u8>, WsError> {
        let mut out = vec![0u8; 1 << 16];
        let mut got = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let d = s.decode(&input[at..], &mut out)?;
            got.extend_from_slice(&out[..d.produced]);
            at += d.consumed;
            if d.consumed == 0 && d.produced == 0 {
                break;
            }
        }
        Ok(got)
    }

    #[test]
    fn client_and_server_exchange_data() {
        let mut client = Session::new(Side::Client, limits());
        let mut server = Session::new(Side::Server, limits());
        let mut wire = Vec::new();
        assert_eq!(client.encode_data(b"hello ", &mut wire).unwrap(), 6);
        assert_eq!(client.encode_data(b"world", &mut wire).unwrap(), 5);
        // Masked on the wire.
        assert!(!wire.windows(5).any(|w| w == b"hello"));
        assert_eq!(decode_all(&mut server, &wire).unwrap(), b"hello world");

        let mut back = Vec::new();
        server.encode_data(b"ok", &mut back).unwrap();
        assert_eq!(back, [0x82, 0x02, b'o', b'k']);
        assert_eq!(decode_all(&mut client, &back).unwrap(), b"ok");
    }

    #[test]
    fn byte_at_a_time_and_small_output() {
        let mut server = Session::new(Side::Server, limits());
        let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let mut wire = frame(OpCode::Binary, false, K, &payload[..300]);
        wire.extend(frame(OpCode::Ping, true, K, b"p"));
        wire.extend(frame(OpCode::Continuation, true, K, &payload[300..]));
        let mut got = Vec::new();
        let mut out = [0u8; 7];
        for chunk in wire.chunks(3) {
            let mut at = 0;
            while at < chunk.len() {
                let d = server.decode(&chunk[at..], &mut out).unwrap();
                got.extend_from_slice(&out[..d.produced]);
                at += d.consumed;
            }
        }
        assert_eq!(got, payload);
        assert!(server.at_frame_boundary());
        let mut tx = Vec::new();
        assert!(server.poll_transmit(&mut tx));
        assert_eq!(tx, [0x8A, 0x01, b'p']);
    }

    #[test]
    fn in_place_reads() {
        let mut server = Session::new(Side::Server, limits());
        let wire = frame(OpCode::Binary, true, K, b"abcdefgh");
        // The shell read the header through decode and the payload directly.
        let d = server.decode(&wire[..6], &mut []).unwrap();
        assert_eq!(
            d,
            Decoded {
                consumed: 6,
                produced: 0
            }
        );
        assert_eq!(server.data_remaining(), Some(8));
        let mut direct = wire[6..9].to_vec();
        assert_eq!(server.unmask_in_place(&mut direct), 3);
        assert_eq!(direct, b"abc");
        let mut rest = wire[9..].to_vec();
        assert_eq!(server.unmask_in_place(&mut rest), 5);
        assert_eq!(rest, b"defgh");
        assert_eq!(server.data_remaining(), None);
    }

    #[test]
    fn ping_is_answered_with_the_latest_payload() {
        let mut client = Session::new(Side::Client, limits());
        let mut wire = frame(OpCode::Ping, true, None, b"one");
        wire.extend(frame(OpCode::Ping, true, None, b"two"));
        wire.extend(frame(OpCode::Pong, true, None, b"unsolicited"));
        assert!(decode_all(&mut client, &wire).unwrap().is_empty());
        let mut tx = Vec::new();
        assert!(client.poll_transmit(&mut tx));
        let (h, n) = Header::parse(&tx).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Pong);
        let mut body = tx[n..].to_vec();
        apply_mask(h.mask.unwrap(), 0, &mut body);
        assert_eq!(body, b"two");
        assert!(!client.poll_transmit(&mut tx));
    }

    #[test]
    fn close_is_answered_and_ends_reading() {
        let mut server = Session::new(Side::Server, limits());
        let mut wire = frame(OpCode::Binary, true, K, b"last");
        let mut body = 1000u16.to_be_bytes().to_vec();
        body.extend(b"bye");
        wire.extend(frame(OpCode::Close, true, K, &body));
        wire.extend(frame(OpCode::Binary, true, K, b"ignored"));
        assert_eq!(decode_all(&mut server, &wire).unwrap(), b"last");
        assert_eq!(
            server.remote_close(),
            Some(&CloseInfo {
                code: Some(1000),
                reason: "bye".into()
            })
        );
        let mut tx = Vec::new();
        assert!(server.poll_transmit(&mut tx));
        assert_eq!(tx, [0x88, 0x02, 0x03, 0xE8]);
        assert!(server.close_sent());
        assert!(matches!(
            server.encode_data(b"x", &mut tx),
            Err(WsError::Closed)
        ));
    }

    #[test]
    fn our_close_is_sent_once() {
        let mut client = Session::new(Side::Client, limits());
        client.close(NORMAL_CLOSE);
        client.close(1002);
        let mut tx = Vec::new();
        assert!(client.poll_transmit(&mut tx));
        assert!(!client.poll_transmit(&mut tx));
        let (h, n) = Header::parse(&tx).unwrap().unwrap();
        let mut body = tx[n..].to_vec();
        apply_mask(h.mask.unwrap(), 0, &mut body);
        assert_eq!((h.opcode, body), (OpCode::Close, vec![0x03, 0xE8]));
    }

    fn expect_error(side: Side, limits: Limits, wire: &[u8], expected: &str, code: u16) {
        let mut s = Session::new(side, limits);
        let err = decode_all(&mut s, wire).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{err} (expected {expected})"
        );
        let mut tx = Vec::new();
        assert!(s.poll_transmit(&mut tx));
        let (h, n) = Header::parse(&tx).unwrap().unwrap();
        let mut body = tx[n..].to_vec();
        if let Some(k) = h.mask {
            apply_mask(k, 0, &mut body);
        }
        assert_eq!(h.opcode, OpCode::Close);
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), code, "{expected}");
        // Nothing more is read after a violation.
        assert!(
            s.decode(&frame(OpCode::Binary, true, K, b"x"), &mut [0; 8])
                .is_err()
        );
    }

    #[test]
    fn violations_are_named_and_closed_with_the_right_code() {
        let l = limits();
        let server = Side::Server;
        expect_error(
            server,
            l,
            &frame(OpCode::Text, true, K, b"hi"),
            "text frame",
            1003,
        );
        expect_error(
            server,
            l,
            &frame(OpCode::Binary, true, None, b"hi"),
            "unmasked",
            1002,
        );
        expect_error(
            Side::Client,
            l,
            &frame(OpCode::Binary, true, K, b"hi"),
            "masked frame from a server",
            1002,
        );
        expect_error(
            server,
            l,
            &frame(OpCode::Continuation, true, K, b"hi"),
            "continuation frame without",
            1002,
        );
        let mut two = frame(OpCode::Binary, false, K, b"a");
        two.extend(frame(OpCode::Binary, true, K, b"b"));
        expect_error(server, l, &two, "unfinished", 1002);
        expect_error(
            server,
            l,
            &frame(OpCode::Close, true, K, &[3]),
            "one-byte",
            1002,
        );
        expect_error(
            server,
            l,
            &frame(OpCode::Close, true, K, &[0x03, 0xED]),
            "must not be sent",
            1002,
        );
        expect_error(
            server,
            l,
            &frame(OpCode::Close, true, K, &[0x03, 0xE8, 0xFF]),
            "UTF-8",
            1002,
        );
        expect_error(
            server,
            l,
            &[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],
            "top bit",
            1002,
        );

        let small = Limits {
            max_frame_len: 10,
            max_message_len: 15,
            ..Limits::default()
        };
        expect_error(
            server,
            small,
            &frame(OpCode::Binary, true, K, &[0; 11]),
            "frame of 11 bytes",
            1009,
        );
        let mut fragments = frame(OpCode::Binary, false, K, &[0; 10]);
        fragments.extend(frame(OpCode::Continuation, true, K, &[0; 6]));
        expect_error(
            server,
            small,
            &fragments,
            "message of at least 16 bytes",
            1009,
        );
    }

    #[test]
    fn data_before_a_violation_is_delivered_first() {
        let mut s = Session::new(Side::Server, limits());
        let mut wire = frame(OpCode::Binary, true, K, b"fine");
        wire.extend(frame(OpCode::Text, true, K, b"bad"));
        let mut out = [0u8; 64];
        let d = s.decode(&wire, &mut out).unwrap();
        assert_eq!(&out[..d.produced], b"fine");
        assert!(matches!(
            s.decode(&wire[d.consumed..], &mut out),
            Err(WsError::TextFrame)
        ));
        assert!(s.decode(&[], &mut out).is_err());
    }

    #[test]
    fn a_huge_announced_frame_costs_nothing() {
        let mut server = Session::new(Side::Server, limits());
        let mut wire = [0u8; 14];
        let n = Header {
            fin: true,
            opcode: OpCode::Binary,
            mask: K,
            len: 1 << 62,
        }
        .emit(&mut wire);
        let err = server.decode(&wire[..n], &mut [0; 16]).unwrap_err();
        assert!(matches!(err, WsError::FrameTooLarge { .. }));
    }

    #[test]
    fn writes_are_split_at_the_frame_limit() {
        let mut client = Session::new(
            Side::Client,
            Limits {
                max_write_frame: 4,
                ..Limits::default()
            },
        );
        let mut tx = Vec::new();
        assert_eq!(client.encode_data(b"abcdefg", &mut tx).unwrap(), 4);
        let mut server = Session::new(Side::Server, limits());
        assert_eq!(decode_all(&mut server, &tx).unwrap(), b"abcd");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            out_len in 0usize..64,
            server in proptest::prelude::any::<bool>(),
        ) {
            let side = if server { Side::Server } else { Side::Client };
            let mut s = Session::new(side, Limits::default());
            let mut out = vec![0u8; out_len];
            let mut at = 0;
            while at < bytes.len() {
                match s.decode(&bytes[at..], &mut out) {
                    Ok(d) if d.consumed == 0 => break,
                    Ok(d) => at += d.consumed,
                    Err(_) => break,
                }
            }
            let mut tx = Vec::new();
            s.poll_transmit(&mut tx);
        }

        #[test]
        fn any_split_of_frames_gives_the_same_bytes(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..6),
            chunk in 1usize..50,
        ) {
            let mut client = Session::new(Side::Client, Limits::default());
            let mut wire = Vec::new();
            for p in &payloads {
                let mut at = 0;
                while at < p.len() {
                    at += client.encode_data(&p[at..], &mut wire).unwrap();
                }
            }
            let mut server = Session::new(Side::Server, Limits::default());
            let mut got = Vec::new();
            let mut out = [0u8; 33];
            for piece in wire.chunks(chunk) {
                let mut at = 0;
                while at < piece.len() {
                    let d = server.decode(&piece[at..], &mut out).unwrap();
                    got.extend_from_slice(&out[..d.produced]);
                    at += d.consumed;
                }
            }
            proptest::prop_assert_eq!(got, payloads.concat());
        }
    }
}
