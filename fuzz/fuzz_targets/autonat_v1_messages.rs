//! The AutoNAT v1 decoders (the client's `Dial` and the server's `DialResponse`) never
//! panic on any input; a decoded message re-encodes to itself, a decoded request holds no
//! more addresses than the cap, and the v1 server's decision on whatever it decoded never
//! panics and only dials addresses on the observed IP that the request named.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use lp2p_autonat::v1::message::{DialRequest, DialResponse, MAX_ADDRS_PER_REQUEST};
use lp2p_autonat::v1::server::core::{Decision, V1ServerConfig, V1ServerCore};
use lp2p_core::Multiaddr;
use lp2p_core::addr::{first_ip, split_peer_id};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = DialRequest::decode(data) {
        assert!(req.addrs.len() <= MAX_ADDRS_PER_REQUEST);
        assert_eq!(DialRequest::decode(&req.encode()).ok(), Some(req.clone()));
        let observed: Multiaddr = "/ip4/8.8.8.8/tcp/1".parse().expect("addr");
        for config in [
            V1ServerConfig::default(),
            V1ServerConfig::default().allowing_private_addrs(),
        ] {
            let mut core = V1ServerCore::new(config);
            let decision = core.on_request(
                req.peer,
                req.peer,
                &observed,
                false,
                &req.addrs,
                |_| true,
                Instant::now(),
            );
            if let Decision::Dial(addrs) = decision {
                assert!(!addrs.is_empty());
                for a in &addrs {
                    assert_eq!(first_ip(a), first_ip(&observed));
                    assert!(req.addrs.iter().any(|r| split_peer_id(r).0 == *a));
                }
            }
        }
    }
    if let Ok(msg) = DialResponse::decode(data) {
        assert_eq!(DialResponse::decode(&msg.encode()).ok(), Some(msg));
    }
});
