//! The AutoNAT v2 decoders (dial-request stream messages both ways, dial back and its
//! answer) never panic on any input; a decoded response re-encodes to itself, a decoded
//! request holds no more addresses than the cap, and the server's decision on whatever
//! addresses decoded never panics and only picks one of them.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use lp2p_autonat::message::{
    MAX_ADDRS_PER_REQUEST, Request, Response, decode_dial_back, decode_dial_back_response,
};
use lp2p_autonat::server::core::{Decision, Families, ServerConfig, ServerCore};
use lp2p_core::{Multiaddr, PeerId};

fuzz_target!(|data: &[u8]| {
    if let Ok(Request::Dial { addrs, .. }) = Request::decode(data) {
        assert!(addrs.len() <= MAX_ADDRS_PER_REQUEST);
        for config in [
            ServerConfig::default(),
            ServerConfig::default().allowing_private_addrs(),
        ] {
            let mut core = ServerCore::new(config);
            let observed: Multiaddr = "/ip4/8.8.8.8/tcp/1".parse().expect("addr");
            let decision = core.on_request(
                PeerId::random(),
                &observed,
                &addrs,
                |_| true,
                Families::BOTH,
                Instant::now(),
                |range| *range.start(),
            );
            if let Decision::Dial { idx, .. } = decision {
                assert!(addrs[idx as usize].is_some());
            }
        }
    }
    if let Ok(msg) = Response::decode(data) {
        assert_eq!(Response::decode(&msg.encode()).ok(), Some(msg));
    }
    let _ = decode_dial_back(data);
    let _ = decode_dial_back_response(data);
});
