//! RFC 3463 enhanced mail system status codes (`class.subject.detail`), as carried at the
//! start of reply text when the server advertises ENHANCEDSTATUSCODES (RFC 2034).

use std::fmt;

/// An enhanced status code such as `5.7.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// 0..=999 (RFC 3463 §2: up to three digits, no leading zeros).
    pub subject: u16,
    /// 0..=999.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds a code.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// Parses a whole string such as `5.7.8`.
    pub fn parse(s: &str) -> Option<EnhancedCode> {
        let (code, rest) = Self::parse_prefix_len(s.as_bytes())?;
        (rest == s.len()).then_some(code)
    }

    /// Parses an enhanced code at the start of reply text, followed by a space or the end.
    pub fn parse_prefix(text: &[u8]) -> Option<EnhancedCode> {
        let (code, len) = Self::parse_prefix_len(text)?;
        match text.get(len) {
            None | Some(b' ') | Some(b'\t') => Some(code),
            _ => None,
        }
    }

    fn parse_prefix_len(text: &[u8]) -> Option<(EnhancedCode, usize)> {
        let mut parts = [0u16; 3];
        let mut pos = 0;
        for (i, part) in parts.iter_mut().enumerate() {
            let start = pos;
            while pos < text.len() && text[pos].is_ascii_digit() && pos - start < 3 {
                *part = *part * 10 + u16::from(text[pos] - b'0');
                pos += 1;
            }
            if pos == start || (i == 0 && pos - start != 1) {
                return None;
            }
            if i < 2 {
                if text.get(pos) != Some(&b'.') {
                    return None;
                }
                pos += 1;
            }
        }
        let class = parts[0] as u8;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some((EnhancedCode::new(class, parts[1], parts[2]), pos))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_rejects_lookalikes() {
        assert_eq!(
            EnhancedCode::parse("5.7.8"),
            Some(EnhancedCode::new(5, 7, 8))
        );
        assert_eq!(
            EnhancedCode::parse("4.7.14"),
            Some(EnhancedCode::new(4, 7, 14))
        );
        assert_eq!(
            EnhancedCode::parse_prefix(b"5.7.14 <https://x"),
            Some(EnhancedCode::new(5, 7, 14))
        );
        assert_eq!(
            EnhancedCode::parse_prefix(b"2.0.0"),
            Some(EnhancedCode::new(2, 0, 0))
        );
        for bad in [
            "3.0.0", "5.7", "5.7.8.1", "55.7.8", "5.7.8x", "5..8", "", "OK",
        ] {
            assert_eq!(EnhancedCode::parse(bad), None, "{bad}");
        }
        assert_eq!(EnhancedCode::parse_prefix(b"1746829334 t66sm"), None);
    }
}
