//! Arbitrary bytes through the framer in arbitrary chunkings; every line
//! parsed, serialized back and parsed again.
//!
//! Input: one byte `n`, then `n % 8` chunk-size bytes, then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::fuzzing::wire::framing_and_parsing;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(usize::from(count % 8).min(rest.len()));
    // Squares spread the sizes from 1 byte to past the 4608-byte limit.
    let sizes: Vec<usize> = sizes
        .iter()
        .map(|&s| usize::from(s) * usize::from(s) / 8 + 1)
        .collect();
    if let Err(error) = framing_and_parsing(stream, &sizes) {
        panic!("{error}");
    }
});
