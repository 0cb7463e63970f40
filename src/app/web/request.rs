//! A check request (`POST /api/v1/check` JSON, or the page's form) turned into a
//! [`Config`]. The fields are a batch profile row's (`host`, `port`, `tls`, `user`,
//! `auth`, `from`, `to`, `timeout`, `helo`, `pipelining`) plus `password` or
//! `oauth2_token` and `provider`; fields that would let a request read the server's
//! files or environment (`password_file`, `password_env`, `ca_file`,
//! `oauth2_token_env`), pick its own address (`connect_to`) or lower security
//! (`allow_plaintext_auth`) are refused by name. Messages name fields, never values.

use crate::app::args::{config_from_spec, CheckSpec, PasswordSource, DEFAULT_TIMEOUT};
use crate::app::fields::{check_known, FieldError, Fields};
use crate::probe::Config;
use crate::session::{AuthConfig, Credential};
use serde_json::{Map, Value};

/// The fields a check request may carry.
pub const FIELDS: &[&str] = &[
    "host",
    "provider",
    "port",
    "tls",
    "user",
    "password",
    "oauth2_token",
    "auth",
    "from",
    "to",
    "timeout",
    "helo",
    "pipelining",
    "quit_after",
];

/// Batch row fields a request may not use, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "password_env",
        "would read the server's environment; send \"password\"",
    ),
    (
        "password_file",
        "would read the server's files; send \"password\"",
    ),
    (
        "oauth2_token_env",
        "would read the server's environment; send \"oauth2_token\"",
    ),
    (
        "ca_file",
        "would read the server's files; the server's --ca-file applies",
    ),
    (
        "connect_to",
        "the server connects only to the address it resolved and vetted",
    ),
    (
        "allow_plaintext_auth",
        "the web server never sends credentials without TLS",
    ),
    ("client_cert", "would read the server's files"),
    ("client_key", "would read the server's files"),
    (
        "proxy",
        "the server connects directly, to the address it vetted",
    ),
    ("id", "is for batch rows"),
];

/// A refused request: HTTP status, stable error code, message, the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code (`bad-field`, `bad-json`, `refused-address`, …).
    pub code: &'static str,
    /// For people; names the field, never its value.
    pub message: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
}

impl ApiError {
    /// A refused request.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        FieldError::of(field, message).into()
    }

    /// `{"error": {"code", "message", "field"?}}`.
    pub fn to_json(&self) -> Value {
        let mut e = serde_json::json!({ "code": self.code, "message": self.message });
        if let (Some(f), Value::Object(m)) = (&self.field, &mut e) {
            m.insert("field".into(), Value::String(f.clone()));
        }
        serde_json::json!({ "error": e })
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError {
            status: 400,
            code: "bad-field",
            message: e.message,
            field: e.field,
        }
    }
}

/// Parses a JSON body. Syntax errors give their position, never the text.
pub fn parse_json_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "bad-json",
            format!(
                "the body is not valid JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::new(
            400,
            "bad-json",
            "the body must be a JSON object",
        )),
    }
}

/// The form's `application/x-www-form-urlencoded` body as the same JSON object: empty
/// inputs are absent, `port` and `timeout` are numbers, `to` may repeat; `csrf` is
/// returned apart.
pub fn form_to_map(body: &[u8]) -> Result<(Map<String, Value>, Option<String>), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::new(400, "bad-form", "the form body is not URL-encoded"))?;
    let mut map = Map::new();
    let mut csrf = None;
    for (k, v) in pairs {
        if k == "csrf" {
            csrf = Some(v);
            continue;
        }
        if v.is_empty() {
            continue;
        }
        let value = match k.as_str() {
            "port" | "timeout" => match v.trim().parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        ApiError::field(&k, format!("field \"{k}\" must be a number"))
                    })?,
                Err(_) => {
                    return Err(ApiError::field(
                        &k,
                        format!("field \"{k}\" must be a number"),
                    ))
                }
            },
            "pipelining" => Value::Bool(v == "true" || v == "on"),
            _ => Value::String(v),
        };
        if k == "to" {
            for addr in value.as_str().unwrap_or_default().split(',') {
                let addr = addr.trim();
                if !addr.is_empty() {
                    let list = map.entry("to").or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = list {
                        items.push(Value::String(addr.to_owned()));
                    }
                }
            }
            continue;
        }
        map.insert(k, value);
    }
    Ok((map, csrf))
}

