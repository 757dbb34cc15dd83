//! The one error type of this crate.

use std::fmt;
use std::io;

use lp2p_core::ProtocolId;

/// Everything that can end a multistream-select negotiation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultiselectError {
    /// Reading from or writing to the underlying stream failed.
    #[error("I/O error during multistream-select: {0}")]
    Io(#[from] io::Error),
    /// The stream ended before the negotiation did.
    #[error("the stream ended while waiting for {while_waiting_for}")]
    UnexpectedEof {
        /// What we were waiting for (for example "the remote's header").
        while_waiting_for: &'static str,
    },
    /// A message length prefix was not a valid multiformats varint (longer than 9 bytes or
    /// not minimally encoded).
    #[error("invalid message length prefix: {0}")]
    InvalidLength(#[source] lp2p_core::Error),
    /// A message announced more bytes than the limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// The announced length (including the trailing newline).
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A message was not valid UTF-8.
    #[error("message is not valid UTF-8")]
    NotUtf8,
    /// A message did not end with the newline every multistream-select message ends with.
    #[error("message does not end with a newline")]
    MissingNewline,
    /// The first message from the remote was not `/multistream/1.0.0`.
    #[error("expected the header /multistream/1.0.0, got {got:?}")]
    BadHeader {
        /// What the remote sent instead (shortened when long).
        got: String,
    },
    /// A protocol id (ours or the remote's) breaks the rules: it must start with `/`, hold no
    /// newline and fit the message limit.
    #[error("invalid protocol id {id:?}: {reason}")]
    InvalidProtocolId {
        /// The offending id (shortened when long).
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Every protocol we offered was refused (`na`), or we offered none.
    #[error("no protocol in common; offered: {}", OfferedList(.offered))]
    NoCommonProtocol {
        /// The protocols we proposed, in order.
        offered: Vec<ProtocolId>,
    },
    /// The remote made more proposals (or `ls` requests) than the limit allows.
    #[error("the remote made more than {max} proposals")]
    TooManyRounds {
        /// The limit in force.
        max: usize,
    },
    /// The remote sent a well-formed message that makes no sense at this point.
    #[error("unexpected message {got:?}, expected {expected}")]
    UnexpectedMessage {
        /// What we were waiting for.
        expected: &'static str,
        /// What arrived (shortened when long).
        got: String,
    },
}

impl MultiselectError {
    /// Whether the error came from the underlying stream rather than from the protocol.
    pub fn is_io(&self) -> bool {
        matches!(self, MultiselectError::Io(_))
    }
}

/// Formats a list of protocol ids as `/a, /b` (or `none`).
struct OfferedList<'a>(&'a [ProtocolId]);

impl fmt::Display for OfferedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(id.as_str())?;
        }
        Ok(())
    }
}

/// The most characters of a remote-supplied string kept in an error.
const MAX_QUOTED_CHARS: usize = 64;

/// A remote-supplied string for an error message, cut to [`MAX_QUOTED_CHARS`] characters.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

impl From<MultiselectError> for io::Error {
    fn from(err: MultiselectError) -> io::Error {
        match err {
            MultiselectError::Io(io) => io,
            MultiselectError::UnexpectedEof { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, err)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl From<MultiselectError> for lp2p_core::Error {
    /// I/O errors stay I/O errors; the end of the stream becomes
    /// [`lp2p_core::Error::UnexpectedEof`]; every protocol error becomes an
    /// [`lp2p_core::Error::Io`] of kind `InvalidData` that wraps this error (reach it with
    /// `get_ref` and `downcast_ref`).
    fn from(err: MultiselectError) -> lp2p_core::Error {
        match err {
            MultiselectError::Io(io) => lp2p_core::Error::Io(io),
            MultiselectError::UnexpectedEof { while_waiting_for } => {
                lp2p_core::Error::UnexpectedEof {
                    what: while_waiting_for,
                }
            }
            other => lp2p_core::Error::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_common_protocol_names_every_offer() {
        let err = MultiselectError::NoCommonProtocol {
            offered: vec!["/a/1".into(), "/b/2".into()],
        };
        assert_eq!(
            err.to_string(),
            "no protocol in common; offered: /a/1, /b/2"
        );
        let none = MultiselectError::NoCommonProtocol { offered: vec![] };
        assert_eq!(none.to_string(), "no protocol in common; offered: none");
    }

    #[test]
    fn quote_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(100);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 3);
        assert!(quoted.ends_with("..."));
        assert_eq!(quote("short"), "short");
    }

    #[test]
    fn converts_into_core_and_io_errors() {
        let core: lp2p_core::Error = MultiselectError::NotUtf8.into();
        match core {
            lp2p_core::Error::Io(io) => {
                assert_eq!(io.kind(), io::ErrorKind::InvalidData);
                let inner = io.get_ref().unwrap().downcast_ref::<MultiselectError>();
                assert!(matches!(inner, Some(MultiselectError::NotUtf8)));
            }
            other => panic!("unexpected {other:?}"),
        }
        let eof: lp2p_core::Error = MultiselectError::UnexpectedEof {
            while_waiting_for: "x",
        }
        .into();
        assert!(matches!(eof, lp2p_core::Error::UnexpectedEof { what: "x" }));
        let io: io::Error = MultiselectError::Io(io::ErrorKind::BrokenPipe.into()).into();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }
}
