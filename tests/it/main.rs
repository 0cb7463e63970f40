//! smtprobe's integration tests, linked as one binary (2-core CI: one link, not eleven).
//! Each module is one suite; `cargo test --test it MODULE::` runs one of them.

mod common;

mod batch;
mod check;
mod clients;
mod demo;
mod diagnoses;
mod discover;
mod fixtures;
mod fuzz_properties;
mod hostile;
mod parity;
mod real_mta;
mod redaction;
mod replay;
mod web;
