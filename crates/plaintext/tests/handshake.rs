//! The plaintext upgrader over in-memory connections, against itself and scripted peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Connection, Error, Keypair, SecurityUpgrader, UpgradeContext, varint};
use lp2p_plaintext::{Config, PROTOCOL_ID, Plaintext, PlaintextError};
use lp2p_testkit::io::pipe;
use lp2p_testkit::{SimHandle, run};

/// An upgrade context on the simulation's runtime: handshake timeouts run in virtual time.
fn ctx(sim: &SimHandle, key: &Keypair) -> UpgradeContext {
    UpgradeContext::new(key.clone(), sim.runtime().clone())
}

/// An exchange message, encoded by hand (field 1: id, field 2: pubkey) so the tests do not
/// share the crate's encoder.
fn exchange(id: &[u8], pubkey: &[u8]) -> Vec<u8> {
    let mut body = vec![0x0a];
    varint::encode_into(id.len() as u64, &mut body);
    body.extend_from_slice(id);
    body.push(0x12);
    varint::encode_into(pubkey.len() as u64, &mut body);
    body.extend_from_slice(pubkey);
    let mut framed = Vec::new();
    varint::encode_into(body.len() as u64, &mut framed);
    framed.extend_from_slice(&body);
    framed
}

fn valid_exchange(key: &Keypair) -> Vec<u8> {
    exchange(
        &key.public().to_peer_id().to_bytes(),
        &key.public().encode_protobuf(),
    )
}

/// The plaintext error inside a core error, if any.
fn plaintext_error(err: &Error) -> Option<&PlaintextError> {
    match err {
        Error::Security { protocol, source } => {
            assert_eq!(*protocol, PROTOCOL_ID);
            source.downcast_ref::<PlaintextError>()
        }
        _ => None,
    }
}

#[test]
fn happy_path_both_roles_then_data_both_ways() {
    run(|sim| async move {
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = pipe();
        let upgrader = Plaintext::new();
        assert_eq!(upgrader.protocol_id(), "/plaintext/2.0.0");
        let (actx, bctx) = (ctx(&sim, &alice), ctx(&sim, &bob));
        let (out, inb) = futures::join!(
            upgrader.secure_outbound(Box::new(a), &actx, Some(bob.public().to_peer_id())),
            upgrader.secure_inbound(Box::new(b), &bctx),
        );
        let (mut out, mut inb) = (out.unwrap(), inb.unwrap());
        assert_eq!(out.remote_peer(), bob.public().to_peer_id());
        assert_eq!(out.remote_key(), &bob.public());
        assert_eq!(inb.remote_peer(), alice.public().to_peer_id());
        assert_eq!(out.protocol(), PROTOCOL_ID);
        assert_eq!(out.remote_addr(), "/memory/2".parse().unwrap());

        out.write_all(b"to bob").await.unwrap();
        let mut buf = [0u8; 6];
        inb.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"to bob");
        inb.write_all(b"to alice").await.unwrap();
        let mut buf = [0u8; 8];
        out.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"to alice");
    });
}

#[test]
fn dialing_without_an_expected_peer_learns_it() {
    run(|sim| async move {
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = pipe();
        let (actx, bctx) = (ctx(&sim, &alice), ctx(&sim, &bob));
        let p = Plaintext::new();
        let (out, inb) = futures::join!(
            p.secure_outbound(Box::new(a), &actx, None),
            p.secure_inbound(Box::new(b), &bctx),
        );
        assert_eq!(out.unwrap().remote_peer(), bob.public().to_peer_id());
        assert_eq!(inb.unwrap().remote_peer(), alice.public().to_peer_id());
    });
}

#[test]
fn bytes_right_behind_the_exchange_are_kept() {
    run(|sim| async move {
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, mut b) = pipe();
        // The remote sends its exchange and data in one write.
        let mut first = valid_exchange(&bob);
        first.extend_from_slice(b"early data");
        b.write_all(&first).await.unwrap();
        let mut conn = Plaintext::new()
            .secure_outbound(
                Box::new(a),
                &ctx(&sim, &alice),
                Some(bob.public().to_peer_id()),
            )
            .await
            .unwrap();
        let mut buf = [0u8; 10];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"early data");
        // And our exchange reached the remote.
        let mut ours = vec![0u8; valid_exchange(&alice).len()];
        b.read_exact(&mut ours).await.unwrap();
        assert_eq!(ours, valid_exchange(&alice));
    });
}

