//! Request-response round trips between two hosts in one process over memory + plaintext +
//! yamux (new stream, multistream-select, request, half-close, response, close), with the
//! length-prefixed codec; and the JSON and CBOR codecs alone on a small struct.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use lp2p_core::runtime::block_on;
use lp2p_host::Host;
use lp2p_memory::MemoryTransport;
use lp2p_plaintext::Plaintext;
use lp2p_request_response::{Codec, Config, LengthPrefixed, ProtocolSupport, RequestResponse};
use lp2p_yamux::Yamux;

const PROTOCOL: [(&str, ProtocolSupport); 1] = [("/bench/1", ProtocolSupport::Full)];

fn round_trip(c: &mut Criterion) {
    let build = || {
        Host::builder()
            .transport(MemoryTransport::default())
            .security(Plaintext::new())
            .muxer(Yamux::default())
    };
    let (server, client, service) = block_on(async {
        let server = build()
            .listen_on("/memory/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let answer = RequestResponse::new(
            &server,
            PROTOCOL,
            LengthPrefixed::default(),
            Config::default(),
        )
        .unwrap();
        answer.serve(|_, request: Vec<u8>| async move { Some(request) });
        let client = build().build().await.unwrap();
        let service = RequestResponse::new(
            &client,
            PROTOCOL,
            LengthPrefixed::default(),
            Config::default(),
        )
        .unwrap();
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();
        (server, client, service)
    });
    let peer = server.local_peer_id();
    for size in [32usize, 16 * 1024] {
        let request = vec![7u8; size];
        c.bench_function(
            &format!("request-response: {size} B each way, memory + plaintext + yamux"),
            |b| b.iter(|| block_on(service.send_request(&peer, request.clone())).unwrap()),
        );
    }
    block_on(async {
        client.close().await;
        server.close().await;
    });
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Sample {
    name: String,
    values: Vec<u64>,
    flag: bool,
}

fn codecs(c: &mut Criterion) {
    let sample = Sample {
        name: "a sample request".to_owned(),
        values: (0..32).collect(),
        flag: true,
    };
    #[cfg(feature = "json")]
    {
        let codec = lp2p_request_response::Json::<Sample, Sample>::default();
        c.bench_function("json codec: encode + decode", |b| {
            b.iter(|| {
                let mut wire = Vec::new();
                codec.encode_request(&sample, &mut wire).unwrap();
                codec.decode_request(&wire).unwrap()
            });
        });
    }
    #[cfg(feature = "cbor")]
    {
        let codec = lp2p_request_response::Cbor::<Sample, Sample>::default();
        c.bench_function("cbor codec: encode + decode", |b| {
            b.iter(|| {
                let mut wire = Vec::new();
                codec.encode_request(&sample, &mut wire).unwrap();
                codec.decode_request(&wire).unwrap()
            });
        });
    }
    let codec = LengthPrefixed::default();
    let bytes = vec![1u8; 1024];
    c.bench_function("length-prefixed codec: 1 KiB encode + decode", |b| {
        b.iter(|| {
            let mut wire = Vec::new();
            codec.encode_request(&bytes, &mut wire).unwrap();
            codec.decode_request(&wire).unwrap()
        });
    });
    let _ = &sample;
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = round_trip, codecs
}
criterion_main!(benches);
