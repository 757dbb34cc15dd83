//! The protobuf message, generated from `proto/holepunch.proto` by the build script.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/holepunch.pb.rs"));