/// Runs our side (inbound, or outbound expecting `expected`) against a remote that sends
/// `remote` and then either closes or stays open.
fn against_script(
    remote: Vec<u8>,
    close: bool,
    expected: Option<lp2p_core::PeerId>,
    config: Config,
) -> Error {
    run(|sim| async move {
        let local = Keypair::generate_ed25519();
        let (a, mut b) = pipe();
        b.write_all(&remote).await.unwrap();
        if close {
            b.close().await.unwrap();
        }
        let upgrader = Plaintext::with_config(config);
        let result = if expected.is_some() {
            upgrader
                .secure_outbound(Box::new(a), &ctx(&sim, &local), expected)
                .await
        } else {
            upgrader
                .secure_inbound(Box::new(a), &ctx(&sim, &local))
                .await
        };
        drop(b);
        result.unwrap_err()
    })
}

#[test]
fn key_and_id_mismatch() {
    let (claimed, actual) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let remote = exchange(
        &claimed.public().to_peer_id().to_bytes(),
        &actual.public().encode_protobuf(),
    );
    let err = against_script(remote, false, None, Config::default());
    match plaintext_error(&err) {
        Some(PlaintextError::IdMismatch {
            claimed: c,
            derived: d,
        }) => {
            assert_eq!(**c, claimed.public().to_peer_id());
            assert_eq!(**d, actual.public().to_peer_id());
        }
        other => panic!("unexpected {other:?} from {err:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("/plaintext/2.0.0"), "{text}");
}

#[test]
fn expected_peer_mismatch() {
    let (remote, wanted) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let err = against_script(
        valid_exchange(&remote),
        false,
        Some(wanted.public().to_peer_id()),
        Config::default(),
    );
    match err {
        Error::PeerIdMismatch { expected, actual } => {
            assert_eq!(*expected, wanted.public().to_peer_id());
            assert_eq!(*actual, remote.public().to_peer_id());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn garbage_instead_of_protobuf() {
    let err = against_script(
        b"\x06\xff\xff\xff\xff\xff\xff".to_vec(),
        false,
        None,
        Config::default(),
    );
    assert!(
        matches!(plaintext_error(&err), Some(PlaintextError::Decode(_))),
        "{err:?}"
    );
}

#[test]
fn oversized_exchange() {
    // 1 MiB announced; refused on the prefix alone.
    let mut remote = Vec::new();
    varint::encode_into(1 << 20, &mut remote);
    let err = against_script(remote, false, None, Config::default());
    assert!(
        matches!(
            plaintext_error(&err),
            Some(PlaintextError::ExchangeTooLarge {
                len: 1_048_576,
                max: 4096
            })
        ),
        "{err:?}"
    );
    // The limit is a knob.
    let key = Keypair::generate_ed25519();
    let err = against_script(
        valid_exchange(&key),
        false,
        None,
        Config::default().with_max_exchange_len(16),
    );
    assert!(matches!(
        plaintext_error(&err),
        Some(PlaintextError::ExchangeTooLarge { max: 16, .. })
    ));
}

#[test]
fn truncated_exchange() {
    let key = Keypair::generate_ed25519();
    let full = valid_exchange(&key);
    let err = against_script(full[..30].to_vec(), true, None, Config::default());
    assert!(
        matches!(
            plaintext_error(&err),
            Some(PlaintextError::ConnectionClosed { received: 30 })
        ),
        "{err:?}"
    );
}

#[test]
fn remote_closes_mid_handshake() {
    let err = against_script(Vec::new(), true, None, Config::default());
    assert!(
        matches!(
            plaintext_error(&err),
            Some(PlaintextError::ConnectionClosed { received: 0 })
        ),
        "{err:?}"
    );
    // Inside the length prefix.
    let err = against_script(vec![0x80], true, None, Config::default());
    assert!(matches!(
        plaintext_error(&err),
        Some(PlaintextError::ConnectionClosed { received: 1 })
    ));
}

#[test]
fn timeout_when_the_remote_stays_silent() {
    let config = Config::default().with_handshake_timeout(Duration::from_millis(200));
    let err = against_script(Vec::new(), false, None, config);
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
}

#[test]
fn default_config() {
    let p = Plaintext::new();
    assert_eq!(p.config().handshake_timeout, Duration::from_secs(10));
    assert_eq!(p.config().max_exchange_len, 4096);
}
