//! Showing untrusted bytes safely.
//!
//! Server text may contain terminal escape sequences, NUL, bare CR or invalid UTF-8. We
//! never print it raw: printable text passes, everything else becomes `\xNN` (and `\\`
//! doubles), so a reply cannot move the cursor, recolour the terminal or forge a line.

/// Escapes bytes for display: valid UTF-8 printable characters pass; control characters,
/// DEL, C1 controls and invalid bytes become `\xNN`; a backslash becomes `\\`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Escapes a string for display, with the same rules as [`escape_bytes`].
pub fn escape_str(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if c.is_control() => {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        // Bidi overrides can reorder what a reader sees; show them escaped too.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
        c => out.push(c),
    }
}

/// Reverses [`escape_bytes`]. Returns `None` for a malformed escape.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let simple = match bytes.get(i + 1)? {
            b'\\' => Some(b'\\'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'n' => Some(b'\n'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        match bytes[i + 1] {
            b'x' => {
                let hex = s.get(i + 2..i + 4)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            b'u' => {
                let rest = s.get(i + 2..)?;
                let rest = rest.strip_prefix('{')?;
                let end = rest.find('}')?;
                let c = char::from_u32(u32::from_str_radix(&rest[..end], 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 2 + 1 + end + 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_round_trips() {
        let raw = b"ok \x1b[2J\rC: QUIT\n\x00\xff caf\xc3\xa9 \\ \xe2\x80\xae";
        let shown = escape_bytes(raw);
        assert!(shown.chars().all(|c| !c.is_control()), "{shown}");
        assert!(shown.contains("\\rC: QUIT"));
        assert!(shown.contains("café"));
        assert_eq!(unescape(&shown).unwrap(), raw.to_vec());
    }

    #[test]
    fn malformed_escapes_are_rejected() {
        for bad in ["\\", "\\q", "\\x4", "\\xzz", "\\u{110000}", "\\u{41"] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }
}
