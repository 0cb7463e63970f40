//! The test message: headers, body, attachments and an exact size, built by hand
//! (RFC 5322 message format, RFC 2045/2046 MIME, RFC 2047 encoded words).
//!
//! The builder is pure (the date and the message id are arguments) so tests can pin the
//! exact bytes. Everything it produces is 7-bit except a body the user wrote in UTF-8,
//! which the session then sends with `BODY=8BITMIME` (RFC 6152) or refuses to send.

use crate::setting::Setting;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The most bytes a generated message may have (`--size`, attachments): the message is
/// held in memory, and no submission server accepts more than this.
pub const MAX_MESSAGE_BYTES: u64 = 100 * 1024 * 1024;

/// One attachment, read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name shown to the recipient (no directory).
    pub name: String,
    /// The MIME type, from the file extension.
    pub content_type: &'static str,
    /// The content.
    pub data: Vec<u8>,
}

/// What the user asked the message to be. Empty: the built-in short test message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSpec {
    /// `--header 'Name: value'`, in order; a name that matches a default header
    /// (case-insensitive) replaces it, like swaks `--header`.
    pub headers: Vec<(String, String)>,
    /// `--body` / `--body-file`: the body text (LF or CRLF line ends).
    pub body: Option<String>,
    /// `--attach`.
    pub attachments: Vec<Attachment>,
    /// `--size`: the exact size of the message on the wire, in bytes (CRLF line ends,
    /// before dot-stuffing).
    pub size: Option<u64>,
}

/// Why the message cannot be built, with the setting at fault. It holds header
/// values and file names, never a message body.
#[derive(Debug)]
#[non_exhaustive]
pub enum MessageError {
    /// A `--header` without `:`.
    HeaderWithoutColon(String),
    /// A header name that is not printable ASCII without spaces (RFC 5322 §2.2).
    HeaderBadName(String),
    /// A header value (of this name) with a line break or NUL.
    HeaderBadValue(String),
    /// A body or attachment file could not be read.
    Read {
        /// The setting (`Setting::Attach`, `Setting::BodyFile`).
        setting: Setting,
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// A body or attachment file over the 100 MiB message cap.
    FileTooLarge {
        /// The setting.
        setting: Setting,
        /// The file.
        path: std::path::PathBuf,
        /// Its size.
        len: u64,
    },
    /// A requested size over the 100 MiB message cap.
    SizeOverCap(u64),
    /// A requested size below the message without filler.
    SizeTooSmall {
        /// The size asked for.
        size: u64,
        /// The message without filler.
        len: u64,
    },
}

impl MessageError {
    /// The setting at fault.
    pub fn setting(&self) -> Setting {
        match self {
            MessageError::HeaderWithoutColon(_)
            | MessageError::HeaderBadName(_)
            | MessageError::HeaderBadValue(_) => Setting::Header,
            MessageError::Read { setting, .. } | MessageError::FileTooLarge { setting, .. } => {
                *setting
            }
            MessageError::SizeOverCap(_) | MessageError::SizeTooSmall { .. } => Setting::Size,
        }
    }

    /// What follows the setting's name: the value at fault, then what is wrong with it
    /// (` 10: the message without filler is already …`). `Display` puts the setting's
    /// words in front, the CLI its flag (`Setting::cli_flag`).
    pub fn detail(&self) -> String {
        match self {
            MessageError::HeaderWithoutColon(arg) => format!(" {arg:?}: expected 'Name: value'"),
            MessageError::HeaderBadName(arg) => {
                format!(" {arg:?}: the name must be printable ASCII without spaces (RFC 5322 §2.2)")
            }
            MessageError::HeaderBadValue(name) => {
                format!(" {name}: the value contains a line break or NUL")
            }
            MessageError::Read { path, error, .. } => format!(" {}: {error}", path.display()),
            MessageError::FileTooLarge { path, len, .. } => format!(
                " {}: {len} bytes is more than the {MAX_MESSAGE_BYTES}-byte message cap",
                path.display()
            ),
            MessageError::SizeOverCap(size) => {
                format!(" {size}: more than the {MAX_MESSAGE_BYTES}-byte cap")
            }
            MessageError::SizeTooSmall { size, len } => format!(
                " {size}: the message without filler is already {len} bytes; ask for at least {}",
                len + 3
            ),
        }
    }
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.setting(), self.detail())
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Parses `--header 'Name: value'` (RFC 5322 §2.2: the name is printable ASCII
/// without `:` or space; the value has no line break: no header injection).
#[cfg(feature = "cli")]
pub fn parse_header(arg: &str) -> Result<(String, String), MessageError> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| MessageError::HeaderWithoutColon(arg.to_owned()))?;
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(MessageError::HeaderBadName(arg.to_owned()));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(MessageError::HeaderBadValue(name.to_owned()));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Reads a file for `setting` ([`Setting::Attach`], [`Setting::BodyFile`]), refusing
/// one larger than [`MAX_MESSAGE_BYTES`] before reading it.
#[cfg(feature = "cli")]
pub fn read_capped(setting: Setting, path: &std::path::Path) -> Result<Vec<u8>, MessageError> {
    let err = |error| MessageError::Read {
        setting,
        path: path.to_owned(),
        error,
    };
    let len = std::fs::metadata(path).map_err(err)?.len();
    if len > MAX_MESSAGE_BYTES {
        return Err(MessageError::FileTooLarge {
            setting,
            path: path.to_owned(),
            len,
        });
    }
    std::fs::read(path).map_err(err)
}

/// Reads an `--attach` file; the MIME type comes from the extension.
#[cfg(feature = "cli")]
pub fn read_attachment(path: &std::path::Path) -> Result<Attachment, MessageError> {
    let data = read_capped(Setting::Attach, path)?;
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into())
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let content_type = match ext.as_deref() {
        Some("txt") | Some("log") => "text/plain",
        Some("html") | Some("htm") => "text/html",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("zip") => "application/zip",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    };
    Ok(Attachment {
        name,
        content_type,
        data,
    })
}

