//! The protobuf types generated from `proto/dht.proto` (prost).

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/dht.pb.rs"));
