//! The dialer's sans-IO state machine, and the `ls` request.

use lp2p_core::{ProtocolId, varint};
use smallvec::SmallVec;

use crate::message::{
    HEADER_FRAME_LEN, Message, decode_frame, describe, encode_message, parse_list,
    validate_protocol_id,
};
use crate::{Config, MultiselectError, Version};

/// Where a [`Dialer`] is in the negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Header and the first proposal are out; waiting for the listener's header.
    AwaitHeader,
    /// Waiting for the answer to the current proposal.
    AwaitAnswer,
    /// The listener echoed the current proposal.
    Accepted,
    /// An error ended the negotiation.
    Failed,
}

/// The initiator's side of multistream-select: proposes protocols in order until the
/// listener accepts one.
///
/// Sans-IO: feed the listener's bytes to [`handle_input`](Dialer::handle_input), send what
/// [`poll_transmit`](Dialer::poll_transmit) gives, and stop when
/// [`selected`](Dialer::selected) says which protocol was agreed.
///
/// ```
/// use lp2p_multiselect::{Config, Dialer, Version};
///
/// let mut dialer = Dialer::new(["/b", "/a"], Version::V1, Config::default()).unwrap();
/// let mut out = Vec::new();
/// dialer.poll_transmit(&mut out);
/// assert_eq!(out, b"\x13/multistream/1.0.0\n\x03/b\n"); // header + first proposal, together
///
/// // The listener does not support /b ...
/// assert_eq!(dialer.handle_input(b"\x13/multistream/1.0.0\n\x03na\n").unwrap(), 24);
/// out.clear();
/// dialer.poll_transmit(&mut out);
/// assert_eq!(out, b"\x03/a\n"); // ... so we fall back to /a,
/// // which it accepts; the bytes behind the echo are application data, left unconsumed.
/// assert_eq!(dialer.handle_input(b"\x03/a\nhello").unwrap(), 4);
/// assert_eq!(dialer.selected().unwrap(), "/a");
/// ```
#[derive(Debug)]
pub struct Dialer {
    protocols: SmallVec<[ProtocolId; 4]>,
    /// Index of the current proposal in `protocols`.
    current: usize,
    /// The current proposal (a cheap clone of `protocols[current]`).
    proposed: ProtocolId,
    state: State,
    lazy: bool,
    config: Config,
    transmit: Vec<u8>,
}

impl Dialer {
    /// A dialer that will propose `protocols` in order; the header and the first proposal
    /// are ready to send at once.
    ///
    /// Fails with [`MultiselectError::NoCommonProtocol`] for an empty list and with
    /// [`MultiselectError::InvalidProtocolId`] when an id could not be sent.
    pub fn new<I>(
        protocols: I,
        version: Version,
        config: Config,
    ) -> Result<Dialer, MultiselectError>
    where
        I: IntoIterator,
        I::Item: Into<ProtocolId>,
    {
        let protocols: SmallVec<[ProtocolId; 4]> = protocols.into_iter().map(Into::into).collect();
        for id in &protocols {
            validate_protocol_id(id.as_str(), config.max_message_len)?;
        }
        let Some(first) = protocols.first() else {
            return Err(MultiselectError::NoCommonProtocol {
                offered: Vec::new(),
            });
        };
        let mut transmit = Vec::with_capacity(
            HEADER_FRAME_LEN
                .saturating_add(first.len())
                .saturating_add(varint::MAX_LEN),
        );
        Message::Header.encode(&mut transmit);
        encode_message(first.as_str(), &mut transmit);
        tracing::debug!(protocol = %first, ?version, "multistream-select: proposing");
        Ok(Dialer {
            lazy: version == Version::V1Lazy && protocols.len() == 1,
            proposed: first.clone(),
            protocols,
            current: 0,
            state: State::AwaitHeader,
            config,
            transmit,
        })
    }

    /// Whether this dialer negotiates lazily (0-RTT): [`Version::V1Lazy`] with exactly one
    /// protocol. Such a dialer may treat its proposal as agreed and start sending data; the
    /// listener's answer is checked later.
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// The protocol proposed last (the one an answer refers to).
    pub fn proposed(&self) -> &ProtocolId {
        &self.proposed
    }

    /// Every protocol this dialer offers, in order.
    pub fn offered(&self) -> &[ProtocolId] {
        &self.protocols
    }

    /// The protocol the listener accepted, once it has.
    pub fn selected(&self) -> Option<&ProtocolId> {
        (self.state == State::Accepted).then(|| self.proposed())
    }

