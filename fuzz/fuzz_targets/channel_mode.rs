//! Channel MODE strings against one small room; see
//! `rookery::fuzzing::room_modes` for the input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = rookery::fuzzing::room_modes::run(data) {
        panic!("{error}");
    }
});
