//! What the fuzz targets under `fuzz/` and the property tests drive, kept in
//! the library so both check the same properties. Not a stable API: it is
//! compiled only for tests and with the `fuzzing` feature.
//!
//! - [`wire`]: framing in arbitrary chunkings, and parse → serialize → parse.
//! - [`Harness`]: the core's test harness (`core::testing`), a
//!   [`State`](crate::core::State) driven without sockets; its `check`
//!   applies the invariants and checks every line it sent.
//! - [`script`]: fuzz bytes decoded into a small command vocabulary, so that
//!   nick and channel collisions are common.
//! - [`room_modes`]: fuzzed MODE strings against one small room.
//! - [`invariants`]: what must hold between any two events.

pub mod invariants;
pub mod room_modes;
pub mod script;
pub mod wire;

#[cfg(test)]
mod tests;

pub use crate::core::testing::Harness;
pub use invariants::{check_sent_line, invariants};
