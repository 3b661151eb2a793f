//! Command sequences from several clients, invariants checked after each
//! step; see `rookery::fuzzing::script` for the input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = rookery::fuzzing::script::run(data) {
        panic!("{error}");
    }
});
