//! Arbitrary bytes as the request head sent to the metrics endpoint: always an answer, never
//! a panic; only a GET or HEAD request line for /metrics is served.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_metrics::request::{Request, classify};

fuzz_target!(|data: &[u8]| {
    for complete in [true, false] {
        if classify(data, complete) == Request::Metrics {
            assert!(complete);
            assert!(data.starts_with(b"GET /metrics") || data.starts_with(b"HEAD /metrics"));
        }
    }
});
