//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use lp2p_core::{Keypair, Role};
use lp2p_noise::{Handshake, HandshakeConfig, HandshakeOutcome, Step};

/// Two connected in-memory ends with `capacity` bytes of buffering each way.
pub use lp2p_testkit::io::pipe_with_capacity as pipe;

/// Runs a sans-IO handshake between fresh identities and returns both outcomes
/// (initiator, responder).
pub fn handshake_outcomes() -> (HandshakeOutcome, HandshakeOutcome) {
    let mut init = Handshake::new(
        Role::Initiator,
        Keypair::generate_ed25519(),
        HandshakeConfig::default(),
    );
    let mut resp = Handshake::new(
        Role::Responder,
        Keypair::generate_ed25519(),
        HandshakeConfig::default(),
    );
    let mut frame = Vec::new();
    while init.next_step() != Step::Done || resp.next_step() != Step::Done {
        let (writer, reader) = if init.next_step() == Step::Send {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        frame.clear();
        writer.write_message(&mut frame).unwrap();
        reader.read_message(&frame[2..]).unwrap();
    }
    (init.finish().unwrap(), resp.finish().unwrap())
}
