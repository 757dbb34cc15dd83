//! The protobuf messages, generated from `proto/autonat_v2.proto` by the build script.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/autonat.v2.rs"));
