//! The sans-IO SMTP codec: reply parsing, command encoding, EHLO capabilities, SASL, and
//! RFC 3463 enhanced status codes. No sockets, no clock: bytes in, values out.

pub mod capabilities;
pub mod command;
pub mod enhanced;
pub mod escape;
pub mod reply;
pub mod sasl;

pub use capabilities::{Capabilities, Extension};
pub use command::Command;
pub use enhanced::EnhancedCode;
pub use escape::{escape_bytes, escape_str};
pub use reply::{LineEvent, LineReader, Reply, ReplyError, ReplyParser};
pub use sasl::Mechanism;
