//! The varint decoder never panics, and what it accepts re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_core::varint;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((value, used))) = varint::decode(data) {
        let mut buf = varint::Buffer::default();
        assert_eq!(varint::encode(value, &mut buf), &data[..used]);
    }
});
