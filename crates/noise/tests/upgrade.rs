//! The `SecurityUpgrader` over in-memory connections: identities, the in-handshake muxer
//! agreement, peer id mismatch, and a remote that misbehaves during the handshake (closes,
//! stalls, sends oversized or garbage messages).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{
    Connection, Error, Keypair, PeerId, ProtocolId, RuntimeHandle, SecureConnection,
    SecurityUpgrader, UpgradeContext,
};
use lp2p_noise::{Noise, NoiseConfig, NoiseError, Stage};

use common::pipe;

fn ctx(muxers: &[&'static str]) -> UpgradeContext {
    UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
        .with_muxers(muxers.iter().map(|m| ProtocolId::from(*m)))
}

fn upgrade(
    dialer: &UpgradeContext,
    listener: &UpgradeContext,
    expected: Option<PeerId>,
) -> (
    Result<SecureConnection, Error>,
    Result<SecureConnection, Error>,
) {
    let (a, b) = pipe(64 * 1024);
    let noise = Noise::new();
    block_on(async {
        futures::join!(
            noise.secure_outbound(Box::new(a), dialer, expected),
            noise.secure_inbound(Box::new(b), listener)
        )
    })
}

/// The `NoiseError` inside an `Error::Security { protocol: "/noise", .. }`.
fn noise_error(err: &Error) -> &NoiseError {
    match err {
        Error::Security { protocol, source } => {
            assert_eq!(*protocol, "/noise");
            source
                .downcast_ref::<NoiseError>()
                .unwrap_or_else(|| panic!("not a NoiseError: {source:?}"))
        }
        other => panic!("not a security error: {other:?}"),
    }
}

#[test]
fn both_sides_learn_each_others_peer_id_and_exchange_data() {
    let (alice, bob) = (ctx(&[]), ctx(&[]));
    let (a, b) = upgrade(&alice, &bob, Some(bob.local_peer_id()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.remote_peer(), bob.local_peer_id());
    assert_eq!(b.remote_peer(), alice.local_peer_id());
    assert_eq!(a.protocol(), "/noise");
    assert_eq!(a.early_muxer(), None);
    assert_eq!(a.remote_addr().to_string(), "/memory/2");
    let (mut a, mut b) = (a.into_inner(), b.into_inner());
    let payload: Vec<u8> = (0..(3 << 20)).map(|i: u32| i.to_le_bytes()[1]).collect();
    block_on(async {
        let ab = async {
            a.write_all(&payload).await.unwrap();
            a.flush().await.unwrap();
            let mut back = vec![0u8; payload.len()];
            a.read_exact(&mut back).await.unwrap();
            assert!(back == payload);
        };
        let ba = async {
            let mut got = vec![0u8; payload.len()];
            b.read_exact(&mut got).await.unwrap();
            b.write_all(&got).await.unwrap();
            b.flush().await.unwrap();
        };
        futures::join!(ab, ba);
    });
}

#[test]
fn overlapping_muxer_lists_agree_on_the_initiators_first_choice() {
    let dialer = ctx(&["/mplex/6.7.0", "/yamux/1.0.0"]);
    let listener = ctx(&["/yamux/1.0.0", "/mplex/6.7.0"]);
    let (a, b) = upgrade(&dialer, &listener, None);
    assert_eq!(a.unwrap().early_muxer().unwrap(), "/mplex/6.7.0");
    assert_eq!(b.unwrap().early_muxer().unwrap(), "/mplex/6.7.0");
}

#[test]
fn no_overlap_or_a_missing_list_means_multistream_select() {
    for (d, l) in [
        (&["/yamux/1.0.0"][..], &["/mplex/6.7.0"][..]),
        (&[][..], &["/yamux/1.0.0"][..]),
        (&["/yamux/1.0.0"][..], &[][..]),
    ] {
        let (a, b) = upgrade(&ctx(d), &ctx(l), None);
        assert_eq!(a.unwrap().early_muxer(), None, "{d:?} / {l:?}");
        assert_eq!(b.unwrap().early_muxer(), None, "{d:?} / {l:?}");
    }
}

#[test]
fn dialing_the_wrong_peer_is_a_peer_id_mismatch() {
    let (alice, bob) = (ctx(&[]), ctx(&[]));
    let wrong = PeerId::random();
    let (a, b) = upgrade(&alice, &bob, Some(wrong));
    match a.unwrap_err() {
        Error::PeerIdMismatch { expected, actual } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, bob.local_peer_id());
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // The dialer stops before message 3: the listener sees the connection close.
    assert!(matches!(
        noise_error(&b.unwrap_err()),
        NoiseError::UnexpectedEof {
            stage: Stage::Message3
        }
    ));
}

#[test]
fn remote_closing_before_message_1_is_an_eof_at_message_1() {
    let (ours, theirs) = pipe(1024);
    drop(theirs);
    let err = block_on(Noise::new().secure_inbound(Box::new(ours), &ctx(&[]))).unwrap_err();
    assert!(matches!(
        noise_error(&err),
        NoiseError::UnexpectedEof {
            stage: Stage::Message1
        }
    ));
}

#[test]
fn remote_closing_after_message_1_is_an_eof_at_message_2() {
    let (ours, mut theirs) = pipe(1024);
    let (noise, ours_ctx) = (Noise::new(), ctx(&[]));
    let err = block_on(async {
        let peer = async {
            let mut msg1 = [0u8; 34];
            theirs.read_exact(&mut msg1).await.unwrap();
            assert_eq!(&msg1[..2], &[0, 32]);
            // Half a length prefix, then gone.
            theirs.write_all(&[0]).await.unwrap();
            theirs.close().await.unwrap();
            theirs
        };
        let (result, _peer) =
            futures::join!(noise.secure_outbound(Box::new(ours), &ours_ctx, None), peer);
        result.unwrap_err()
    });
    assert!(matches!(
        noise_error(&err),
        NoiseError::UnexpectedEof {
            stage: Stage::Message2
        }
    ));
}

#[test]
fn remote_closing_mid_message_is_an_eof() {
    let (ours, mut theirs) = pipe(1024);
    let err = block_on(async {
        theirs.write_all(&[0, 32, 1, 2, 3]).await.unwrap();
        theirs.close().await.unwrap();
        Noise::new()
            .secure_inbound(Box::new(ours), &ctx(&[]))
            .await
            .unwrap_err()
    });
    assert!(matches!(
        noise_error(&err),
        NoiseError::UnexpectedEof {
            stage: Stage::Message1
        }
    ));
}

#[test]
fn a_silent_remote_hits_the_handshake_timeout() {
    // In virtual time (lp2p-testkit): the 200 ms pass on the simulation's clock, exactly.
    let sim = lp2p_testkit::Sim::new();
    let (ours, _theirs) = pipe(1024);
    let noise =
        Noise::with_config(NoiseConfig::default().handshake_timeout(Duration::from_millis(200)));
    let ctx = UpgradeContext::new(Keypair::generate_ed25519(), sim.runtime());
    let err = sim
        .block_on(noise.secure_inbound(Box::new(ours), &ctx))
        .unwrap_err();
    assert!(
        matches!(noise_error(&err), NoiseError::Timeout(t) if *t == Duration::from_millis(200))
    );
    assert_eq!(sim.elapsed(), Duration::from_millis(200));
}

#[test]
fn an_oversized_message_is_refused_before_it_is_read() {
    let (ours, mut theirs) = pipe(1024);
    let noise = Noise::with_config(NoiseConfig::default().max_handshake_message_size(1024));
    let err = block_on(async {
        // Announce 65535 bytes and send none of them: we must not wait for them.
        theirs.write_all(&[0xff, 0xff]).await.unwrap();
        noise
            .secure_inbound(Box::new(ours), &ctx(&[]))
            .await
            .unwrap_err()
    });
    assert!(matches!(
        noise_error(&err),
        NoiseError::MessageTooLarge {
            stage: Stage::Message1,
            len: 65535,
            max: 1024
        }
    ));
}

#[test]
fn a_first_message_with_a_payload_gets_no_answer() {
    let (ours, mut theirs) = pipe(4096);
    let (err, answer) = block_on(async {
        // Frame: length 32 + 5, then an X25519 public key (any 32 bytes) and 5 payload bytes.
        let mut msg1 = vec![0u8, 37];
        msg1.extend_from_slice(&[9u8; 32]);
        msg1.extend_from_slice(b"hello");
        theirs.write_all(&msg1).await.unwrap();
        // A bounded wait: before the check existed, the listener answered and then waited for
        // message 3, so without the timeout this test would hang rather than fail.
        let err =
            Noise::with_config(NoiseConfig::default().handshake_timeout(Duration::from_secs(30)))
                .secure_inbound(Box::new(ours), &ctx(&[]))
                .await
                .unwrap_err();
        // Our side is dropped: whatever it wrote is readable, then EOF.
        let mut answer = Vec::new();
        theirs.read_to_end(&mut answer).await.unwrap();
        (err, answer)
    });
    assert!(
        matches!(
            noise_error(&err),
            NoiseError::UnexpectedPayload {
                stage: Stage::Message1,
                len: 5
            }
        ),
        "{err}"
    );
    assert!(answer.is_empty(), "answered with {} bytes", answer.len());
}

#[test]
fn a_garbage_message_2_is_a_typed_error() {
    let (ours, mut theirs) = pipe(4096);
    let (noise, ours_ctx) = (Noise::new(), ctx(&[]));
    let err = block_on(async {
        let peer = async {
            let mut msg1 = [0u8; 34];
            theirs.read_exact(&mut msg1).await.unwrap();
            let mut msg2 = vec![0, 200];
            msg2.extend((0..200u8).map(|i| i.wrapping_mul(7).wrapping_add(1)));
            theirs.write_all(&msg2).await.unwrap();
            theirs
        };
        let (result, _peer) =
            futures::join!(noise.secure_outbound(Box::new(ours), &ours_ctx, None), peer);
        result.unwrap_err()
    });
    assert!(matches!(
        noise_error(&err),
        NoiseError::Decrypt {
            stage: Stage::Message2
        }
    ));
}

#[test]
fn a_short_message_2_is_a_typed_error() {
    let (ours, mut theirs) = pipe(4096);
    let (noise, ours_ctx) = (Noise::new(), ctx(&[]));
    let err = block_on(async {
        let peer = async {
            let mut msg1 = [0u8; 34];
            theirs.read_exact(&mut msg1).await.unwrap();
            theirs.write_all(&[0, 40]).await.unwrap();
            theirs.write_all(&[9u8; 40]).await.unwrap();
            theirs
        };
        let (result, _peer) =
            futures::join!(noise.secure_outbound(Box::new(ours), &ours_ctx, None), peer);
        result.unwrap_err()
    });
    assert!(matches!(
        noise_error(&err),
        NoiseError::MessageTooShort {
            stage: Stage::Message2,
            len: 40,
            min: 96
        }
    ));
}

#[test]
fn a_reconnecting_peer_reuses_its_static_key_and_skips_the_signature_check() {
    let (alice, bob) = (ctx(&[]), ctx(&[]));
    let (dialer, listener) = (Noise::new(), Noise::new());
    let connect = |from: &UpgradeContext| {
        let (a, b) = pipe(64 * 1024);
        let (a, b) = block_on(async {
            futures::join!(
                dialer.secure_outbound(Box::new(a), from, Some(bob.local_peer_id())),
                listener.secure_inbound(Box::new(b), &bob)
            )
        });
        assert_eq!(b.unwrap().remote_peer(), from.local_peer_id());
        a.unwrap();
    };
    connect(&alice);
    assert_eq!(dialer.remote_statics().hits(), 0);
    connect(&alice);
    // Each side sent the same signed static key again, and each remembered the other's.
    assert_eq!(dialer.remote_statics().hits(), 1);
    assert_eq!(listener.remote_statics().hits(), 1);
    // Another identity on the dialer's upgrader signs a static key of its own.
    let carol = ctx(&[]);
    connect(&carol);
    assert_eq!(listener.remote_statics().hits(), 1);
    assert_eq!(dialer.remote_statics().hits(), 2);
}
