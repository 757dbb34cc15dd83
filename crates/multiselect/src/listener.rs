//! The listener's sans-IO state machine.

use lp2p_core::ProtocolId;

use crate::message::{Message, decode_frame, describe, encode_list, encode_message};
use crate::{Config, Matcher, MultiselectError};

/// Where a [`Listener`] is in the negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the dialer's header.
    AwaitHeader,
    /// Header exchanged; waiting for a proposal (or `ls`).
    AwaitProposal,
    /// A proposal was accepted and echoed.
    Accepted,
    /// An error ended the negotiation.
    Failed,
}

/// The responder's side of multistream-select: answers each proposal with its echo (agreed)
/// or `na`, and `ls` with the list of protocols, until one is agreed.
///
/// Sans-IO: feed the dialer's bytes to [`handle_input`](Listener::handle_input), send what
/// [`poll_transmit`](Listener::poll_transmit) gives, and stop when
/// [`selected`](Listener::selected) says which protocol was agreed. All the answers to one
/// batch of input come out together, so the header and the first answer leave in one write.
///
/// ```
/// use lp2p_multiselect::{Config, Listener};
///
/// let mut listener = Listener::new(["/a"], Config::default());
/// // A lazy dialer's first packet: header, proposal and application data together.
/// let input = b"\x13/multistream/1.0.0\n\x03/a\nhello";
/// let used = listener.handle_input(input).unwrap();
/// assert_eq!(&input[used..], b"hello"); // left for the protocol handler
/// assert_eq!(listener.selected().unwrap(), "/a");
/// let mut out = Vec::new();
/// listener.poll_transmit(&mut out);
/// assert_eq!(out, b"\x13/multistream/1.0.0\n\x03/a\n");
/// ```
#[derive(Debug)]
pub struct Listener<M> {
    matcher: M,
    config: Config,
    state: State,
    rounds: usize,
    selected: Option<ProtocolId>,
    transmit: Vec<u8>,
    /// An error found behind messages that were answered in the same call: reported on the
    /// next call, so that those answers can be sent first.
    deferred: Option<MultiselectError>,
}

impl<M: Matcher> Listener<M> {
    /// A listener that accepts what `matcher` selects.
    pub fn new(matcher: M, config: Config) -> Listener<M> {
        Listener {
            matcher,
            config,
            state: State::AwaitHeader,
            rounds: 0,
            selected: None,
            transmit: Vec::new(),
            deferred: None,
        }
    }

    /// The protocol agreed on, once it is.
    pub fn selected(&self) -> Option<&ProtocolId> {
        self.selected.as_ref()
    }

