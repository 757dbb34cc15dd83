//! The AutoNAT v2 server: dials clients back on the address they ask about.

pub mod core;
pub mod service;
