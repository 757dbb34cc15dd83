//! The AutoNAT v2 client: asks servers to dial its candidate addresses and keeps a verdict
//! per address.

pub mod core;
pub mod explain;
pub mod service;
