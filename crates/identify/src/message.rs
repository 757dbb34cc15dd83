//! The identify message on the wire: encoding ours (within the size rust-libp2p reads) and
//! decoding theirs (length-prefixed messages until EOF, merged), sans-IO.

use bytes::BytesMut;
use lp2p_core::framing::{FrameDecoder, encode_frame};
use lp2p_core::{Multiaddr, ProtocolId, PublicKey};
use prost::Message;

use crate::IdentifyError;
use crate::proto::Identify as Pb;

/// What we tell a peer about ourselves.
#[derive(Debug, Clone)]
pub struct LocalInfo {
    /// e.g. "ipfs/0.1.0".
    pub protocol_version: String,
    /// e.g. "lp2p/0.1.0".
    pub agent_version: String,
    /// Our identity key.
    pub public_key: PublicKey,
    /// Our listen and external addresses, without `/p2p/`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Protocols we accept inbound streams for.
    pub protocols: Vec<ProtocolId>,
    /// The remote's address as we see it (none in a push).
    pub observed_addr: Option<Multiaddr>,
    /// Our signed peer record (an encoded envelope).
    pub signed_peer_record: Option<Vec<u8>>,
}

/// What [`encode_messages`] had to leave out to respect the size limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeReport {
    /// Messages written (1, or 2 when the signed record went into its own).
    pub messages: usize,
    /// Listen addresses left out of the plain field.
    pub dropped_addrs: usize,
    /// Protocols left out.
    pub dropped_protocols: usize,
    /// Whether the signed record was left out (it alone exceeded the limit).
    pub dropped_record: bool,
}

/// Appends `info` to `out` as length-prefixed `Identify` messages, none larger than
/// `max_len` bytes.
///
/// Everything goes in one message when it fits. Otherwise, as go-libp2p does, the first
/// message carries everything but the signed record and a second carries only the record
/// (a peer that reads one message, like rust-libp2p, still gets the essentials); the first is
/// then trimmed to fit, dropping addresses, then protocols, then the version strings, from
/// the end.
pub fn encode_messages(info: &LocalInfo, max_len: usize, out: &mut Vec<u8>) -> EncodeReport {
    let mut main = Pb {
        protocol_version: Some(info.protocol_version.clone()),
        agent_version: Some(info.agent_version.clone()),
        public_key: Some(info.public_key.encode_protobuf()),
        listen_addrs: info.listen_addrs.iter().map(Multiaddr::to_vec).collect(),
        observed_addr: info.observed_addr.as_ref().map(Multiaddr::to_vec),
        protocols: info
            .protocols
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        signed_peer_record: info.signed_peer_record.clone(),
    };
    let mut report = EncodeReport::default();
    if main.encoded_len() <= max_len {
        push_message(&main, out);
        report.messages = 1;
        return report;
    }
    let record = main.signed_peer_record.take();
    while main.encoded_len() > max_len {
        if main.listen_addrs.pop().is_some() {
            report.dropped_addrs += 1;
        } else if main.protocols.pop().is_some() {
            report.dropped_protocols += 1;
        } else if main.agent_version.take().is_none() && main.protocol_version.take().is_none() {
            break;
        }
    }
    push_message(&main, out);
    report.messages = 1;
    if let Some(record) = record {
        let only_record = Pb {
            signed_peer_record: Some(record),
            ..Pb::default()
        };
        if only_record.encoded_len() <= max_len {
            push_message(&only_record, out);
            report.messages = 2;
        } else {
            report.dropped_record = true;
        }
    }
    report
}

fn push_message(message: &Pb, out: &mut Vec<u8>) {
    encode_frame(&message.encode_to_vec(), out);
}

/// What a peer told us, decoded but not yet checked against the connection's peer (see
/// [`crate::verify()`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedIdentify {
    /// The protocol version, if sent.
    pub protocol_version: Option<String>,
    /// The agent version, if sent.
    pub agent_version: Option<String>,
    /// The public key, if sent.
    pub public_key: Option<PublicKey>,
    /// The listen addresses that decoded (see `invalid_addrs`).
    pub listen_addrs: Vec<Multiaddr>,
    /// Our address as the peer sees it, if sent and valid.
    pub observed_addr: Option<Multiaddr>,
    /// The protocols (empty ids dropped).
    pub protocols: Vec<ProtocolId>,
    /// The signed peer record (an encoded envelope), unverified.
    pub signed_peer_record: Option<Vec<u8>>,
    /// Listen addresses (and an observed address) that were not valid multiaddrs.
    pub invalid_addrs: usize,
    /// Protocol ids that were empty.
    pub invalid_protocols: usize,
}

