//! The length-prefixed frame decoder never panics and never yields a frame over its limit,
//! whatever bytes arrive and however they are split.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use lp2p_core::framing::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(split) * 4;
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    for chunk in rest.chunks(usize::from(split % 7) + 1) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => assert!(frame.len() <= max),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.decode_eof(&mut buf);
});
