//! The protobuf messages, generated from `proto/relay.proto` by the build script.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/relay.pb.rs"));
