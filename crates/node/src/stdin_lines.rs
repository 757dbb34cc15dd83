//! Stdin lines of a listening node, read with a bounded buffer: a line longer than
//! [`MAX_STDIN_LINE`] (or stdin fed from a source without newlines, such as `/dev/zero`) is
//! skipped and reported instead of growing memory without bound.
//!
//! [`start`] reads stdin on the executor when it is a pipe or a socket (Linux), the way a
//! program driving the node feeds it; otherwise (a terminal, a file) on a thread of its own,
//! with blocking reads. On the executor, a line written into the pipe wakes the thread that
//! runs the node's tasks directly. Through a reading thread it took two wake-ups, that
//! thread's and then the executor's. Decision D72 has the measurement, made with a driver
//! script outside the repository; the repository's `interop/benches/kad_network.rs` did
//! not move beyond its noise.
//!
//! Both readers cut lines with the same [`LineSplitter`].

use futures::SinkExt;
use futures::channel::mpsc;

/// The longest stdin line taken, in bytes. A `publish` line carries one message, and the
/// pubsub default caps a whole RPC at 1 MiB (`DEFAULT_MAX_TRANSMIT_SIZE`), so a longer line
/// could not be sent anyway; the extra 1 KiB is for `publish <topic> `.
pub(crate) const MAX_STDIN_LINE: usize = 1024 * 1024 + 1024;

/// Bytes asked of stdin per read. Lines of the node's commands are tens of bytes, so one
/// read usually takes all that is waiting.
const READ_CHUNK: usize = 8 * 1024;

/// Lines read ahead of the node's handling of them; the reader waits beyond that.
const LINES_AHEAD: usize = 16;

/// One read from stdin.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StdinLine {
    /// A whole line, without its line ending.
    Line(String),
    /// A line of this many bytes (at least) was longer than the limit or not UTF-8, and was
    /// skipped up to its newline.
    Skipped { len: usize, reason: &'static str },
    /// End of input.
    Eof,
}

const TOO_LONG: &str = "longer than the limit";
const NOT_UTF8: &str = "not UTF-8";

/// Cuts bytes into [`StdinLine`]s, holding at most `max` bytes of an unfinished line (the
/// sans-IO part of both readers).
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max: usize,
    /// The unfinished line (at most `max` bytes).
    line: Vec<u8>,
    /// The unfinished line is over the limit: its length so far, its bytes dropped.
    skipping: Option<usize>,
}

impl LineSplitter {
    /// A splitter that takes lines of at most `max` bytes (without the newline).
    pub(crate) fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            line: Vec::new(),
            skipping: None,
        }
    }

    /// Takes the next `bytes` of input; each line they finish is pushed onto `out`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<StdinLine>) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|b| *b == b'\n');
            let part = newline.map_or(bytes, |at| &bytes[..at]);
            bytes = newline.map_or(&[][..], |at| &bytes[at + 1..]);
            let len = match self.skipping {
                Some(len) => len.saturating_add(part.len()),
                None if self.line.len().saturating_add(part.len()) > self.max => {
                    let len = self.line.len().saturating_add(part.len());
                    self.line = Vec::new();
                    len
                }
                None => {
                    self.line.extend_from_slice(part);
                    if newline.is_some() {
                        let mut line = std::mem::take(&mut self.line);
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        out.push(finished(line));
                    }
                    continue;
                }
            };
            if newline.is_some() {
                self.skipping = None;
                out.push(StdinLine::Skipped {
                    len,
                    reason: TOO_LONG,
                });
            } else {
                self.skipping = Some(len);
            }
        }
    }

    /// The end of input: the unfinished last line, if any, then [`StdinLine::Eof`].
    pub(crate) fn finish(&mut self, out: &mut Vec<StdinLine>) {
        if let Some(len) = self.skipping.take() {
            out.push(StdinLine::Skipped {
                len,
                reason: TOO_LONG,
            });
        } else if !self.line.is_empty() {
            out.push(finished(std::mem::take(&mut self.line)));
        }
        out.push(StdinLine::Eof);
    }
}

/// A whole line's bytes as a [`StdinLine`].
fn finished(line: Vec<u8>) -> StdinLine {
    match String::from_utf8(line) {
        Ok(line) => StdinLine::Line(line),
        Err(err) => StdinLine::Skipped {
            len: err.as_bytes().len(),
            reason: NOT_UTF8,
        },
    }
}

/// Starts reading stdin (see the module docs); the lines arrive on the receiver, which ends
/// after [`StdinLine::Eof`] or a read error.
pub(crate) fn start() -> mpsc::Receiver<StdinLine> {
    let (tx, rx) = mpsc::channel(LINES_AHEAD);
    #[cfg(target_os = "linux")]
    let tx = match on_executor(tx) {
        Ok(()) => return rx,
        Err(tx) => tx,
    };
    std::thread::spawn(move || read_blocking(tx));
    rx
}

/// What a reader keeps between reads of stdin.
struct Reading {
    splitter: LineSplitter,
    /// Where each read puts its bytes.
    chunk: Vec<u8>,
    lines: Vec<StdinLine>,
}

impl Reading {
    fn new() -> Reading {
        Reading {
            splitter: LineSplitter::new(MAX_STDIN_LINE),
            chunk: vec![0u8; READ_CHUNK],
            lines: Vec::new(),
        }
    }

    /// The lines that a read into `chunk` finished (`Ok(0)`, the end of input, finishes
    /// the last one and adds [`StdinLine::Eof`]); `None` when reading must stop on an
    /// error, which is logged.
    fn lines_after(
        &mut self,
        read: std::io::Result<usize>,
    ) -> Option<std::vec::Drain<'_, StdinLine>> {
        match read {
            Ok(0) => self.splitter.finish(&mut self.lines),
            Ok(n) => self.splitter.feed(&self.chunk[..n], &mut self.lines),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!(%err, "reading stdin failed");
                return None;
            }
        }
        Some(self.lines.drain(..))
    }
}

