//! Command handlers, one file per command family.

pub mod cap;
pub mod connection;
pub mod info;
pub mod invite;
pub mod join;
pub mod kick;
pub mod list;
pub mod message;
pub mod names;
pub mod part;
pub mod registration;
pub mod topic;
pub mod user_mode;
