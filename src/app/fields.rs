//! The fields of a batch profile row and of a `smtprobe web` check request (the same
//! names: `host`, `port`, `tls`, `user`, `auth`, `from`, `to`, …), read from a JSON
//! object with typed errors that name the field, never its value (a password typed in
//! the wrong place is not echoed).

use crate::app::args::{AuthArg, CheckSpec, QuitAfterArg};
use crate::probe::TlsChoice;
use crate::secret::Secret;
use serde_json::{Map, Value};

/// A field a row or web request got wrong: the message names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field at fault, when one is.
    pub(crate) field: Option<String>,
    /// For people.
    pub(crate) message: String,
}

impl FieldError {
    pub(crate) fn new(message: impl Into<String>) -> FieldError {
        FieldError {
            field: None,
            message: message.into(),
        }
    }

    pub(crate) fn of(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Typed access to a row's fields; errors name the field, never the value (shared
/// with the `smtprobe web` API, whose requests use the same field names).
pub(crate) struct Fields<'a> {
    pub(crate) map: &'a Map<String, Value>,
}

impl Fields<'_> {
    /// The fields rows and web requests share, merged over `a`: `port`, `tls`, `auth`,
    /// `quit_after`, `helo`, `pipelining`, `from`, `to`.
    pub(crate) fn merge_common(&self, a: &mut CheckSpec) -> Result<(), FieldError> {
        if let Some(p) = self.port()? {
            a.port = Some(p);
        }
        if let Some(t) = self.tls()? {
            a.tls = t;
        }
        if let Some(m) = self.auth()? {
            a.auth = m;
        }
        if let Some(q) = self.string("quit_after")? {
            a.quit_after = Some(
                QuitAfterArg::parse(&q)
                    .map(QuitAfterArg::stage)
                    .ok_or_else(|| {
                        FieldError::of(
                    "quit_after",
                    "field \"quit_after\" must be connect, greeting, ehlo, tls, auth, mail or rcpt",
                )
                    })?,
            );
        }
        if let Some(h) = self.string("helo")? {
            a.helo = Some(h);
        }
        if let Some(b) = self.boolean("pipelining")? {
            a.pipelining = b;
        }
        if let Some(from) = self.string("from")? {
            a.from = Some(from);
        }
        if let Some(to) = self.to()? {
            a.to = to;
        }
        Ok(())
    }

    /// `port`: a whole number from 1 to 65535.
    pub(crate) fn port(&self) -> Result<Option<u16>, FieldError> {
        match self.number("port")? {
            None => Ok(None),
            Some(p) if p.fract() == 0.0 && (1.0..=65535.0).contains(&p) => Ok(Some(p as u16)),
            Some(_) => Err(FieldError::of(
                "port",
                "field \"port\" must be a whole number from 1 to 65535",
            )),
        }
    }

    /// `tls`: auto, starttls, implicit or none.
    pub(crate) fn tls(&self) -> Result<Option<TlsChoice>, FieldError> {
        match self.string("tls")? {
            None => Ok(None),
            Some(t) => TlsChoice::parse(&t).map(Some).ok_or_else(|| {
                FieldError::of(
                    "tls",
                    "field \"tls\" must be auto, starttls, implicit or none",
                )
            }),
        }
    }

    /// `auth`: a mechanism name as `--auth` takes it.
    pub(crate) fn auth(&self) -> Result<Option<AuthArg>, FieldError> {
        match self.string("auth")? {
            None => Ok(None),
            Some(m) => AuthArg::parse(&m).map(Some).ok_or_else(|| {
                FieldError::of("auth", "field \"auth\" must be auto, plain, login, cram-md5, scram-sha-1, scram-sha-256 or external")
            }),
        }
    }

    /// `to`: one address or a list of them.
    pub(crate) fn to(&self) -> Result<Option<Vec<String>>, FieldError> {
        let bad = || FieldError::of("to", "field \"to\" must be a string or a list of strings");
        match self.map.get("to") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(_)) => Ok(self.string("to")?.map(|t| vec![t])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) if has_crlf(s) => {
                        Err(FieldError::of("to", "field \"to\" contains a CR or LF"))
                    }
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// A string without CR or LF.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, FieldError> {
        Ok(self.secret(key)?.map(|s| s.expose().to_owned()))
    }

    /// A string without CR or LF, kept as a [`Secret`].
    pub(crate) fn secret(&self, key: &str) -> Result<Option<Secret>, FieldError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if has_crlf(s) => Err(FieldError::of(
                key,
                format!("field \"{key}\" contains a CR or LF"),
            )),
            Some(Value::String(s)) => Ok(Some(Secret::new(s.clone()))),
            Some(_) => Err(FieldError::of(
                key,
                format!("field \"{key}\" must be a string"),
            )),
        }
    }

    pub(crate) fn number(&self, key: &str) -> Result<Option<f64>, FieldError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| FieldError::of(key, format!("field \"{key}\" must be a number"))),
            Some(_) => Err(FieldError::of(
                key,
                format!("field \"{key}\" must be a number"),
            )),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, FieldError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(FieldError::of(
                key,
                format!("field \"{key}\" must be true or false"),
            )),
        }
    }
}

/// Refuses a field not in `known` (or, first, one in `refused`, with its reason); the
/// name is escaped and cut to 40 characters. Shared with the web API's requests.
pub(crate) fn check_known(
    map: &Map<String, Value>,
    known: &[&str],
    refused: &[(&str, &str)],
) -> Result<(), FieldError> {
    for key in map.keys() {
        if let Some((_, why)) = refused.iter().find(|(k, _)| k == key) {
            return Err(FieldError::of(
                key,
                format!("field \"{key}\" is not accepted here: it {why}"),
            ));
        }
        if !known.contains(&key.as_str()) {
            let shown: String = crate::protocol::escape_bytes(key.as_bytes())
                .chars()
                .take(40)
                .collect();
            return Err(FieldError::of(
                &shown,
                format!("unknown field \"{shown}\" (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn has_crlf(s: &str) -> bool {
    s.contains(['\r', '\n'])
}
