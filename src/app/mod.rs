//! The `smtprobe` binary's implementation: the command line ([`cli`], [`args`]), the
//! batch runner ([`batch`]), `smtprobe demo` ([`demo`]), `smtprobe web` ([`web`]),
//! `smtprobe discover` and `check ADDRESS` ([`discover`]), and the exit codes
//! ([`exit`]).
//!
//! Compiled only with the default `cli` feature. It is **not** part of the embedding
//! API and is exempt from semver: a program that embeds the check uses the crate root
//! (`check`, `Config`, `Report`, …) and builds with `default-features = false`.
//!
//! It lives in the library rather than beside `src/main.rs` because `DESIGN.md` keeps
//! `main.rs` short and everything testable in the library: the integration tests drive
//! the web server and the demo in-process, and the benchmarks run the demo scenarios.

pub mod args;
pub mod batch;
pub mod cli;
pub mod demo;
pub mod discover;
pub mod exit;
pub mod fields;
pub mod password;
pub mod web;
