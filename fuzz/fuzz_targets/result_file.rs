//! Fuzz target: `shiftbench::fuzzing::result_file` on arbitrary bytes (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shiftbench::fuzzing::result_file(data);
});