/// Reads a peer's identify messages: bytes in, one merged message out at the end.
///
/// Each message is length-prefixed and at most `max_message_len` bytes; at most
/// `max_messages` may arrive; they are merged as protobuf merges (repeated fields append,
/// later values win), which is how go-libp2p's split answers are put back together.
#[derive(Debug)]
pub struct IdentifyDecoder {
    frames: FrameDecoder,
    buf: BytesMut,
    merged: Pb,
    messages: usize,
    max_messages: usize,
}

impl IdentifyDecoder {
    /// A decoder with the given limits.
    pub fn new(max_message_len: usize, max_messages: usize) -> IdentifyDecoder {
        IdentifyDecoder {
            frames: FrameDecoder::new(max_message_len),
            buf: BytesMut::new(),
            merged: Pb::default(),
            messages: 0,
            max_messages,
        }
    }

    /// Takes the next bytes from the stream. Complete messages are decoded and merged at
    /// once; an error means the exchange failed (nothing of it should be used).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), IdentifyError> {
        self.buf.extend_from_slice(bytes);
        while let Some(frame) = self.frames.decode(&mut self.buf).map_err(frame_error)? {
            if self.messages >= self.max_messages {
                return Err(IdentifyError::TooManyMessages {
                    max: self.max_messages,
                });
            }
            self.messages = self.messages.saturating_add(1);
            self.merged.merge(frame).map_err(IdentifyError::Malformed)?;
        }
        Ok(())
    }

    /// Messages decoded so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// The stream ended: the merged message, or an error if it ended inside a message or
    /// before any.
    pub fn finish(mut self) -> Result<ReceivedIdentify, IdentifyError> {
        if self
            .frames
            .decode_eof(&mut self.buf)
            .map_err(frame_error)?
            .is_some()
        {
            // `handle_input` takes every complete frame; reaching here means a caller fed
            // bytes after an error. Treat it as the truncated exchange it is.
            return Err(IdentifyError::Truncated);
        }
        if self.messages == 0 {
            return Err(IdentifyError::Empty);
        }
        received_from(self.merged)
    }
}

fn frame_error(err: lp2p_core::Error) -> IdentifyError {
    match err {
        lp2p_core::Error::FrameTooLarge { len, max } => IdentifyError::MessageTooLarge { len, max },
        lp2p_core::Error::UnexpectedEof { .. } => IdentifyError::Truncated,
        other => IdentifyError::InvalidLength(other),
    }
}

/// Decodes one whole `Identify` protobuf (no length prefix), as [`IdentifyDecoder`] does
/// for each message.
pub fn decode_message(bytes: &[u8]) -> Result<ReceivedIdentify, IdentifyError> {
    received_from(Pb::decode(bytes).map_err(IdentifyError::Malformed)?)
}

