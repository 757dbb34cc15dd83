//! The AutoNAT v1 server: dials clients back on the addresses they ask about, if those are
//! on the IP it sees them on.

pub mod core;
pub mod service;
