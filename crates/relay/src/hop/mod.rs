//! The relay side (hop): reservations and circuits. [`core`] decides, [`service`] moves the
//! bytes.

pub mod core;
pub mod service;