fn received_from(pb: Pb) -> Result<ReceivedIdentify, IdentifyError> {
    let public_key = pb
        .public_key
        .map(|k| PublicKey::try_decode_protobuf(&k))
        .transpose()
        .map_err(IdentifyError::InvalidPublicKey)?;
    let mut invalid_addrs = 0usize;
    let listen_addrs = pb
        .listen_addrs
        .into_iter()
        .filter_map(|bytes| {
            let parsed = Multiaddr::try_from(bytes).ok().filter(|a| !a.is_empty());
            if parsed.is_none() {
                invalid_addrs = invalid_addrs.saturating_add(1);
            }
            parsed
        })
        .collect();
    let observed_addr = pb.observed_addr.and_then(|bytes| {
        let parsed = Multiaddr::try_from(bytes).ok().filter(|a| !a.is_empty());
        if parsed.is_none() {
            invalid_addrs = invalid_addrs.saturating_add(1);
        }
        parsed
    });
    let mut invalid_protocols = 0usize;
    let protocols = pb
        .protocols
        .into_iter()
        .filter_map(|p| {
            if p.is_empty() {
                invalid_protocols = invalid_protocols.saturating_add(1);
                None
            } else {
                Some(ProtocolId::from(p))
            }
        })
        .collect();
    Ok(ReceivedIdentify {
        protocol_version: pb.protocol_version,
        agent_version: pb.agent_version,
        public_key,
        listen_addrs,
        observed_addr,
        protocols,
        signed_peer_record: pb.signed_peer_record,
        invalid_addrs,
        invalid_protocols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_MESSAGE_LEN, MAX_MESSAGES, MAX_SEND_MESSAGE_LEN};
    use lp2p_core::Keypair;

    fn info(addrs: usize, protocols: usize, record: Option<usize>) -> LocalInfo {
        LocalInfo {
            protocol_version: "ipfs/0.1.0".into(),
            agent_version: "lp2p/test".into(),
            public_key: Keypair::generate_ed25519().public(),
            listen_addrs: (0..addrs)
                .map(|i| {
                    format!("/ip4/10.0.{}.{}/tcp/{}", i / 250, i % 250, 4000 + i)
                        .parse()
                        .unwrap()
                })
                .collect(),
            protocols: (0..protocols)
                .map(|i| ProtocolId::from(format!("/test/protocol/number/{i}/1.0.0")))
                .collect(),
            observed_addr: Some("/ip4/192.0.2.9/tcp/5555".parse().unwrap()),
            signed_peer_record: record.map(|n| vec![0xab; n]),
        }
    }

    fn decode_all(wire: &[u8], chunk: usize) -> Result<ReceivedIdentify, IdentifyError> {
        let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
        for piece in wire.chunks(chunk.max(1)) {
            decoder.handle_input(piece)?;
        }
        decoder.finish()
    }

    fn frame_lengths(wire: &[u8]) -> Vec<usize> {
        let mut lens = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            let (len, after) = lp2p_core::varint::decode_prefix(rest).unwrap();
            let len = usize::try_from(len).unwrap();
            lens.push(len);
            rest = &after[len..];
        }
        lens
    }

    #[test]
    fn small_info_is_one_message_and_round_trips() {
        let local = info(3, 4, Some(200));
        let mut wire = Vec::new();
        let report = encode_messages(&local, MAX_SEND_MESSAGE_LEN, &mut wire);
        assert_eq!(
            report,
            EncodeReport {
                messages: 1,
                ..Default::default()
            }
        );
        for chunk in [1, 7, wire.len()] {
            let got = decode_all(&wire, chunk).unwrap();
            assert_eq!(got.protocol_version.as_deref(), Some("ipfs/0.1.0"));
            assert_eq!(got.agent_version.as_deref(), Some("lp2p/test"));
            assert_eq!(got.public_key.as_ref(), Some(&local.public_key));
            assert_eq!(got.listen_addrs, local.listen_addrs);
            assert_eq!(got.protocols, local.protocols);
            assert_eq!(got.observed_addr, local.observed_addr);
            assert_eq!(got.signed_peer_record, local.signed_peer_record);
        }
    }

    #[test]
    fn large_info_is_split_then_trimmed_within_the_limit() {
        // The record alone pushes it over: two messages, nothing dropped.
        let local = info(20, 10, Some(3900));
        let mut wire = Vec::new();
        let report = encode_messages(&local, MAX_SEND_MESSAGE_LEN, &mut wire);
        assert_eq!(report.messages, 2);
        assert_eq!((report.dropped_addrs, report.dropped_protocols), (0, 0));
        assert!(
            frame_lengths(&wire)
                .iter()
                .all(|&l| l <= MAX_SEND_MESSAGE_LEN)
        );
        let got = decode_all(&wire, 100).unwrap();
        assert_eq!(got.listen_addrs, local.listen_addrs);
        assert_eq!(got.signed_peer_record, local.signed_peer_record);

        // Far too many addresses: trimmed from the end, the record still whole.
        let local = info(400, 10, Some(1000));
        let mut wire = Vec::new();
        let report = encode_messages(&local, MAX_SEND_MESSAGE_LEN, &mut wire);
        assert_eq!(report.messages, 2);
        assert!(report.dropped_addrs > 0);
        assert!(
            frame_lengths(&wire)
                .iter()
                .all(|&l| l <= MAX_SEND_MESSAGE_LEN)
        );
        let got = decode_all(&wire, 4096).unwrap();
        assert_eq!(got.listen_addrs.len(), 400 - report.dropped_addrs);
        assert_eq!(
            got.listen_addrs[..],
            local.listen_addrs[..got.listen_addrs.len()]
        );
        assert_eq!(got.protocols, local.protocols);

        // A record too big on its own is left out.
        let local = info(1, 1, Some(5000));
        let mut wire = Vec::new();
        let report = encode_messages(&local, MAX_SEND_MESSAGE_LEN, &mut wire);
        assert!(report.dropped_record);
        assert_eq!(report.messages, 1);
        assert_eq!(decode_all(&wire, 64).unwrap().signed_peer_record, None);
    }

    #[test]
    fn merge_appends_repeated_and_later_scalars_win() {
        let first = Pb {
            agent_version: Some("old".into()),
            listen_addrs: vec!["/ip4/1.2.3.4/tcp/1".parse::<Multiaddr>().unwrap().to_vec()],
            protocols: vec!["/a".into()],
            ..Pb::default()
        };
        let second = Pb {
            agent_version: Some("new".into()),
            listen_addrs: vec!["/ip4/1.2.3.4/tcp/2".parse::<Multiaddr>().unwrap().to_vec()],
            protocols: vec!["/b".into()],
            ..Pb::default()
        };
        let mut wire = Vec::new();
        push_message(&first, &mut wire);
        push_message(&second, &mut wire);
        let got = decode_all(&wire, 3).unwrap();
        assert_eq!(got.agent_version.as_deref(), Some("new"));
        assert_eq!(got.listen_addrs.len(), 2);
        assert_eq!(
            got.protocols,
            vec![ProtocolId::from("/a"), ProtocolId::from("/b")]
        );
    }

    #[test]
    fn oversized_message_is_refused_before_its_body() {
        let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
        let mut prefix = Vec::new();
        lp2p_core::varint::encode_into((MAX_MESSAGE_LEN + 1) as u64, &mut prefix);
        assert!(matches!(
            decoder.handle_input(&prefix),
            Err(IdentifyError::MessageTooLarge { len, max: MAX_MESSAGE_LEN }) if len == (MAX_MESSAGE_LEN + 1) as u64
        ));
        // Exactly at the limit is fine.
        let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
        let big = Pb {
            agent_version: Some("x".repeat(MAX_MESSAGE_LEN - 3)),
            ..Pb::default()
        };
        assert_eq!(big.encoded_len(), MAX_MESSAGE_LEN);
        let mut wire = Vec::new();
        push_message(&big, &mut wire);
        decoder.handle_input(&wire).unwrap();
        assert_eq!(
            decoder.finish().unwrap().agent_version.unwrap().len(),
            MAX_MESSAGE_LEN - 3
        );
    }

    #[test]
    fn too_many_messages_are_refused() {
        let mut wire = Vec::new();
        for _ in 0..=MAX_MESSAGES {
            push_message(&Pb::default(), &mut wire);
        }
        assert!(matches!(
            decode_all(&wire, wire.len()),
            Err(IdentifyError::TooManyMessages { max: MAX_MESSAGES })
        ));
        wire.truncate(wire.len() - 1);
        assert!(decode_all(&wire, wire.len()).is_ok());
    }

    #[test]
    fn malformed_protobuf_is_an_error() {
        // Field 1 (publicKey, length-delimited) announcing more bytes than the message has.
        let mut wire = Vec::new();
        encode_frame(&[0x0a, 0x10, 0x01], &mut wire);
        assert!(matches!(
            decode_all(&wire, 1),
            Err(IdentifyError::Malformed(_))
        ));
        // A string field that is not UTF-8.
        let mut wire = Vec::new();
        encode_frame(&[0x1a, 0x02, 0xff, 0xfe], &mut wire);
        assert!(matches!(
            decode_all(&wire, 1),
            Err(IdentifyError::Malformed(_))
        ));
        // A public key that does not decode.
        let mut wire = Vec::new();
        encode_frame(&[0x0a, 0x02, 0x08, 0x01], &mut wire);
        assert!(matches!(
            decode_all(&wire, 1),
            Err(IdentifyError::InvalidPublicKey(_))
        ));
    }

    #[test]
    fn truncated_and_empty_streams_are_errors() {
        let mut wire = Vec::new();
        push_message(
            &Pb {
                agent_version: Some("abc".into()),
                ..Pb::default()
            },
            &mut wire,
        );
        assert!(matches!(
            decode_all(&wire[..wire.len() - 1], 2),
            Err(IdentifyError::Truncated)
        ));
        assert!(matches!(
            decode_all(&[0x80], 1),
            Err(IdentifyError::Truncated)
        ));
        assert!(matches!(decode_all(&[], 1), Err(IdentifyError::Empty)));
        // An overlong varint prefix.
        assert!(matches!(
            decode_all(&[0x80; 12], 12),
            Err(IdentifyError::InvalidLength(_))
        ));
    }

    #[test]
    fn invalid_addresses_and_protocols_are_dropped_and_counted() {
        let pb = Pb {
            listen_addrs: vec![
                vec![0xff, 0xff],
                "/ip4/1.2.3.4/tcp/1".parse::<Multiaddr>().unwrap().to_vec(),
                Vec::new(),
            ],
            observed_addr: Some(vec![0x04, 0x01]),
            protocols: vec![String::new(), "/ok".into()],
            ..Pb::default()
        };
        let got = decode_message(&pb.encode_to_vec()).unwrap();
        assert_eq!(
            got.listen_addrs,
            vec!["/ip4/1.2.3.4/tcp/1".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(got.observed_addr, None);
        assert_eq!(got.invalid_addrs, 3);
        assert_eq!(got.protocols, vec![ProtocolId::from("/ok")]);
        assert_eq!(got.invalid_protocols, 1);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // Field 15 (varint) and field 9 (bytes) are not in the schema.
        let mut body = vec![0x78, 0x05, 0x4a, 0x01, 0x00];
        body.extend(
            Pb {
                agent_version: Some("a".into()),
                ..Pb::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(
            decode_message(&body).unwrap().agent_version.as_deref(),
            Some("a")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn decode_chunked(wire: &[u8], chunk: usize) -> Result<ReceivedIdentify, String> {
            let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
            for piece in wire.chunks(chunk.max(1)) {
                decoder.handle_input(piece).map_err(|e| e.to_string())?;
            }
            decoder.finish().map_err(|e| e.to_string())
        }

        proptest! {
            /// Arbitrary bytes, cut anywhere: an answer or an error, never a panic, and the
            /// same outcome however the bytes arrive.
            #[test]
            fn arbitrary_input_is_handled_the_same_in_any_chunks(
                bytes in proptest::collection::vec(any::<u8>(), 0..3000),
                chunk in 1usize..300,
            ) {
                let whole = decode_chunked(&bytes, bytes.len().max(1));
                let pieces = decode_chunked(&bytes, chunk);
                prop_assert_eq!(whole.is_ok(), pieces.is_ok());
                if let (Ok(a), Ok(b)) = (whole, pieces) {
                    prop_assert_eq!(a, b);
                }
            }

            /// Whatever we encode (any sizes, split or trimmed to fit) decodes to what was
            /// kept, and every message respects the send limit.
            #[test]
            fn encoded_answers_decode_within_the_limit(
                addrs in 0usize..300,
                protocols in 0usize..150,
                record in proptest::option::of(0usize..5000),
                chunk in 1usize..700,
            ) {
                let local = info(addrs, protocols, record);
                let mut wire = Vec::new();
                let report = encode_messages(&local, MAX_SEND_MESSAGE_LEN, &mut wire);
                prop_assert!(frame_lengths(&wire).iter().all(|&l| l <= MAX_SEND_MESSAGE_LEN));
                let got = decode_chunked(&wire, chunk).unwrap();
                prop_assert_eq!(got.listen_addrs.len(), addrs - report.dropped_addrs);
                prop_assert_eq!(got.protocols.len(), protocols - report.dropped_protocols);
                prop_assert_eq!(
                    got.signed_peer_record.is_some(),
                    record.is_some() && !report.dropped_record
                );
                prop_assert_eq!(got.public_key.as_ref(), Some(&local.public_key));
            }
        }
    }
}
