//! Fuzz target: `shiftbench::fuzzing::model_yaml` on arbitrary bytes (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shiftbench::fuzzing::model_yaml(data);
});