    /// Whether the negotiation is over, agreed or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Accepted | State::Failed)
    }

    /// How many proposals and `ls` requests have been answered.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Appends the bytes to send to `out`; returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.append(&mut self.transmit);
        true
    }

    /// Takes the dialer's messages from the front of `input` and returns how many bytes were
    /// consumed. A partial message at the end is left for the next call; everything after
    /// the accepted proposal is application data and is never consumed.
    ///
    /// A bad message behind messages consumed in the same call is reported on the next call
    /// (the bad message stays unconsumed), so the answers to the good ones can be sent first:
    /// a lazy dialer whose proposal is refused gets its `na` even though its optimistic data
    /// then fails the negotiation. After an error the listener is finished and ignores
    /// further input.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        if let Some(err) = self.deferred.take() {
            self.state = State::Failed;
            return Err(err);
        }
        let mut used: usize = 0;
        while !self.is_finished() {
            let rest = input.get(used..).unwrap_or_default();
            match self.step(rest) {
                Ok(Some(n)) => used = used.saturating_add(n),
                Ok(None) => break,
                Err(err) if used > 0 => {
                    self.deferred = Some(err);
                    break;
                }
                Err(err) => {
                    self.state = State::Failed;
                    return Err(err);
                }
            }
        }
        Ok(used)
    }

    /// Handles one message; `Ok(None)` when `input` holds no whole message.
    fn step(&mut self, input: &[u8]) -> Result<Option<usize>, MultiselectError> {
        let Some((body, used)) = decode_frame(input, self.config.max_message_len)? else {
            return Ok(None);
        };
        let message = Message::parse(body)?;
        match (self.state, message) {
            (State::AwaitHeader, Message::Header) => {
                Message::Header.encode(&mut self.transmit);
                self.state = State::AwaitProposal;
            }
            (State::AwaitHeader, other) => {
                return Err(MultiselectError::BadHeader {
                    got: describe(&other),
                });
            }
            (State::AwaitProposal, Message::Protocol(proposed)) => {
                self.count_round()?;
                if let Some(selected) = self.matcher.select(proposed) {
                    tracing::debug!(protocol = %proposed, "multistream-select: accepting");
                    encode_message(proposed, &mut self.transmit);
                    self.selected = Some(selected);
                    self.state = State::Accepted;
                } else {
                    tracing::debug!(protocol = %proposed, "multistream-select: refusing");
                    Message::Na.encode(&mut self.transmit);
                }
            }
            (State::AwaitProposal, Message::Ls) => {
                self.count_round()?;
                let listed = encode_list(
                    &self.matcher.list(),
                    self.config.max_list_len,
                    &mut self.transmit,
                );
                tracing::debug!(listed, "multistream-select: answering ls");
            }
            (_, other) => {
                return Err(MultiselectError::UnexpectedMessage {
                    expected: "a protocol proposal or ls",
                    got: describe(&other),
                });
            }
        }
        Ok(Some(used))
    }

    /// Counts a proposal or `ls`, failing past the limit.
    fn count_round(&mut self) -> Result<(), MultiselectError> {
        if self.rounds >= self.config.max_rounds {
            return Err(MultiselectError::TooManyRounds {
                max: self.config.max_rounds,
            });
        }
        self.rounds = self.rounds.saturating_add(1);
        Ok(())
    }

    /// The largest message this listener reads.
    pub(crate) fn max_message_len(&self) -> usize {
        self.config.max_message_len
    }

    /// What the listener waits for, for end-of-stream errors.
    pub(crate) fn waiting_for(&self) -> &'static str {
        match self.state {
            State::AwaitHeader => "the dialer's multistream header",
            _ => "the dialer's proposal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&MultiselectError) -> bool;
    use crate::Protocols;
    use crate::message::parse_list;

    const HDR: &[u8] = b"\x13/multistream/1.0.0\n";

    fn listener() -> Listener<[&'static str; 2]> {
        Listener::new(["/a", "/b"], Config::default())
    }

    /// Feeds `input` until the listener stops consuming; returns the first error.
    fn feed<M: Matcher>(l: &mut Listener<M>, input: &[u8]) -> Result<usize, MultiselectError> {
        let mut used = 0;
        loop {
            let n = l.handle_input(&input[used..])?;
            if n == 0 {
                return Ok(used);
            }
            used += n;
        }
    }

    fn transmitted<M: Matcher>(l: &mut Listener<M>) -> Vec<u8> {
        let mut out = Vec::new();
        l.poll_transmit(&mut out);
        out
    }

    #[test]
    fn match_at_once_with_header_and_echo_in_one_write() {
        let mut l = listener();
        let input = [HDR, b"\x03/b\n"].concat();
        assert_eq!(l.handle_input(&input).unwrap(), input.len());
        assert_eq!(l.selected().unwrap(), "/b");
        assert!(l.is_finished());
        assert_eq!(transmitted(&mut l), [HDR, b"\x03/b\n"].concat());
        assert_eq!(l.rounds(), 1);
    }

    #[test]
    fn header_alone_is_answered_at_once() {
        // A dialer that waits for our header before proposing (py-libp2p does) must get it.
        let mut l = listener();
        assert_eq!(l.handle_input(HDR).unwrap(), HDR.len());
        assert_eq!(transmitted(&mut l), HDR);
        assert_eq!(l.handle_input(b"\x03/a\n").unwrap(), 4);
        assert_eq!(transmitted(&mut l), b"\x03/a\n");
    }

    #[test]
    fn na_then_accept() {
        let mut l = listener();
        let input = [HDR, b"\x03/x\n"].concat();
        l.handle_input(&input).unwrap();
        assert_eq!(transmitted(&mut l), [HDR, b"\x03na\n"].concat());
        assert_eq!(l.selected(), None);
        assert!(!l.is_finished());
        l.handle_input(b"\x03/a\n").unwrap();
        assert_eq!(transmitted(&mut l), b"\x03/a\n");
        assert_eq!(l.selected().unwrap(), "/a");
    }

    #[test]
    fn pipelined_proposals_answered_in_order() {
        let mut l = listener();
        let input = [HDR, b"\x03/x\n", b"\x03/y\n", b"\x03/b\n", b"app"].concat();
        assert_eq!(l.handle_input(&input).unwrap(), input.len() - 3);
        assert_eq!(
            transmitted(&mut l),
            [HDR, b"\x03na\n", b"\x03na\n", b"\x03/b\n"].concat()
        );
    }

    #[test]
    fn lazy_data_behind_proposal_is_untouched() {
        let mut l = listener();
        // Data that even looks like a multistream message is not consumed.
        let input = [HDR, b"\x03/a\n", b"\x03/b\n"].concat();
        assert_eq!(l.handle_input(&input).unwrap(), input.len() - 4);
        assert_eq!(l.selected().unwrap(), "/a");
    }

    #[test]
    fn lazy_data_after_na_fails_the_negotiation() {
        let mut l = listener();
        // The proposal is refused; the dialer's optimistic data is parsed as a message (and
        // would be waited for if its first byte announced more than has arrived).
        let input = [HDR, b"\x03/x\n", b"\x04ping"].concat();
        // The header and proposal are answered first ...
        let used = l.handle_input(&input).unwrap();
        assert_eq!(&input[used..], b"\x04ping");
        assert_eq!(transmitted(&mut l), [HDR, b"\x03na\n"].concat());
        // ... and the bad message fails the negotiation on the next call.
        assert!(matches!(
            l.handle_input(&input[used..]),
            Err(MultiselectError::MissingNewline)
        ));
        assert!(l.is_finished());
        assert_eq!(l.selected(), None);
    }

    #[test]
    fn answers_ls() {
        let mut l = Listener::new(
            Protocols::new()
                .with("/a")
                .with("/b")
                .with_predicate(|_| false),
            Config::default(),
        );
        let input = [HDR, b"\x03ls\n"].concat();
        l.handle_input(&input).unwrap();
        let out = transmitted(&mut l);
        let reply = out.strip_prefix(HDR).unwrap();
        let (body, used) = decode_frame(reply, 1024).unwrap().unwrap();
        assert_eq!(used, reply.len());
        assert_eq!(reply, b"\x09\x03/a\n\x03/b\n\n");
        assert_eq!(parse_list(body).unwrap(), ["/a", "/b"]);
        assert!(!l.is_finished());
        l.handle_input(b"\x03/a\n").unwrap();
        assert_eq!(l.selected().unwrap(), "/a");
    }

    #[test]
    fn predicate_matches_families() {
        let mut l = Listener::new(
            Protocols::new().with_predicate(|id| id.starts_with("/app/1.")),
            Config::default(),
        );
        let input = [HDR, b"\x07/app/2\n", b"\x09/app/1.5\n"].concat();
        l.handle_input(&input).unwrap();
        assert_eq!(l.selected().unwrap(), "/app/1.5");
        assert_eq!(
            transmitted(&mut l),
            [HDR, b"\x03na\n", b"\x09/app/1.5\n"].concat()
        );
    }

    #[test]
    fn too_many_rounds() {
        let mut l = Listener::new(["/a"], Config::default().with_max_rounds(3));
        let mut input = HDR.to_vec();
        for _ in 0..3 {
            input.extend_from_slice(b"\x03/x\n");
        }
        l.handle_input(&input).unwrap();
        assert_eq!(l.rounds(), 3);
        assert!(matches!(
            l.handle_input(b"\x03ls\n"),
            Err(MultiselectError::TooManyRounds { max: 3 })
        ));
        assert!(l.is_finished());
        // Finished: nothing more is consumed.
        assert_eq!(l.handle_input(b"\x03/a\n").unwrap(), 0);
    }

    #[test]
    fn default_round_limit_stops_an_endless_dialer() {
        let mut l = listener();
        let mut input = HDR.to_vec();
        for _ in 0..1000 {
            input.extend_from_slice(b"\x03/x\n");
        }
        assert!(matches!(
            feed(&mut l, &input),
            Err(MultiselectError::TooManyRounds {
                max: crate::MAX_ROUNDS
            })
        ));
        assert_eq!(l.rounds(), crate::MAX_ROUNDS);
    }

    #[test]
    fn wrong_header() {
        for input in [
            &b"\x03/a\n"[..],
            b"\x13/multistream/2.0.0\n",
            b"\x03na\n",
            b"\x03ls\n",
        ] {
            let mut l = listener();
            assert!(
                matches!(
                    l.handle_input(input),
                    Err(MultiselectError::BadHeader { .. })
                ),
                "{input:?}"
            );
            assert!(transmitted(&mut l).is_empty());
        }
    }

    #[test]
    fn unexpected_messages() {
        for msg in [HDR, b"\x03na\n", b"\x04huh\n"] {
            let mut l = listener();
            let input = [HDR, msg].concat();
            assert!(
                matches!(
                    feed(&mut l, &input),
                    Err(MultiselectError::UnexpectedMessage { .. })
                ),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn bad_input() {
        let long_id = {
            let mut m = vec![0x80, 0x08]; // 1024 + 1 would not fit; 1024 exactly
            m.push(b'/');
            m.extend(std::iter::repeat_n(b'x', 1022));
            m.push(b'\n');
            m
        };
        let over = [&[0x81u8, 0x08][..], &[b'/'; 1025]].concat();
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![0xff; 10], |e| {
                matches!(e, MultiselectError::InvalidLength(_))
            }),
            (vec![0x80, 0x00], |e| {
                matches!(e, MultiselectError::InvalidLength(_))
            }),
            (over, |e| {
                matches!(
                    e,
                    MultiselectError::MessageTooLong {
                        len: 1025,
                        max: 1024
                    }
                )
            }),
            (b"\x03/a/".to_vec(), |e| {
                matches!(e, MultiselectError::MissingNewline)
            }),
            (b"\x04/\xc3\x28\n".to_vec(), |e| {
                matches!(e, MultiselectError::NotUtf8)
            }),
            (b"\x05/a\nb\n".to_vec(), |e| {
                matches!(e, MultiselectError::InvalidProtocolId { .. })
            }),
        ];
        for (msg, check) in cases {
            let mut l = listener();
            let input = [HDR, &msg].concat();
            let err = feed(&mut l, &input).unwrap_err();
            assert!(check(&err), "{msg:?}: {err:?}");
            assert!(l.is_finished());
        }
        // An id of exactly the limit is fine (and refused as unknown).
        let mut l = listener();
        let input = [HDR, &long_id].concat();
        assert_eq!(l.handle_input(&input).unwrap(), input.len());
        assert!(transmitted(&mut l).ends_with(b"\x03na\n"));
    }

    #[test]
    fn truncated_message_waits_for_more() {
        let mut l = listener();
        let input = [HDR, b"\x09/a"].concat();
        assert_eq!(l.handle_input(&input).unwrap(), HDR.len());
        assert!(!l.is_finished());
        assert_eq!(l.handle_input(b"\x09/a").unwrap(), 0);
    }
}
