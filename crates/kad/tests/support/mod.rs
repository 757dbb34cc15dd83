//! Test support shared by the integration tests and the bench: the virtual-time network of
//! cores, and the hosts of the tests on real hosts.

// Each test crate uses a different part of it; the casts are on small simulation numbers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

pub mod hosts;
pub mod sim;