    /// Whether the negotiation is over, agreed or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Accepted | State::Failed)
    }

    /// Appends the bytes to send to `out`; returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.append(&mut self.transmit);
        true
    }

    /// Takes the listener's messages from the front of `input` and returns how many bytes
    /// were consumed. A partial message at the end is left for the next call (with more
    /// bytes appended); everything after the acceptance echo is application data and is
    /// never consumed.
    ///
    /// After an error the dialer is finished and ignores further input.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        let mut used = 0;
        while !self.is_finished() {
            let rest = input.get(used..).unwrap_or_default();
            match self.step(rest) {
                Ok(Some(n)) => used = used.saturating_add(n),
                Ok(None) => break,
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
            (State::AwaitHeader, Message::Header) => self.state = State::AwaitAnswer,
            (State::AwaitHeader, other) => {
                return Err(MultiselectError::BadHeader {
                    got: describe(&other),
                });
            }
            (State::AwaitAnswer, Message::Protocol(id)) if id == self.proposed().as_str() => {
                tracing::debug!(protocol = %id, "multistream-select: protocol accepted");
                self.state = State::Accepted;
            }
            (State::AwaitAnswer, Message::Na) => {
                tracing::debug!(protocol = %self.proposed(), "multistream-select: protocol refused");
                let next_index = self.current.saturating_add(1);
                let Some(next) = self.protocols.get(next_index) else {
                    return Err(MultiselectError::NoCommonProtocol {
                        offered: self.protocols.to_vec(),
                    });
                };
                tracing::debug!(protocol = %next, "multistream-select: proposing");
                encode_message(next.as_str(), &mut self.transmit);
                self.current = next_index;
                self.proposed = next.clone();
            }
            (_, other) => {
                return Err(MultiselectError::UnexpectedMessage {
                    expected: "the echo of our proposal or na",
                    got: describe(&other),
                });
            }
        }
        Ok(Some(used))
    }

    /// The largest message this dialer reads.
    pub(crate) fn max_message_len(&self) -> usize {
        self.config.max_message_len
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the dialer waits for, for end-of-stream errors.
    pub(crate) fn waiting_for(&self) -> &'static str {
        match self.state {
            State::AwaitHeader => "the listener's multistream header",
            _ => "the listener's answer to our proposal",
        }
    }
}

/// Where a [`ListRequest`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListState {
    AwaitHeader,
    AwaitList,
    Done,
    Failed,
}

/// A dialer that asks the listener for its protocols with `ls` instead of proposing one.
///
/// Optional in the spec: go-multistream answers `ls` with `na`, which this reports as
/// [`MultiselectError::UnexpectedMessage`].
///
/// ```
/// use lp2p_multiselect::{Config, ListRequest};
///
/// let mut ls = ListRequest::new(Config::default());
/// let mut out = Vec::new();
/// ls.poll_transmit(&mut out);
/// assert_eq!(out, b"\x13/multistream/1.0.0\n\x03ls\n");
/// ls.handle_input(b"\x13/multistream/1.0.0\n\x09\x03/a\n\x03/b\n\n").unwrap();
/// assert_eq!(ls.protocols().unwrap(), ["/a", "/b"]);
/// ```
#[derive(Debug)]
pub struct ListRequest {
    state: ListState,
    config: Config,
    transmit: Vec<u8>,
    protocols: Vec<ProtocolId>,
}

impl ListRequest {
    /// A request whose header and `ls` are ready to send.
    pub fn new(config: Config) -> ListRequest {
        let mut transmit = Vec::new();
        Message::Header.encode(&mut transmit);
        Message::Ls.encode(&mut transmit);
        ListRequest {
            state: ListState::AwaitHeader,
            config,
            transmit,
            protocols: Vec::new(),
        }
    }

