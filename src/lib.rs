//! smtprobe: tells you exactly why your SMTP submission setup fails, and how to fix it.
#![warn(missing_docs)]

pub mod certs;
pub mod failure;
pub mod fixture;
pub mod protocol;
pub mod replay;
pub mod secret;
pub mod stage;
pub mod transcript;

pub use failure::{Failure, TlsMode};
pub use fixture::Fixture;
pub use secret::Secret;
pub use stage::Stage;
