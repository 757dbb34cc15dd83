//! The libp2p TLS certificate checks (X.509 parsing, the libp2p extension's SignedKey, the
//! host key protobuf, both signatures, the validity window) never panic, on arbitrary bytes
//! and on a valid certificate (the spec's Ed25519 vector) with bytes patched anywhere in it,
//! which reaches the deep checks that random bytes rarely get to. What verifies agrees with
//! the unchecked host-key extraction.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lp2p_tls::SignedKey;
use lp2p_tls::certificate::{self, SUPPORTED_SCHEMES};
use lp2p_tls::rustls::pki_types::UnixTime;

/// The spec's first test vector (Ed25519 host key, P-256 certificate key).
const VECTOR: &str = "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77";

fn vector() -> Vec<u8> {
    (0..VECTOR.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(VECTOR.get(i..i + 2)?, 16).ok())
        .collect()
}

fn check(der: &[u8]) {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_735_689_600));
    let verified = certificate::verify(der, now);
    let unchecked = certificate::host_key(der);
    if let Ok(verified) = &verified {
        let host_key = unchecked.expect("a verified certificate has a readable host key");
        assert_eq!(&host_key, verified.public_key());
        assert_eq!(host_key.to_peer_id(), verified.peer_id());
        for scheme in SUPPORTED_SCHEMES {
            let _ = verified.handshake_key().verify(scheme, b"message", der);
        }
    }
    if let Ok(key) = certificate::handshake_key(der) {
        let _ = key.verify(SUPPORTED_SCHEMES[0], der, der);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check(rest);
        if let Ok(key) = SignedKey::decode(rest) {
            assert_eq!(SignedKey::decode(&key.encode()).expect("re-encoded"), key);
        }
    } else {
        // (offset, byte) patches on the valid vector; a trailing odd byte truncates it.
        let mut der = vector();
        for patch in rest.chunks(3) {
            match *patch {
                [hi, lo, byte] => {
                    let at = usize::from(u16::from_be_bytes([hi, lo])) % der.len();
                    der[at] = byte;
                }
                [cut] | [cut, _] => der.truncate(usize::from(cut) * der.len() / 256),
                _ => {}
            }
        }
        check(&der);
    }
});