    /// Appends the bytes to send to `out`; returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.append(&mut self.transmit);
        true
    }

    /// Takes the listener's messages from the front of `input`; returns the bytes consumed.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, MultiselectError> {
        let mut used = 0;
        while matches!(self.state, ListState::AwaitHeader | ListState::AwaitList) {
            let rest = input.get(used..).unwrap_or_default();
            match self.step(rest) {
                Ok(Some(n)) => used = used.saturating_add(n),
                Ok(None) => break,
                Err(err) => {
                    self.state = ListState::Failed;
                    return Err(err);
                }
            }
        }
        Ok(used)
    }

    fn step(&mut self, input: &[u8]) -> Result<Option<usize>, MultiselectError> {
        if self.state == ListState::AwaitHeader {
            let Some((body, used)) = decode_frame(input, self.config.max_message_len)? else {
                return Ok(None);
            };
            match Message::parse(body)? {
                Message::Header => self.state = ListState::AwaitList,
                other => {
                    return Err(MultiselectError::BadHeader {
                        got: describe(&other),
                    });
                }
            }
            return Ok(Some(used));
        }
        let Some((body, used)) = decode_frame(input, self.config.max_list_len)? else {
            return Ok(None);
        };
        if let Ok(Message::Na) = Message::parse(body) {
            return Err(MultiselectError::UnexpectedMessage {
                expected: "the list of protocols (the listener does not support ls)",
                got: "na".to_owned(),
            });
        }
        self.protocols = parse_list(body)?;
        self.state = ListState::Done;
        Ok(Some(used))
    }

    /// The listener's protocols, once its reply is in.
    pub fn protocols(&self) -> Option<&[ProtocolId]> {
        (self.state == ListState::Done).then_some(self.protocols.as_slice())
    }

    /// Takes the listener's protocols out, once its reply is in.
    pub(crate) fn take_protocols(&mut self) -> Option<Vec<ProtocolId>> {
        (self.state == ListState::Done).then(|| std::mem::take(&mut self.protocols))
    }

    /// The largest message this request reads.
    pub(crate) fn max_message_len(&self) -> usize {
        self.config.max_message_len.max(self.config.max_list_len)
    }

    /// What the request waits for, for end-of-stream errors.
    pub(crate) fn waiting_for(&self) -> &'static str {
        match self.state {
            ListState::AwaitHeader => "the listener's multistream header",
            _ => "the listener's list of protocols",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&MultiselectError) -> bool;

    const HDR: &[u8] = b"\x13/multistream/1.0.0\n";

    fn dialer(protocols: &[&'static str], version: Version) -> (Dialer, Vec<u8>) {
        let mut d = Dialer::new(protocols.iter().copied(), version, Config::default()).unwrap();
        let mut out = Vec::new();
        assert!(d.poll_transmit(&mut out));
        assert!(!d.poll_transmit(&mut out));
        (d, out)
    }

    #[test]
    fn match_at_once() {
        let (mut d, out) = dialer(&["/a"], Version::V1);
        assert_eq!(out, [HDR, b"\x03/a\n"].concat());
        assert!(!d.is_lazy());
        let input = [HDR, b"\x03/a\n"].concat();
        assert_eq!(d.handle_input(&input).unwrap(), input.len());
        assert_eq!(d.selected().unwrap(), "/a");
        assert!(d.is_finished());
    }

    #[test]
    fn header_and_answer_may_arrive_apart() {
        let (mut d, _) = dialer(&["/a"], Version::V1);
        assert_eq!(d.handle_input(&HDR[..5]).unwrap(), 0);
        assert_eq!(d.handle_input(HDR).unwrap(), HDR.len());
        assert_eq!(d.selected(), None);
        assert_eq!(d.handle_input(b"\x03/a").unwrap(), 0);
        assert_eq!(d.handle_input(b"\x03/a\n").unwrap(), 4);
        assert_eq!(d.selected().unwrap(), "/a");
    }

    #[test]
    fn na_then_fallback() {
        let (mut d, _) = dialer(&["/a", "/b", "/c"], Version::V1);
        let input = [HDR, b"\x03na\n"].concat();
        assert_eq!(d.handle_input(&input).unwrap(), input.len());
        let mut out = Vec::new();
        assert!(d.poll_transmit(&mut out));
        assert_eq!(out, b"\x03/b\n");
        assert_eq!(d.handle_input(b"\x03na\n").unwrap(), 4);
        out.clear();
        d.poll_transmit(&mut out);
        assert_eq!(out, b"\x03/c\n");
        assert_eq!(d.proposed(), "/c");
        // Application data right behind the echo stays unconsumed.
        assert_eq!(d.handle_input(b"\x03/c\ndata").unwrap(), 4);
        assert_eq!(d.selected().unwrap(), "/c");
        // Finished: further input is not touched.
        assert_eq!(d.handle_input(b"\x03na\n").unwrap(), 0);
    }

    #[test]
    fn no_common_protocol_lists_every_offer() {
        let (mut d, _) = dialer(&["/a", "/b"], Version::V1);
        let input = [HDR, b"\x03na\n", b"\x03na\n"].concat();
        match d.handle_input(&input) {
            Err(MultiselectError::NoCommonProtocol { offered }) => {
                assert_eq!(offered, ["/a", "/b"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(d.is_finished());
        assert_eq!(d.selected(), None);
        assert_eq!(d.handle_input(&input).unwrap(), 0);
    }

    #[test]
    fn lazy_only_with_one_protocol() {
        assert!(dialer(&["/a"], Version::V1Lazy).0.is_lazy());
        assert!(!dialer(&["/a", "/b"], Version::V1Lazy).0.is_lazy());
        // A lazy dialer refused: no fallback.
        let (mut d, _) = dialer(&["/a"], Version::V1Lazy);
        let input = [HDR, b"\x03na\n"].concat();
        assert!(matches!(
            d.handle_input(&input),
            Err(MultiselectError::NoCommonProtocol { offered }) if offered == ["/a"]
        ));
    }

    #[test]
    fn bad_header() {
        let (mut d, _) = dialer(&["/a"], Version::V1);
        assert!(matches!(
            d.handle_input(b"\x03/a\n"),
            Err(MultiselectError::BadHeader { got }) if got == "/a"
        ));
        let (mut d, _) = dialer(&["/a"], Version::V1);
        assert!(matches!(
            d.handle_input(b"\x13/multistream/2.0.0\n"),
            Err(MultiselectError::BadHeader { .. })
        ));
    }

    #[test]
    fn unexpected_answers() {
        for answer in [&b"\x03/b\n"[..], b"\x03ls\n", HDR, b"\x04huh\n"] {
            let (mut d, _) = dialer(&["/a"], Version::V1);
            let input = [HDR, answer].concat();
            assert!(
                matches!(
                    d.handle_input(&input),
                    Err(MultiselectError::UnexpectedMessage { .. })
                ),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn bad_input() {
        let cases: [(&[u8], Check); 5] = [
            (&[0xff; 10], |e| {
                matches!(e, MultiselectError::InvalidLength(_))
            }),
            (&[0x81, 0x08], |e| {
                matches!(e, MultiselectError::MessageTooLong { len: 1025, .. })
            }),
            (b"\x03/a/", |e| {
                matches!(e, MultiselectError::MissingNewline)
            }),
            (b"\x03\xff\xfe\n", |e| {
                matches!(e, MultiselectError::NotUtf8)
            }),
            (b"\x00", |e| matches!(e, MultiselectError::MissingNewline)),
        ];
        for (input, check) in cases {
            let (mut d, _) = dialer(&["/a"], Version::V1);
            let err = d.handle_input(input).unwrap_err();
            assert!(check(&err), "{input:?}: {err:?}");
            assert!(d.is_finished());
        }
    }

    #[test]
    fn refuses_bad_proposals_up_front() {
        assert!(matches!(
            Dialer::new(Vec::<ProtocolId>::new(), Version::V1, Config::default()),
            Err(MultiselectError::NoCommonProtocol { offered }) if offered.is_empty()
        ));
        assert!(matches!(
            Dialer::new(["/a", "b"], Version::V1, Config::default()),
            Err(MultiselectError::InvalidProtocolId { .. })
        ));
        let long = format!("/{}", "x".repeat(2000));
        assert!(matches!(
            Dialer::new([long], Version::V1, Config::default()),
            Err(MultiselectError::InvalidProtocolId { .. })
        ));
        // The limit is a knob.
        assert!(
            Dialer::new(
                ["/abc"],
                Version::V1,
                Config::default().with_max_message_len(4)
            )
            .is_err()
        );
        assert!(
            Dialer::new(
                ["/abc"],
                Version::V1,
                Config::default().with_max_message_len(5)
            )
            .is_ok()
        );
    }

    #[test]
    fn ls_request() {
        let mut ls = ListRequest::new(Config::default());
        let mut out = Vec::new();
        assert!(ls.poll_transmit(&mut out));
        assert_eq!(out, [HDR, b"\x03ls\n"].concat());
        assert_eq!(ls.protocols(), None);
        let input = [HDR, b"\x09\x03/a\n\x03/b\n\n", b"extra"].concat();
        assert_eq!(ls.handle_input(&input).unwrap(), input.len() - 5);
        assert_eq!(ls.protocols().unwrap(), ["/a", "/b"]);
        assert_eq!(ls.take_protocols().unwrap(), ["/a", "/b"]);
    }

    #[test]
    fn ls_refused_or_malformed() {
        let mut ls = ListRequest::new(Config::default());
        let input = [HDR, b"\x03na\n"].concat();
        assert!(matches!(
            ls.handle_input(&input),
            Err(MultiselectError::UnexpectedMessage { .. })
        ));
        let mut ls = ListRequest::new(Config::default());
        assert!(matches!(
            ls.handle_input(b"\x03/a\n"),
            Err(MultiselectError::BadHeader { .. })
        ));
        let mut ls = ListRequest::new(Config::default().with_max_list_len(4));
        let input = [HDR, b"\x09\x03/a\n\x03/b\n\n"].concat();
        assert!(matches!(
            ls.handle_input(&input),
            Err(MultiselectError::MessageTooLong { len: 9, max: 4 })
        ));
    }
}
