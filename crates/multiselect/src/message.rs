//! The message codec: every message is `uvarint(len(text) + 1) || text || '\n'`.
//!
//! Decoding is a checked view: [`decode_frame`] finds one whole message at the front of a
//! byte slice (or says more bytes are needed) after checking its length against the limit,
//! and [`Message::parse`] classifies the body. Neither allocates or panics, whatever the
//! bytes.
//!
//! ```
//! use lp2p_multiselect::message::{decode_frame, encode_message, Message};
//!
//! let mut wire = Vec::new();
//! encode_message("/noise", &mut wire);
//! assert_eq!(wire, b"\x07/noise\n");
//!
//! let (body, used) = decode_frame(&wire, 1024).unwrap().unwrap();
//! assert_eq!(used, wire.len());
//! assert_eq!(Message::parse(body).unwrap(), Message::Protocol("/noise"));
//! ```

use lp2p_core::{ProtocolId, varint};

use crate::MultiselectError;
use crate::error::quote;

/// The multistream-select 1.0.0 header, the first message each side sends.
pub const HEADER: &str = "/multistream/1.0.0";
/// The header's length on the wire: one length byte, the text and the newline.
pub(crate) const HEADER_FRAME_LEN: usize = HEADER.len() + 2;
/// The listener's answer to a proposal it does not support.
pub const NA: &str = "na";
/// A dialer's request for the listener's list of protocols.
pub const LS: &str = "ls";

/// One multistream-select message, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `/multistream/1.0.0`.
    Header,
    /// `na`: the proposal is not available.
    Na,
    /// `ls`: list your protocols.
    Ls,
    /// A protocol id: a dialer's proposal or a listener's acceptance echo.
    Protocol(&'a str),
    /// Well-formed text that is none of the above (never valid in a negotiation, kept so
    /// errors can say what arrived).
    Other(&'a str),
}

impl<'a> Message<'a> {
    /// Classifies a message body (the bytes after the length prefix, newline included).
    ///
    /// Fails when the body does not end with a newline, is not UTF-8, or looks like a
    /// protocol id (starts with `/`) but holds another newline.
    pub fn parse(body: &'a [u8]) -> Result<Message<'a>, MultiselectError> {
        let Some((&b'\n', text)) = body.split_last() else {
            return Err(MultiselectError::MissingNewline);
        };
        let text = std::str::from_utf8(text).map_err(|_| MultiselectError::NotUtf8)?;
        Ok(match text {
            HEADER => Message::Header,
            NA => Message::Na,
            LS => Message::Ls,
            _ if text.starts_with('/') => {
                if text.contains('\n') {
                    return Err(MultiselectError::InvalidProtocolId {
                        id: quote(text),
                        reason: "it contains a newline",
                    });
                }
                Message::Protocol(text)
            }
            _ => Message::Other(text),
        })
    }

    /// The message's text, without the newline.
    pub fn text(&self) -> &'a str {
        match self {
            Message::Header => HEADER,
            Message::Na => NA,
            Message::Ls => LS,
            Message::Protocol(text) | Message::Other(text) => text,
        }
    }

    /// Appends the framed message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_message(self.text(), out);
    }
}

