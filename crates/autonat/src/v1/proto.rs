//! The protobuf messages, generated from `proto/autonat_v1.proto` by the build script.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/autonat.v1.rs"));
