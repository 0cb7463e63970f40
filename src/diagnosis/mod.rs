//! Placeholder until the diagnosis branch lands (same API).
#![allow(missing_docs)]
use crate::failure::{Failure, TlsMode};
use crate::secret::Secret;
use serde::Serialize;

pub struct CredentialShape;
impl CredentialShape {
    pub fn inspect(_s: &Secret) -> Self {
        CredentialShape
    }
}
pub struct Context<'a> {
    pub host: &'a str,
    pub port: u16,
    pub mode: TlsMode,
    pub banner: Option<&'a str>,
    pub user: Option<&'a str>,
    pub credential: Option<&'a CredentialShape>,
    pub sent_message: bool,
}
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub code: &'static str,
    pub summary: String,
    pub evidence: Option<String>,
    pub fix: String,
    pub hints: Vec<String>,
    pub provider: Option<&'static str>,
}
pub fn diagnose(failure: Option<&Failure>, _ctx: &Context) -> Diagnosis {
    Diagnosis {
        code: if failure.is_some() { "failed" } else { "ok" },
        summary: format!("{failure:?}"),
        evidence: None,
        fix: String::new(),
        hints: vec![],
        provider: None,
    }
}