/// Reads stdin on this thread until its end.
fn read_blocking(mut tx: mpsc::Sender<StdinLine>) {
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let mut reading = Reading::new();
    loop {
        let read = stdin.read(&mut reading.chunk);
        let Some(lines) = reading.lines_after(read) else {
            return;
        };
        for line in lines {
            let eof = line == StdinLine::Eof;
            if futures::executor::block_on(tx.send(line)).is_err() || eof {
                return;
            }
        }
    }
}

/// Reads stdin in a task on the executor when it is a pipe or a socket; gives `tx` back
/// otherwise.
///
/// The task reads a duplicate of the descriptor set to non-blocking. That flag belongs to
/// the open pipe, which a node fed by its parent holds alone; a pipe shared with another
/// reader would see it too.
#[cfg(target_os = "linux")]
fn on_executor(tx: mpsc::Sender<StdinLine>) -> Result<(), mpsc::Sender<StdinLine>> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let pollable = rustix::fs::fstat(stdin.as_fd()).is_ok_and(|stat| {
        matches!(
            rustix::fs::FileType::from_raw_mode(stat.st_mode),
            rustix::fs::FileType::Fifo | rustix::fs::FileType::Socket
        )
    });
    let Some(runtime) = lp2p::RuntimeHandle::try_default().filter(|_| pollable) else {
        return Err(tx);
    };
    let reader = stdin
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| async_io::Async::new(std::fs::File::from(fd)));
    let reader = match reader {
        Ok(reader) => reader,
        Err(err) => {
            tracing::debug!(%err, "stdin cannot be polled; reading it on a thread");
            return Err(tx);
        }
    };
    runtime.spawn_detached(read_async(reader, tx));
    Ok(())
}

/// Reads `reader` (stdin) until its end.
#[cfg(target_os = "linux")]
async fn read_async(mut reader: async_io::Async<std::fs::File>, mut tx: mpsc::Sender<StdinLine>) {
    use futures::AsyncReadExt;
    let mut reading = Reading::new();
    loop {
        let read = reader.read(&mut reading.chunk).await;
        let Some(lines) = reading.lines_after(read) else {
            return;
        };
        for line in lines {
            let eof = line == StdinLine::Eof;
            if tx.send(line).await.is_err() || eof {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of `input` fed whole, a byte at a time and in chunks of 4 and 7 bytes,
    /// which must all agree.
    fn all(input: &[u8], max: usize) -> Vec<StdinLine> {
        let mut results = [input.len().max(1), 1, 4, 7].map(|size| {
            let mut splitter = LineSplitter::new(max);
            let mut out = Vec::new();
            for chunk in input.chunks(size) {
                splitter.feed(chunk, &mut out);
                assert!(splitter.line.len() <= max, "held more than the limit");
            }
            splitter.finish(&mut out);
            out
        });
        for other in &results[1..] {
            assert_eq!(&results[0], other, "chunking changed the lines");
        }
        std::mem::take(&mut results[0])
    }

    fn line(s: &str) -> StdinLine {
        StdinLine::Line(s.to_owned())
    }

    #[test]
    fn lines_come_without_their_endings() {
        assert_eq!(
            all(b"publish t hi\r\nkad-get k\nlast", 64),
            vec![
                line("publish t hi"),
                line("kad-get k"),
                line("last"),
                StdinLine::Eof
            ]
        );
    }

    #[test]
    fn a_line_at_the_limit_is_taken() {
        assert_eq!(all(b"abcd\n", 4), vec![line("abcd"), StdinLine::Eof]);
        assert_eq!(all(b"abcd", 4), vec![line("abcd"), StdinLine::Eof]);
    }

    #[test]
    fn a_long_line_is_skipped_and_the_next_one_read() {
        assert_eq!(
            all(b"abcdefghij\nok\n", 4),
            vec![
                StdinLine::Skipped {
                    len: 10,
                    reason: "longer than the limit"
                },
                line("ok"),
                StdinLine::Eof
            ]
        );
    }

    #[test]
    fn input_without_newlines_is_skipped_in_bounded_memory() {
        // Like /dev/zero, but finite: 1 MiB of zeros with a limit of 16 bytes.
        let zeros = vec![0u8; 1024 * 1024];
        assert_eq!(
            all(&zeros, 16),
            vec![
                StdinLine::Skipped {
                    len: 1024 * 1024,
                    reason: "longer than the limit"
                },
                StdinLine::Eof
            ]
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped() {
        assert_eq!(
            all(b"\xff\xfe\nok\n", 64),
            vec![
                StdinLine::Skipped {
                    len: 2,
                    reason: "not UTF-8"
                },
                line("ok"),
                StdinLine::Eof
            ]
        );
    }

    #[test]
    fn empty_lines_are_lines_and_a_long_last_line_is_skipped() {
        assert_eq!(
            all(b"\n\r\nabcdefgh", 4),
            vec![
                line(""),
                line(""),
                StdinLine::Skipped {
                    len: 8,
                    reason: "longer than the limit"
                },
                StdinLine::Eof
            ]
        );
    }

    #[test]
    fn the_carriage_return_counts_toward_the_limit() {
        assert_eq!(
            all(b"abc\r\nabcd\r\n", 4),
            vec![
                line("abc"),
                StdinLine::Skipped {
                    len: 5,
                    reason: "longer than the limit"
                },
                StdinLine::Eof
            ]
        );
    }
}