/// RFC 2047 §4.1 `B` encoding for a header value that is not ASCII.
fn encode_word(value: &str) -> String {
    if value.is_ascii() {
        return value.to_owned();
    }
    format!("=?UTF-8?B?{}?=", B64.encode(value.as_bytes()))
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8).
fn base64_lines(data: &[u8], out: &mut String) {
    let encoded = B64.encode(data);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
}

/// The values that change per message: the date and a unique id.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// RFC 5322 §3.3 date-time.
    pub date: String,
    /// Unique part of the Message-ID and of the MIME boundary.
    pub id: String,
}

impl Stamp {
    /// The longest stamp a real message gets (the probe's Date and Message-ID), so a
    /// size that fits with it also fits the real one: what validation checks against.
    pub fn longest() -> Stamp {
        Stamp {
            date: "Thu, 01 Jan 1970 00:00:00 +0000".into(),
            id: format!("{}.{}", "f".repeat(32), "f".repeat(8)),
        }
    }
}

/// Builds the message with CRLF line ends. `host` is the server being checked (named
/// in the default body).
pub fn build(
    spec: &MessageSpec,
    from: &str,
    to: &[String],
    host: &str,
    stamp: &Stamp,
) -> Result<String, MessageError> {
    let base = assemble(spec, from, to, host, stamp, "");
    let Some(n) = filler_len(spec, &base)? else {
        return Ok(base);
    };
    let out = assemble(spec, from, to, host, stamp, &filler(n));
    debug_assert_eq!(Some(out.len() as u64), spec.size);
    Ok(out)
}

/// Checks what [`build`] would refuse (a size over the cap or below the message
/// without filler) without making the filler: validation runs before every check, and
/// a `--size` message may be 100 MiB.
pub fn check(
    spec: &MessageSpec,
    from: &str,
    to: &[String],
    host: &str,
    stamp: &Stamp,
) -> Result<(), MessageError> {
    filler_len(spec, &assemble(spec, from, to, host, stamp, "")).map(|_| ())
}

/// How many filler bytes make the message exactly `spec.size` (`None`: no size asked).
fn filler_len(spec: &MessageSpec, base: &str) -> Result<Option<usize>, MessageError> {
    let Some(size) = spec.size else {
        return Ok(None);
    };
    if size > MAX_MESSAGE_BYTES {
        return Err(MessageError::SizeOverCap(size));
    }
    let len = base.len() as u64;
    // Filler lines are at least CRLF plus one character, and a line is added to the body.
    if size < len + 3 {
        return Err(MessageError::SizeTooSmall { size, len });
    }
    Ok(Some((size - len) as usize))
}

/// Exactly `n` bytes (n ≥ 3) of 7-bit filler lines, each under RFC 5322's 78-character
/// recommendation, none starting with `.`, ending with CRLF.
fn filler(n: usize) -> String {
    const LINE: usize = 76; // 74 characters + CRLF
    let pattern = "smtprobe-size-filler-";
    let line_of = |chars: usize| -> String {
        let mut l: String = pattern.chars().cycle().take(chars).collect();
        l.push_str("\r\n");
        l
    };
    let mut out = String::with_capacity(n);
    let mut left = n;
    while left > LINE + 3 {
        out.push_str(&line_of(LINE - 2));
        left -= LINE;
    }
    // The rest (3..=LINE+3 bytes) as one or two lines of at least one character.
    if left <= LINE {
        out.push_str(&line_of(left - 2));
    } else {
        out.push_str(&line_of(left - 2 - 3));
        out.push_str(&line_of(1));
    }
    out
}

