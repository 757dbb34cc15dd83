//! The protocol ids of floodsub and each gossipsub version: named by the routers that speak
//! them and by [`PeerKind`](crate::PeerKind), which maps between the two.

/// The floodsub protocol id.
pub const FLOODSUB_PROTOCOL: &str = "/floodsub/1.0.0";

/// The gossipsub v1.2 protocol id.
pub const GOSSIPSUB_1_2_PROTOCOL: &str = "/meshsub/1.2.0";
/// The gossipsub v1.1 protocol id.
pub const GOSSIPSUB_1_1_PROTOCOL: &str = "/meshsub/1.1.0";
/// The gossipsub v1.0 protocol id.
pub const GOSSIPSUB_1_0_PROTOCOL: &str = "/meshsub/1.0.0";