/// The request's CLI-flavoured validation messages, in the request's words.
fn in_field_words(message: &str) -> (String, Option<&'static str>) {
    // `--timeout` before `--to`, which is its prefix.
    const WORDS: &[(&str, &str)] = &[
        ("--provider", "provider"),
        ("--user", "user"),
        ("--from", "from"),
        ("--timeout", "timeout"),
        ("--to", "to"),
        ("--helo", "helo"),
        ("--port", "port"),
        ("HOST", "host"),
    ];
    // The field is the one the message starts with ("WHAT: reason").
    let field = WORDS
        .iter()
        .filter_map(|(flag, name)| message.find(flag).map(|at| (at, *name)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, name)| name);
    let mut out = message.to_owned();
    for (flag, name) in WORDS {
        out = out.replace(flag, &format!("\"{name}\""));
    }
    (out, field)
}

/// A request turned into a validated check configuration (not yet vetted: the caller
/// resolves the host and sets `connect_to`). `max_timeout` caps `timeout`.
pub fn config_from_request(map: &Map<String, Value>, max_timeout: f64) -> Result<Config, ApiError> {
    check_known(map, FIELDS, REFUSED)?;
    let f = Fields { map };
    let mut a = CheckSpec {
        host: f.string("host")?,
        provider: f.string("provider")?,
        timeout: max_timeout.min(DEFAULT_TIMEOUT),
        ..CheckSpec::default()
    };
    if a.host.is_none() && a.provider.is_none() {
        return Err(ApiError::field(
            "host",
            "missing field \"host\" (or \"provider\")",
        ));
    }
    if a.host.as_deref() == Some("") {
        return Err(ApiError::field("host", "field \"host\" is empty"));
    }
    f.merge_common(&mut a)?;
    if let Some(t) = f.number("timeout")? {
        if !(t > 0.0 && t <= max_timeout) {
            return Err(ApiError::field(
                "timeout",
                format!("field \"timeout\" must be above 0 and at most {max_timeout} seconds"),
            ));
        }
        a.timeout = t;
    }
    if a.to.len() > 10 {
        return Err(ApiError::field(
            "to",
            "field \"to\" lists more than 10 recipients",
        ));
    }
    let user = f.string("user")?;
    let password = f.secret("password")?;
    let token = f.secret("oauth2_token")?;
    let (password, token) = match (&user, password, token) {
        (_, Some(_), Some(_)) => {
            return Err(ApiError::field(
                "password",
                "give \"password\" or \"oauth2_token\", not both",
            ))
        }
        (None, Some(_), None) => {
            return Err(ApiError::field("user", "\"password\" needs \"user\""))
        }
        (None, None, Some(_)) => {
            return Err(ApiError::field("user", "\"oauth2_token\" needs \"user\""))
        }
        (Some(_), None, None) => {
            return Err(ApiError::field(
                "password",
                "\"user\" needs \"password\" or \"oauth2_token\"",
            ))
        }
        (_, p, t) => (p, t),
    };
    // The token path: configure everything but AUTH through the shared CLI validation,
    // then add the token credential (the CLI reads tokens only from the environment).
    a.user = if token.is_some() { None } else { user.clone() };
    a.password = password.map_or(PasswordSource::Ask, PasswordSource::Given);
    let mut config = config_from_spec(&a).map_err(|e| {
        let (message, field) = in_field_words(&e.0);
        ApiError::from(FieldError {
            field: field.map(str::to_owned),
            message,
        })
    })?;
    if let (Some(token), Some(user)) = (token, user) {
        crate::protocol::command::check_line_safe(crate::setting::Setting::User, &user)
            .map_err(|e| ApiError::field("user", e.to_string()))?;
        if user.is_empty() {
            return Err(ApiError::field("user", "field \"user\" is empty"));
        }
        config.auth = Some(AuthConfig {
            user,
            credential: Credential::OAuthToken(token),
        });
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<Config, ApiError> {
        config_from_request(&parse_json_body(json.as_bytes())?, 30.0)
    }

    #[test]
    fn a_full_request_becomes_a_config() {
        let c = req(r#"{"host":"smtp.example.com","port":465,"tls":"implicit","user":"me@example.com","password":"pw","from":"me@example.com","to":["a@example.com"],"timeout":5,"helo":"client.example"}"#).unwrap();
        assert_eq!(
            (c.host.as_str(), c.effective_port()),
            ("smtp.example.com", 465)
        );
        assert_eq!(c.timeout.as_secs(), 5);
        assert!(c.auth.is_some() && c.mail.is_some());
        assert!(!c.allow_plaintext_auth);
        let c = req(r#"{"provider":"gmail","user":"me@gmail.com","oauth2_token":"tok"}"#).unwrap();
        assert_eq!(c.host, "smtp.gmail.com");
        assert!(matches!(
            c.auth.unwrap().credential,
            Credential::OAuthToken(_)
        ));
    }

    #[test]
    fn refusals_name_the_field_never_the_value() {
        let cases = [
            (r#"{"host":"x.example","port":"587"}"#, "port"),
            (r#"{"host":"x.example","port":70000}"#, "port"),
            (r#"{"host":"x.example","tls":"ssl"}"#, "tls"),
            (r#"{"host":"x.example","user":"u"}"#, "password"),
            (
                r#"{"host":"x.example","password":"hunter2-secret"}"#,
                "user",
            ),
            (
                r#"{"host":"x.example","user":"u","password":12345678}"#,
                "password",
            ),
            (
                r#"{"host":"x.example","password_file":"/etc/shadow"}"#,
                "password_file",
            ),
            (
                r#"{"host":"x.example","connect_to":"127.0.0.1"}"#,
                "connect_to",
            ),
            (r#"{"host":"x.example","timeout":3600}"#, "timeout"),
            (r#"{"host":"x.example","from":"a@example.com"}"#, "to"),
            (r#"{"host":"x.example\r\nRSET"}"#, "host"),
            (r#"{"port":587}"#, "host"),
            (r#"{"host":"x.example","colour":"red"}"#, "colour"),
        ];
        for (json, field) in cases {
            let e = req(json).unwrap_err();
            assert_eq!(
                (e.status, e.field.as_deref()),
                (400, Some(field)),
                "{json}: {e:?}"
            );
            assert!(e.message.contains(field), "{json}: {}", e.message);
            assert!(
                !e.message.contains("hunter2") && !e.message.contains("12345678"),
                "{}",
                e.message
            );
        }
        let e = req(r#"{"host": "x", "port": 5"#).unwrap_err();
        assert_eq!((e.status, e.code), (400, "bad-json"));
        assert!(e.message.contains("column"), "{}", e.message);
    }

    #[test]
    fn the_form_body_maps_to_the_same_fields() {
        let (m, csrf) = form_to_map(
            b"host=smtp.example.com&port=587&user=&to=a%40x.example%2C+b%40x.example&csrf=t0k",
        )
        .unwrap();
        assert_eq!(csrf.as_deref(), Some("t0k"));
        assert_eq!(m["port"], 587.0);
        assert!(!m.contains_key("user"));
        assert_eq!(m["to"], serde_json::json!(["a@x.example", "b@x.example"]));
        assert_eq!(
            form_to_map(b"port=abc").unwrap_err().field.as_deref(),
            Some("port")
        );
    }
}
