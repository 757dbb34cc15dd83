//! The libp2p handshake, fed fixed keys, reproduces the transcript of
//! `shared/docs/wire-formats.md` section 30.6 byte for byte, and agrees byte for byte with
//! `snow` run with the same keys (with and without the `stream_muxers` extension).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lp2p_core::{Keypair, PeerId, ProtocolId, Role};
use lp2p_noise::{Handshake, HandshakeConfig, HandshakeOutcome, Step};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Vector(serde_json::Value);

impl Vector {
    fn load() -> Vector {
        Vector(
            serde_json::from_str(include_str!("vectors/libp2p_handshake_transcript.json")).unwrap(),
        )
    }
    fn bytes(&self, field: &str) -> Vec<u8> {
        hex(self.0[field].as_str().unwrap())
    }
    fn key(&self, field: &str) -> [u8; 32] {
        self.bytes(field).try_into().unwrap()
    }
    fn identity(&self, field: &str) -> Keypair {
        Keypair::ed25519_from_bytes(self.bytes(field)).unwrap()
    }
    fn frames(&self) -> Vec<Vec<u8>> {
        self.0["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| hex(f.as_str().unwrap()))
            .collect()
    }
}

/// Runs both sides with the vector's keys; returns the frames and both outcomes.
fn run(v: &Vector, muxers: &[ProtocolId]) -> (Vec<Vec<u8>>, HandshakeOutcome, HandshakeOutcome) {
    let cfg = |expected: Option<PeerId>| HandshakeConfig {
        muxers: muxers.to_vec(),
        expected_peer: expected,
        ..HandshakeConfig::default()
    };
    let resp_id = v.identity("resp_identity_ed25519_seed");
    let mut init = Handshake::with_keys(
        Role::Initiator,
        v.identity("init_identity_ed25519_seed"),
        cfg(Some(resp_id.public().to_peer_id())),
        v.key("init_static"),
        v.key("init_ephemeral"),
    );
    let mut resp = Handshake::with_keys(
        Role::Responder,
        resp_id,
        cfg(None),
        v.key("resp_static"),
        v.key("resp_ephemeral"),
    );
    let mut frames = Vec::new();
    while init.next_step() != Step::Done || resp.next_step() != Step::Done {
        let (writer, reader) = if init.next_step() == Step::Send {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        let mut frame = Vec::new();
        writer.write_message(&mut frame).unwrap();
        reader.read_message(&frame[2..]).unwrap();
        frames.push(frame);
    }
    (frames, init.finish().unwrap(), resp.finish().unwrap())
}

#[test]
fn reproduces_the_libp2p_transcript_byte_for_byte() {
    let v = Vector::load();
    let init_id = v.identity("init_identity_ed25519_seed");
    let resp_id = v.identity("resp_identity_ed25519_seed");
    assert_eq!(
        init_id.public().to_peer_id().to_base58(),
        v.0["init_peer_id"].as_str().unwrap()
    );
    assert_eq!(
        resp_id.public().to_peer_id().to_base58(),
        v.0["resp_peer_id"].as_str().unwrap()
    );

    let (frames, init, resp) = run(&v, &[]);
    let expected = v.frames();
    assert_eq!(frames.len(), 3);
    for (i, (got, want)) in frames.iter().zip(&expected).enumerate() {
        assert_eq!(hex_of(got), hex_of(want), "frame {}", i + 1);
    }
    assert_eq!(init.handshake_hash.to_vec(), v.bytes("handshake_hash"));
    assert_eq!(resp.handshake_hash.to_vec(), v.bytes("handshake_hash"));
    assert_eq!(init.remote_key, resp_id.public());
    assert_eq!(resp.remote_key, init_id.public());
    assert_eq!(init.early_muxer, None);

    // The signatures of the vector are what each side signed.
    let domain = b"noise-libp2p-static-key:";
    let init_sig = init_id
        .sign(&[&domain[..], &v.bytes("init_static_public")].concat())
        .unwrap();
    assert_eq!(init_sig, v.bytes("init_identity_sig"));
    let resp_sig = resp_id
        .sign(&[&domain[..], &v.bytes("resp_static_public")].concat())
        .unwrap();
    assert_eq!(resp_sig, v.bytes("resp_identity_sig"));
}

fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn snow_side(role: Role, static_key: &[u8; 32], ephemeral: &[u8; 32]) -> snow::HandshakeState {
    let builder = snow::Builder::new("Noise_XX_25519_ChaChaPoly_SHA256".parse().unwrap())
        .local_private_key(static_key)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(ephemeral);
    match role {
        Role::Initiator => builder.build_initiator().unwrap(),
        Role::Responder => builder.build_responder().unwrap(),
    }
}

/// snow, with the same X25519 keys, reads each of our frames and, writing the payload it
/// read, produces the very same bytes; the handshake hashes and the transport ciphers agree.
fn cross_check_with_snow(muxers: &[ProtocolId]) {
    let v = Vector::load();
    let (frames, mut init, mut resp) = run(&v, muxers);
    let mut snow_init = snow_side(
        Role::Initiator,
        &v.key("init_static"),
        &v.key("init_ephemeral"),
    );
    let mut snow_resp = snow_side(
        Role::Responder,
        &v.key("resp_static"),
        &v.key("resp_ephemeral"),
    );
    let mut buf = vec![0u8; 65535];
    let mut payload = vec![0u8; 65535];
    for (i, frame) in frames.iter().enumerate() {
        let body = &frame[2..];
        let (reader, writer) = if i % 2 == 0 {
            (&mut snow_resp, &mut snow_init)
        } else {
            (&mut snow_init, &mut snow_resp)
        };
        let n = reader.read_message(body, &mut payload).unwrap();
        let m = writer.write_message(&payload[..n], &mut buf).unwrap();
        assert_eq!(&buf[..m], body, "message {} differs from snow's", i + 1);
    }
    assert_eq!(snow_init.get_handshake_hash(), &init.handshake_hash[..]);
    assert_eq!(snow_resp.get_handshake_hash(), &resp.handshake_hash[..]);
    assert_eq!(
        snow_init.get_remote_static().unwrap(),
        &v.bytes("resp_static_public")[..]
    );

    // Transport: each side's frames equal snow's for the same plaintext, both ways.
    let mut snow_init = snow_init.into_transport_mode().unwrap();
    let mut snow_resp = snow_resp.into_transport_mode().unwrap();
    let full = vec![9u8; 65519];
    for msg in [&b"first"[..], &[7u8; 1000][..], &full[..]] {
        // Our initiator -> snow's responder.
        assert_eq!(init.encoder.stage(msg).unwrap(), msg.len());
        init.encoder.seal().unwrap();
        let ours = init.encoder.pending_output().to_vec();
        init.encoder.advance(ours.len());
        let n = snow_init.write_message(msg, &mut buf).unwrap();
        assert_eq!(&ours[2..], &buf[..n]);
        let n = snow_resp.read_message(&ours[2..], &mut payload).unwrap();
        assert_eq!(&payload[..n], msg);

        // snow's responder -> our initiator; our responder writes the same frame.
        let n = snow_resp.write_message(msg, &mut buf).unwrap();
        let mut frame = u16::try_from(n).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&buf[..n]);
        assert_eq!(resp.encoder.stage(msg).unwrap(), msg.len());
        resp.encoder.seal().unwrap();
        assert_eq!(resp.encoder.pending_output(), &frame[..]);
        let sent = resp.encoder.pending_output().len();
        resp.encoder.advance(sent);
        assert_eq!(init.decoder.input(&frame), frame.len());
        assert!(init.decoder.decode().unwrap());
        assert_eq!(init.decoder.plaintext(), msg);
        init.decoder.consume(msg.len());
    }
}

#[test]
fn agrees_with_snow_without_extensions() {
    cross_check_with_snow(&[]);
}

#[test]
fn agrees_with_snow_with_stream_muxers() {
    cross_check_with_snow(&[
        ProtocolId::from_static("/yamux/1.0.0"),
        ProtocolId::from_static("/mplex/6.7.0"),
    ]);
}
