//! smtprobe: tells you exactly why your SMTP submission setup fails, and how to fix it.
//!
//! The library runs the SMTP submission conversation itself — connect, greeting, EHLO,
//! STARTTLS or implicit TLS, EHLO again, AUTH, optionally a test message, QUIT — and ends
//! with a verdict: the failing stage, a stable diagnosis code, the evidence and the fix.
//!
//! Layers (data flows down): [`cli`] → [`probe`] → [`transport`] → [`session`] →
//! [`protocol`]; [`transcript`], [`diagnosis`] and [`report`] describe the result.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let report = smtprobe::check(smtprobe::Config::new("smtp.gmail.com")).await?;
//! println!("{} {}", report.diagnosis.code, report.diagnosis.summary);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod batch;
pub mod certs;
pub mod cli;
pub mod demo;
pub mod diagnosis;
pub mod discover;
pub mod failure;
pub mod fixture;
pub mod message;
pub mod password;
pub mod probe;
pub mod protocol;
pub mod proxy;
pub mod replay;
pub mod report;
pub mod secret;
pub mod session;
pub mod stage;
pub mod transcript;
pub mod transport;
pub mod web;

pub use failure::{Failure, TlsMode};
pub use fixture::Fixture;
pub use probe::{check, Config};
pub use report::Report;
pub use secret::Secret;
pub use stage::Stage;
