//! Fuzz target: see `harness::reply_parser` for the input format and the invariants.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::reply_parser(data));
