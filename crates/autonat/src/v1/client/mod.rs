//! The AutoNAT v1 client side: the exchange with a v1 server and what its answer means.
//! [`AutonatClient`](crate::AutonatClient) runs it when no connected peer serves v2.

pub mod core;
pub mod service;
