//! Fuzz target: `shiftbench::fuzzing::predictions_log` on arbitrary bytes (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shiftbench::fuzzing::predictions_log(data);
});
