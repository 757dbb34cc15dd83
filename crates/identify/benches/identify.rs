//! Identify's per-exchange costs: encoding our answer (with a signed record), decoding a
//! peer's, verifying it (dominated by the Ed25519 check of the signed record), and signing a
//! new record (what an address change costs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lp2p_core::{Keypair, Multiaddr, ProtocolId};
use lp2p_identify::{
    IdentifyDecoder, LocalInfo, MAX_MESSAGE_LEN, MAX_MESSAGES, MAX_SEND_MESSAGE_LEN,
    message::encode_messages, verify,
};
use lp2p_peerstore::record::PeerRecord;

/// A typical answer: 4 addresses, 12 protocols, a signed record of the 4 addresses.
fn typical(key: &Keypair) -> LocalInfo {
    let addrs: Vec<Multiaddr> = (0..4)
        .map(|i| format!("/ip4/192.0.2.{i}/tcp/4001").parse().unwrap())
        .collect();
    let record = PeerRecord {
        peer_id: key.public().to_peer_id(),
        seq: 1,
        addresses: addrs.clone(),
    }
    .seal(key)
    .unwrap()
    .encode();
    LocalInfo {
        protocol_version: "ipfs/0.1.0".into(),
        agent_version: "lp2p/0.1.0".into(),
        public_key: key.public(),
        listen_addrs: addrs,
        protocols: (0..12)
            .map(|i| ProtocolId::from(format!("/proto/{i}/1.0.0")))
            .collect(),
        observed_addr: Some("/ip4/198.51.100.1/tcp/51234".parse().unwrap()),
        signed_peer_record: Some(record),
    }
}

fn bench(c: &mut Criterion) {
    let key = Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let info = typical(&key);
    let mut wire = Vec::new();
    encode_messages(&info, MAX_SEND_MESSAGE_LEN, &mut wire);

    c.bench_function("encode typical answer", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            black_box(encode_messages(
                black_box(&info),
                MAX_SEND_MESSAGE_LEN,
                &mut out,
            ));
        });
    });

    c.bench_function("decode typical answer", |b| {
        b.iter(|| {
            let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
            decoder.handle_input(black_box(&wire)).unwrap();
            black_box(decoder.finish().unwrap())
        });
    });

    c.bench_function("decode + verify typical answer (signed record)", |b| {
        b.iter(|| {
            let mut decoder = IdentifyDecoder::new(MAX_MESSAGE_LEN, MAX_MESSAGES);
            decoder.handle_input(black_box(&wire)).unwrap();
            let received = decoder.finish().unwrap();
            black_box(verify(received, &peer, None, None).unwrap())
        });
    });

    c.bench_function("sign a peer record (4 addresses)", |b| {
        let record = PeerRecord {
            peer_id: peer,
            seq: 2,
            addresses: info.listen_addrs.clone(),
        };
        b.iter(|| black_box(record.seal(&key).unwrap().encode()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