/// Appends `uvarint(len(text) + 1) || text || '\n'` to `out`.
pub fn encode_message(text: &str, out: &mut Vec<u8>) {
    let body_len = text.len().saturating_add(1);
    out.reserve(varint::encoded_len(body_len as u64).saturating_add(body_len));
    varint::encode_into(body_len as u64, out);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Finds one whole message at the front of `input`.
///
/// Returns the body (newline included) and the number of bytes the message takes, or
/// `Ok(None)` when `input` ends before the message does. The announced length is checked
/// against `max_len` as soon as the prefix is complete, before any body byte is waited for.
pub fn decode_frame(
    input: &[u8],
    max_len: usize,
) -> Result<Option<(&[u8], usize)>, MultiselectError> {
    let Some((len, prefix_len)) = varint::decode(input).map_err(MultiselectError::InvalidLength)?
    else {
        return Ok(None);
    };
    let body_len = usize::try_from(len)
        .ok()
        .filter(|&body_len| body_len <= max_len)
        .ok_or(MultiselectError::MessageTooLong { len, max: max_len })?;
    let end = prefix_len.saturating_add(body_len);
    Ok(input.get(prefix_len..end).map(|body| (body, end)))
}

/// Checks that `id` can be sent as a protocol id: it starts with `/`, holds no newline, is
/// not the multistream header itself, and fits a message of `max_message_len` bytes.
pub fn validate_protocol_id(id: &str, max_message_len: usize) -> Result<(), MultiselectError> {
    let reason = if !id.starts_with('/') {
        "it must start with '/'"
    } else if id.contains('\n') {
        "it contains a newline"
    } else if id == HEADER {
        "it is the multistream header"
    } else if id.len() >= max_message_len {
        "it does not fit the message length limit"
    } else {
        return Ok(());
    };
    Err(MultiselectError::InvalidProtocolId {
        id: quote(id),
        reason,
    })
}

/// Appends the `ls` reply listing `ids` to `out`: one message whose body is every id framed
/// as a message, then a newline.
///
/// Ids that are not valid protocol ids are left out, and so are the ids that would make the
/// body longer than `max_list_len`. Returns how many ids were listed.
pub fn encode_list(ids: &[ProtocolId], max_list_len: usize, out: &mut Vec<u8>) -> usize {
    // One byte for the final newline; then as many entries as fit.
    let mut body_len: usize = 1;
    let mut listed: usize = 0;
    for id in ids {
        if validate_protocol_id(id.as_str(), max_list_len).is_err() {
            tracing::warn!(protocol = %id, "not listing an invalid protocol id");
            continue;
        }
        let entry_len = id.len().saturating_add(1);
        let framed = varint::encoded_len(entry_len as u64).saturating_add(entry_len);
        if body_len.saturating_add(framed) > max_list_len {
            tracing::warn!(
                listed,
                max_list_len,
                "ls reply cut short at the length limit"
            );
            break;
        }
        body_len = body_len.saturating_add(framed);
        listed = listed.saturating_add(1);
    }
    out.reserve(varint::MAX_LEN.saturating_add(body_len));
    varint::encode_into(body_len as u64, out);
    ids.iter()
        .filter(|id| validate_protocol_id(id.as_str(), max_list_len).is_ok())
        .take(listed)
        .for_each(|id| encode_message(id.as_str(), out));
    out.push(b'\n');
    listed
}

/// Parses the body of an `ls` reply into its protocol ids.
pub fn parse_list(body: &[u8]) -> Result<Vec<ProtocolId>, MultiselectError> {
    let Some((&b'\n', mut rest)) = body.split_last() else {
        return Err(MultiselectError::MissingNewline);
    };
    let mut ids = Vec::new();
    while !rest.is_empty() {
        let Some((entry, used)) = decode_frame(rest, rest.len())? else {
            return Err(MultiselectError::InvalidLength(
                lp2p_core::Error::UnexpectedEof {
                    what: "ls reply entry",
                },
            ));
        };
        match Message::parse(entry)? {
            Message::Protocol(id) => ids.push(ProtocolId::from(id.to_owned())),
            other => {
                return Err(MultiselectError::InvalidProtocolId {
                    id: quote(other.text()),
                    reason: "it must start with '/'",
                });
            }
        }
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(ids)
}

/// Shortened text of a message for an error.
pub(crate) fn describe(message: &Message<'_>) -> String {
    quote(message.text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// wire-formats.md section 30.5.
    #[test]
    fn test_vectors() {
        let cases = [
            (HEADER, "13 2f6d756c746973747265616d2f312e302e30 0a"),
            (NA, "03 6e61 0a"),
            (LS, "03 6c73 0a"),
            ("/noise", "07 2f6e6f697365 0a"),
            ("/yamux/1.0.0", "0d 2f79616d75782f312e302e30 0a"),
            ("/mplex/6.7.0", "0d 2f6d706c65782f362e372e30 0a"),
            ("/plaintext/2.0.0", "11 2f706c61696e746578742f322e302e30 0a"),
            ("/ipfs/id/1.0.0", "0f 2f697066732f69642f312e302e30 0a"),
            ("/ipfs/ping/1.0.0", "11 2f697066732f70696e672f312e302e30 0a"),
            ("/meshsub/1.1.0", "0f 2f6d6573687375622f312e312e30 0a"),
        ];
        for (text, bytes) in cases {
            let mut out = Vec::new();
            encode_message(text, &mut out);
            assert_eq!(out, hex(bytes), "{text}");
            let (body, used) = decode_frame(&out, 1024).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert_eq!(Message::parse(body).unwrap().text(), text);
        }
        let mut first_packet = Vec::new();
        Message::Header.encode(&mut first_packet);
        Message::Protocol("/noise").encode(&mut first_packet);
        assert_eq!(
            first_packet,
            hex("132f6d756c746973747265616d2f312e302e300a072f6e6f6973650a")
        );
    }

    #[test]
    fn classifies_messages() {
        assert_eq!(Message::parse(b"na\n").unwrap(), Message::Na);
        assert_eq!(Message::parse(b"ls\n").unwrap(), Message::Ls);
        assert_eq!(
            Message::parse(b"/multistream/1.0.0\n").unwrap(),
            Message::Header
        );
        assert_eq!(Message::parse(b"/a\n").unwrap(), Message::Protocol("/a"));
        assert_eq!(Message::parse(b"hello\n").unwrap(), Message::Other("hello"));
        assert_eq!(Message::parse(b"\n").unwrap(), Message::Other(""));
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(
            Message::parse(b"/a"),
            Err(MultiselectError::MissingNewline)
        ));
        assert!(matches!(
            Message::parse(b""),
            Err(MultiselectError::MissingNewline)
        ));
        assert!(matches!(
            Message::parse(b"/\xff\xfe\n"),
            Err(MultiselectError::NotUtf8)
        ));
        assert!(matches!(
            Message::parse(b"/a\n/b\n"),
            Err(MultiselectError::InvalidProtocolId { .. })
        ));
    }

    #[test]
    fn frame_needs_more_bytes() {
        assert_eq!(decode_frame(&[], 10).unwrap(), None);
        assert_eq!(decode_frame(&[0x80], 1000).unwrap(), None);
        assert_eq!(decode_frame(b"\x03/a", 10).unwrap(), None);
        let (body, used) = decode_frame(b"\x03/a\nrest", 10).unwrap().unwrap();
        assert_eq!((body, used), (&b"/a\n"[..], 4));
    }

    #[test]
    fn frame_rejects_bad_lengths() {
        // Over the limit: refused as soon as the prefix is read, body or not.
        assert!(matches!(
            decode_frame(&[0x81, 0x08], 1024),
            Err(MultiselectError::MessageTooLong {
                len: 1025,
                max: 1024
            })
        ));
        // A huge announced length.
        assert!(matches!(
            decode_frame(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                1024
            ),
            Err(MultiselectError::MessageTooLong { .. })
        ));
        // Over-long varint.
        assert!(matches!(
            decode_frame(&[0xff; 10], 1024),
            Err(MultiselectError::InvalidLength(
                lp2p_core::Error::VarintOverflow
            ))
        ));
        // Not minimal.
        assert!(matches!(
            decode_frame(&[0x83, 0x00], 1024),
            Err(MultiselectError::InvalidLength(
                lp2p_core::Error::VarintNotMinimal
            ))
        ));
        // Exactly the limit is fine.
        let mut msg = Vec::new();
        encode_message(&format!("/{}", "a".repeat(1022)), &mut msg);
        assert!(decode_frame(&msg, 1024).unwrap().is_some());
    }

    #[test]
    fn validates_protocol_ids() {
        assert!(validate_protocol_id("/a/1.0.0", 1024).is_ok());
        for bad in ["", "a", "na", "/a\nb", HEADER] {
            assert!(
                matches!(
                    validate_protocol_id(bad, 1024),
                    Err(MultiselectError::InvalidProtocolId { .. })
                ),
                "{bad:?}"
            );
        }
        let longest = format!("/{}", "x".repeat(1022)); // 1023 bytes + newline = 1024
        assert!(validate_protocol_id(&longest, 1024).is_ok());
        let too_long = format!("/{}", "x".repeat(1023));
        assert!(matches!(
            validate_protocol_id(&too_long, 1024),
            Err(MultiselectError::InvalidProtocolId { reason, .. }) if reason.contains("limit")
        ));
    }

    #[test]
    fn list_roundtrip_matches_the_spec_layout() {
        let ids: Vec<ProtocolId> = vec!["/a".into(), "/bb".into()];
        let mut out = Vec::new();
        assert_eq!(encode_list(&ids, 1024, &mut out), 2);
        // uvarint(total) || 03 "/a\n" || 04 "/bb\n" || "\n"
        assert_eq!(out, b"\x0a\x03/a\n\x04/bb\n\n");
        let (body, used) = decode_frame(&out, 1024).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(parse_list(body).unwrap(), ids);

        let mut empty = Vec::new();
        assert_eq!(encode_list(&[], 1024, &mut empty), 0);
        assert_eq!(empty, b"\x01\n");
        assert!(parse_list(b"\n").unwrap().is_empty());
    }

    #[test]
    fn list_is_cut_at_the_limit_and_skips_invalid_ids() {
        let ids: Vec<ProtocolId> = vec!["/aaaa".into(), "bad".into(), "/bbbb".into()];
        let mut out = Vec::new();
        // Body: 1 (final newline) + 7 per entry. A limit of 10 leaves room for one.
        assert_eq!(encode_list(&ids, 10, &mut out), 1);
        let (body, _) = decode_frame(&out, 10).unwrap().unwrap();
        assert_eq!(parse_list(body).unwrap(), vec![ProtocolId::from("/aaaa")]);
    }

    #[test]
    fn list_rejects_bad_entries() {
        assert!(matches!(
            parse_list(b"\x03/a"),
            Err(MultiselectError::MissingNewline)
        ));
        // The last newline is the entry's own: the list's final newline is missing.
        assert!(matches!(
            parse_list(b"\x03/a\n"),
            Err(MultiselectError::InvalidLength(_))
        ));
        // An entry longer than the rest of the list.
        assert!(matches!(
            parse_list(b"\x05/a\n\n"),
            Err(MultiselectError::MessageTooLong { len: 5, max: 4 })
        ));
        assert!(matches!(
            parse_list(b"\x03na\n\n"),
            Err(MultiselectError::InvalidProtocolId { .. })
        ));
        assert!(matches!(
            parse_list(b"\x00\n"),
            Err(MultiselectError::MissingNewline)
        ));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..80) {
            if let Ok(Some((body, used))) = decode_frame(&bytes, max) {
                prop_assert!(body.len() <= max);
                prop_assert!(used <= bytes.len());
                let _ = Message::parse(body);
            }
            let _ = parse_list(&bytes);
        }

        #[test]
        fn messages_roundtrip(text in "/[a-zA-Z0-9/._-]{0,200}") {
            let mut out = Vec::new();
            encode_message(&text, &mut out);
            let (body, used) = decode_frame(&out, 1024).unwrap().unwrap();
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(Message::parse(body).unwrap().text(), text.as_str());
        }
    }
}
