//! The DCUtR decoder never panics on any input; a decoded message re-encodes to one that
//! decodes to the same value, and a `CONNECT` keeps at most the cap of addresses, of which
//! the selection for dialing keeps only usable ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lp2p_dcutr::core::{select, usable};
use lp2p_dcutr::message::{HolePunch, MAX_ADDRS};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = HolePunch::decode(data) {
        assert_eq!(HolePunch::decode(&msg.encode()).ok(), Some(msg.clone()));
        if let HolePunch::Connect(addrs) = msg {
            assert!(addrs.len() <= MAX_ADDRS);
            for allow_private in [false, true] {
                let chosen = select(addrs.clone(), allow_private);
                assert!(chosen.len() <= addrs.len());
                assert!(chosen.iter().all(|a| usable(a, allow_private)));
            }
        }
    }
});
