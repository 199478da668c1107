//! Apple's HTTP/2 provider API.

pub mod jwt;
pub mod key;
