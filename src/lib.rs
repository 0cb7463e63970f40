//! smtprobe: tells you exactly why your SMTP submission setup fails, and how to fix it.
#![warn(missing_docs)]

pub mod diagnosis;
pub mod failure;
pub mod protocol;
pub mod secret;
pub mod stage;
pub mod transcript;

pub use failure::{Failure, TlsMode};
pub use secret::Secret;
pub use stage::Stage;
