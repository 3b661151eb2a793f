//! The IRC wire protocol: framing, parsing, serializing, and the small
//! vocabularies (numerics, casemapping, masks, mode letters, address
//! ranges) that every command needs.

pub mod casemap;
pub mod cidr;
pub mod framing;
pub mod mask;
pub mod message;
pub mod modes;
pub mod numeric;
pub mod serialize;
pub mod tags;
pub mod validate;

pub use casemap::{Casemapping, Folded};
pub use cidr::{AddressKey, Cidr};
pub use message::{Message, MessageRef, ParseError, Tag};
pub use serialize::Line;
