//! Fuzz target: see `harness::fixture` for the input format and the invariants.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fixture(data));
