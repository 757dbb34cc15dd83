//! Per-stream state of the sans-IO connection.

use std::time::Instant;

use super::recv_buffer::RecvBuffer;
use crate::config::INITIAL_WINDOW;
use crate::wire::Flags;

/// One stream's send and receive halves, its flow-control windows and its flags.
#[derive(Debug)]
pub(crate) struct StreamState {
    /// We opened it.
    pub(crate) outbound: bool,

    // --- send half
    /// Bytes the remote still lets us send.
    pub(crate) send_window: u32,
    /// We sent FIN.
    pub(crate) write_closed: bool,
    /// A writer found the send window empty and waits for a window update.
    pub(crate) write_blocked: bool,
    /// A writer found the connection's send buffer full and waits for it to drain.
    pub(crate) waiting_for_buffer: bool,
    /// SYN (outbound) or ACK (inbound, once accepted) still to be sent; it rides on the
    /// stream's next frame. A SYN no frame took goes alone at the next transmit; an ACK
    /// goes alone along with other frames, or when the reader waits (D67).
    pub(crate) pending_flag: Flags,
    /// Whether SYN has left (or been queued in the send buffer); before it, the remote does
    /// not know the stream and a reset needs no frame.
    pub(crate) syn_sent: bool,

    // --- receive half
    /// Received and not yet read by the application.
    pub(crate) recv_buf: RecvBuffer,
    /// Bytes the remote may still send before it needs a window update.
    pub(crate) recv_window: u32,
    /// The window we aim to keep granted: `recv_window + recv_buf.len() + pending_credit`.
    /// Starts at [`INITIAL_WINDOW`]; auto-tuning doubles it.
    pub(crate) window_max: u32,
    /// Bytes the application has read since the last window update.
    pub(crate) pending_credit: u32,
    /// When the last window update was sent (or the stream was created).
    pub(crate) last_update: Instant,
    /// The remote sent FIN.
    pub(crate) read_closed: bool,
    /// A reader found nothing to read and waits.
    pub(crate) read_blocked: bool,

    // --- both
    /// Reset by either side.
    pub(crate) reset: bool,
    /// Outbound and not yet acknowledged: counts against the ACK backlog.
    pub(crate) awaiting_ack: bool,
    /// The application dropped its handle.
    pub(crate) detached: bool,
    /// Done in both directions (or reset): no longer counted as open.
    pub(crate) finished: bool,
}

impl StreamState {
    pub(crate) fn new(outbound: bool, send_window: u32, now: Instant) -> StreamState {
        StreamState {
            outbound,
            send_window,
            write_closed: false,
            write_blocked: false,
            waiting_for_buffer: false,
            pending_flag: if outbound { Flags::SYN } else { Flags::NONE },
            syn_sent: !outbound,
            recv_buf: RecvBuffer::default(),
            recv_window: INITIAL_WINDOW,
            window_max: INITIAL_WINDOW,
            pending_credit: 0,
            last_update: now,
            read_closed: false,
            read_blocked: false,
            reset: false,
            awaiting_ack: outbound,
            detached: false,
            finished: false,
        }
    }

    /// The flags for the stream's next frame: the pending SYN or ACK, taken.
    pub(crate) fn take_flag(&mut self) -> Flags {
        let flag = self.pending_flag;
        self.pending_flag = Flags::NONE;
        if flag.contains(Flags::SYN) {
            self.syn_sent = true;
        }
        flag
    }

    /// Whether both directions are done.
    pub(crate) fn is_done(&self) -> bool {
        self.reset || (self.read_closed && self.write_closed)
    }
}

/// A snapshot of one stream's state, for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStatus {
    /// We opened the stream.
    pub outbound: bool,
    /// Bytes we may still send before the remote grants more.
    pub send_window: u32,
    /// Bytes the remote may still send before we grant more.
    pub recv_window: u32,
    /// The receive window we aim to keep granted (grows with auto-tuning).
    pub window_max: u32,
    /// Bytes received and not yet read.
    pub buffered: usize,
    /// The remote sent FIN.
    pub read_closed: bool,
    /// We sent FIN.
    pub write_closed: bool,
    /// The stream was reset.
    pub reset: bool,
    /// Outbound and still waiting for the remote's ACK.
    pub awaiting_ack: bool,
}

impl From<&StreamState> for StreamStatus {
    fn from(s: &StreamState) -> Self {
        StreamStatus {
            outbound: s.outbound,
            send_window: s.send_window,
            recv_window: s.recv_window,
            window_max: s.window_max,
            buffered: s.recv_buf.len(),
            read_closed: s.read_closed,
            write_closed: s.write_closed,
            reset: s.reset,
            awaiting_ack: s.awaiting_ack,
        }
    }
}
