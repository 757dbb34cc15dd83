//! PubSub for lp2p: floodsub and gossipsub v1.1/v1.2 with peer scoring and validation.
//!
//! Work in progress: see the issue that builds this crate.
