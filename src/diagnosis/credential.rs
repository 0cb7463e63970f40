//! The shape of a credential, without the credential.
//!
//! A wrong password is the most common failure, and the most common *kinds* of wrong
//! password are visible without knowing it: a trailing newline from a file, a space from
//! copy and paste, an account password where a 16-letter app password belongs. We keep
//! only booleans and one count, so a diagnosis (and its JSON) can say "this does not look
//! like an app password" and never show anything of the secret itself.

use crate::secret::Secret;

/// Facts about a password that are safe to reason about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CredentialShape {
    /// True for an empty password.
    pub empty: bool,
    /// Number of characters once spaces and hyphens (app password group separators) are
    /// removed. Used only for comparisons; never printed.
    pub len_without_separators: usize,
    /// True when every character other than spaces and hyphens is an ASCII letter.
    pub letters_only: bool,
    /// True when it starts or ends with whitespace.
    pub outer_whitespace: bool,
    /// True when it contains CR or LF anywhere.
    pub contains_newline: bool,
    /// True when it contains a character outside ASCII.
    pub non_ascii: bool,
}

impl CredentialShape {
    /// Measures a secret. Reads it once and keeps nothing of its content.
    pub fn inspect(secret: &Secret) -> CredentialShape {
        let s = secret.expose();
        let core = s.chars().filter(|c| *c != ' ' && *c != '-');
        let mut len = 0;
        let mut letters_only = true;
        for c in core {
            len += 1;
            letters_only &= c.is_ascii_alphabetic();
        }
        CredentialShape {
            empty: s.is_empty(),
            len_without_separators: len,
            letters_only: letters_only && len > 0,
            outer_whitespace: s.starts_with(char::is_whitespace)
                || s.ends_with(char::is_whitespace),
            contains_newline: s.contains(['\r', '\n']),
            non_ascii: !s.is_ascii(),
        }
    }

    /// True when it has the form of an app password of `letters` letters.
    pub fn looks_like_app_password(&self, letters: usize) -> bool {
        self.letters_only && self.len_without_separators == letters && !self.non_ascii
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_password_forms() {
        let spaced = CredentialShape::inspect(&Secret::new("abcd efgh ijkl mnop"));
        assert!(spaced.looks_like_app_password(16));
        let apple = CredentialShape::inspect(&Secret::new("abcd-efgh-ijkl-mnop"));
        assert!(apple.looks_like_app_password(16));
        let account = CredentialShape::inspect(&Secret::new("Summer2024!"));
        assert!(!account.looks_like_app_password(16));
        assert!(!CredentialShape::inspect(&Secret::new("")).looks_like_app_password(16));
        assert!(CredentialShape::inspect(&Secret::new("")).empty);
    }

    #[test]
    fn whitespace_newline_non_ascii() {
        let s = CredentialShape::inspect(&Secret::new("abcdefghijklmnop\n"));
        assert!(s.contains_newline && s.outer_whitespace);
        assert!(!s.looks_like_app_password(16));
        let s = CredentialShape::inspect(&Secret::new(" pässword"));
        assert!(s.non_ascii && s.outer_whitespace && !s.contains_newline);
    }

    #[test]
    fn debug_output_holds_no_content() {
        let s = CredentialShape::inspect(&Secret::new("hunter2-sentinel"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter") && !shown.contains("sentinel"));
    }
}
