//! Command handlers, one file per command family.

pub mod cap;
pub mod channel_mode;
pub mod connection;
pub mod info;
pub mod registration;
pub mod user_mode;
