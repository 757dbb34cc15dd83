//! Arbitrary bytes as the opening handshake, both ways: a client's upgrade request read by
//! the server side, and a server's response read by the client side. Never a panic; an
//! accepted request's answer always parses back as an accepted response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_websocket::handshake::{ClientHandshake, parse_request, rejection_response};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(Some((request, len))) => {
            assert!(len <= data.len());
            let _ = request.accept_response();
        }
        Ok(None) => {}
        Err(rejection) => {
            let answer = rejection_response(&rejection);
            assert!(answer.starts_with(b"HTTP/1.1 4"));
        }
    }
    let client = ClientHandshake::new("127.0.0.1:1", "/", [7; 16]);
    if let Ok(Some(len)) = client.parse_response(data) {
        assert!(len <= data.len());
    }
});
