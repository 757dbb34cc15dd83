//! Stdin lines of a listening node, read with a bounded buffer: a line longer than
//! [`MAX_STDIN_LINE`] (or stdin fed from a source without newlines, such as `/dev/zero`) is
//! skipped and reported instead of growing memory without bound.

use std::io::{BufRead, Read};

/// The longest stdin line taken, in bytes. A `publish` line carries one message, and the
/// pubsub default caps a whole RPC at 1 MiB (`DEFAULT_MAX_TRANSMIT_SIZE`), so a longer line
/// could not be sent anyway; the extra 1 KiB is for `publish <topic> `.
pub(crate) const MAX_STDIN_LINE: usize = 1024 * 1024 + 1024;

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

/// Reads the next line of `reader`, holding at most `max + 1` bytes of it.
pub(crate) fn read_line(reader: &mut impl BufRead, max: usize) -> std::io::Result<StdinLine> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(StdinLine::Eof);
    }
    if buf.last() != Some(&b'\n') && buf.len() > max {
        // Too long: drop the rest of it, a buffer at a time, up to the newline or EOF.
        let mut len = buf.len();
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            if let Some(at) = chunk.iter().position(|b| *b == b'\n') {
                len = len.saturating_add(at);
                reader.consume(at + 1);
                break;
            }
            let taken = chunk.len();
            len = len.saturating_add(taken);
            reader.consume(taken);
        }
        return Ok(StdinLine::Skipped {
            len,
            reason: "longer than the limit",
        });
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    match String::from_utf8(buf) {
        Ok(line) => Ok(StdinLine::Line(line)),
        Err(err) => Ok(StdinLine::Skipped {
            len: err.as_bytes().len(),
            reason: "not UTF-8",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<StdinLine> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let line = read_line(&mut reader, max).expect("in-memory read");
            let eof = line == StdinLine::Eof;
            out.push(line);
            if eof {
                return out;
            }
        }
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
}
