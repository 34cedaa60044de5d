//! Test fixture: a perfectly good shared library that exports no shiftbench root module.

#[no_mangle]
pub extern "C" fn not_a_plugin_answer() -> i32 {
    42
}