fn assemble(
    spec: &MessageSpec,
    from: &str,
    to: &[String],
    host: &str,
    stamp: &Stamp,
    filler: &str,
) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("smtprobe.invalid");
    let mut headers: Vec<(String, String)> = vec![
        ("Date".into(), stamp.date.clone()),
        ("From".into(), format!("<{from}>")),
        (
            "To".into(),
            to.iter()
                .map(|t| format!("<{t}>"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Subject".into(),
            format!("smtprobe test message {}", stamp.id),
        ),
        ("Message-ID".into(), format!("<{}@{domain}>", stamp.id)),
        ("MIME-Version".into(), "1.0".into()),
    ];
    for (name, value) in &spec.headers {
        let value = encode_word(value);
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value,
            None => headers.push((name.clone(), value)),
        }
    }
    let mut body = match &spec.body {
        Some(b) => {
            let mut t = b.replace("\r\n", "\n").replace('\n', "\r\n");
            if !t.ends_with("\r\n") {
                t.push_str("\r\n");
            }
            t
        }
        None => format!(
            "This message was sent by smtprobe to verify the SMTP settings for {host}.\r\nNo action is needed.\r\n"
        ),
    };
    body.push_str(filler);
    let (charset, cte) = if body.is_ascii() {
        ("us-ascii", "7bit")
    } else {
        ("utf-8", "8bit")
    };
    let text_type = format!("text/plain; charset={charset}");
    let mut out = String::with_capacity(body.len() + 512);
    for (n, v) in &headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if spec.attachments.is_empty() {
        out.push_str(&format!(
            "Content-Type: {text_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
        ));
        out.push_str(&body);
        return out;
    }
    // RFC 2046 §5.1.1: the boundary must not occur in the parts; base64 and our own
    // text cannot contain this id-derived string (the user's body is checked).
    let mut boundary = format!("=_smtprobe_{}", stamp.id);
    while body.contains(&boundary) {
        boundary.push('_');
    }
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: {text_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}"
    ));
    for a in &spec.attachments {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\r\n",
            a.content_type, a.name, a.name
        ));
        base64_lines(&a.data, &mut out);
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            date: "Tue, 01 Dec 2026 12:00:00 +0000".into(),
            id: "abc.1".into(),
        }
    }

    #[test]
    fn headers_replace_defaults_or_are_added_and_non_ascii_is_encoded() {
        let spec = MessageSpec {
            headers: vec![
                parse_header("subject: Grüße").unwrap(),
                parse_header("X-Test:  yes ").unwrap(),
            ],
            body: Some("line 1\nline 2".into()),
            ..MessageSpec::default()
        };
        let m = build(&spec, "a@x.org", &["b@y.org".into()], "mx", &stamp()).unwrap();
        assert!(m.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"), "{m}");
        assert!(!m.contains("smtprobe test message"), "{m}");
        assert!(m.contains("X-Test: yes\r\n"));
        assert!(m.ends_with("\r\n\r\nline 1\r\nline 2\r\n"), "{m}");
        assert!(m.contains("charset=us-ascii"));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X: a\r\nBcc: evil@x").is_err());
    }

    #[test]
    fn utf8_body_is_marked_8bit() {
        let spec = MessageSpec {
            body: Some("héllo".into()),
            ..MessageSpec::default()
        };
        let m = build(&spec, "a@x.org", &["b@y.org".into()], "mx", &stamp()).unwrap();
        assert!(m.contains("charset=utf-8\r\nContent-Transfer-Encoding: 8bit"));
        assert!(!m.is_ascii());
    }

    #[test]
    fn attachment_is_base64_in_76_column_lines_inside_multipart() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let spec = MessageSpec {
            attachments: vec![Attachment {
                name: "data.bin".into(),
                content_type: "application/octet-stream",
                data: data.clone(),
            }],
            ..MessageSpec::default()
        };
        let m = build(&spec, "a@x.org", &["b@y.org".into()], "mx", &stamp()).unwrap();
        assert!(m.is_ascii());
        assert!(m.contains("Content-Type: multipart/mixed; boundary=\"=_smtprobe_abc.1\""));
        let part = m.split("filename=\"data.bin\"\r\n\r\n").nth(1).unwrap();
        let b64: String = part
            .lines()
            .take_while(|l| !l.starts_with("--"))
            .inspect(|l| assert!(l.len() <= 76))
            .collect();
        assert_eq!(B64.decode(b64).unwrap(), data);
        assert!(m.ends_with("--=_smtprobe_abc.1--\r\n"));
    }

    #[test]
    fn size_is_exact_on_the_wire_for_every_remainder() {
        let base = build(
            &MessageSpec::default(),
            "a@x.org",
            &["b@y.org".into()],
            "mx",
            &stamp(),
        )
        .unwrap()
        .len() as u64;
        for size in (base + 3..base + 200).chain([base + 10_000, 1_000_000]) {
            let spec = MessageSpec {
                size: Some(size),
                ..MessageSpec::default()
            };
            let m = build(&spec, "a@x.org", &["b@y.org".into()], "mx", &stamp()).unwrap();
            assert_eq!(m.len() as u64, size);
            assert!(m.lines().all(|l| l.len() < 78 && !l.starts_with('.')));
        }
        let spec = MessageSpec {
            size: Some(10),
            ..MessageSpec::default()
        };
        let e = build(&spec, "a@x.org", &["b@y.org".into()], "mx", &stamp()).unwrap_err();
        assert!(
            matches!(e, MessageError::SizeTooSmall { size: 10, .. }),
            "{e}"
        );
        // The library names the setting in words; the CLI puts `--size` there.
        assert!(
            e.to_string().starts_with("the message size setting 10: "),
            "{e}"
        );
        assert_eq!(e.setting(), Setting::Size);
    }
}
