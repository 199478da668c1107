//! apnsblast
pub mod frame;
pub mod token;
