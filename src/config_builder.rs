//! Builder methods on [`Config`]: each takes the config and returns it changed, so one
//! check reads as one expression. The public fields stay; these only set them.

use crate::probe::{Config, MailTarget, TlsChoice};
use crate::secret::Secret;
use crate::session::{AuthChoice, AuthConfig, Credential};
use crate::stage::Stage;
use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use std::time::Duration;

impl Config {
    /// Checks this port instead of the TLS mode's default (587, or 465 for implicit TLS).
    pub fn port(mut self, port: u16) -> Config {
        self.port = Some(port);
        self
    }

    /// How to secure the connection (default [`TlsChoice::Auto`]).
    pub fn tls(mut self, tls: TlsChoice) -> Config {
        self.tls = tls;
        self
    }

    /// Logs in as `user` with a password (or app password), choosing the strongest
    /// mechanism the server offers. One AUTH attempt per check.
    pub fn login(self, user: impl Into<String>, password: Secret) -> Config {
        self.login_with(user, password, AuthChoice::Auto)
    }

    /// [`Config::login`] with a chosen mechanism (PLAIN, LOGIN, CRAM-MD5, SCRAM, …).
    pub fn login_with(
        mut self,
        user: impl Into<String>,
        password: Secret,
        choice: AuthChoice,
    ) -> Config {
        self.auth = Some(AuthConfig {
            user: user.into(),
            credential: Credential::Password {
                secret: password,
                choice,
            },
        });
        self
    }

    /// Logs in as `user` with an OAuth 2.0 access token (XOAUTH2, else OAUTHBEARER).
    pub fn oauth_token(mut self, user: impl Into<String>, token: Secret) -> Config {
        self.auth = Some(AuthConfig {
            user: user.into(),
            credential: Credential::OAuthToken(token),
        });
        self
    }

    /// After AUTH, sends a short test message from `from` to each of `to`.
    pub fn send_test_message(
        mut self,
        from: impl Into<String>,
        to: impl IntoIterator<Item = impl Into<String>>,
    ) -> Config {
        self.mail = Some(MailTarget {
            from: from.into(),
            to: to.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// The deadline for each network wait (default 15 s).
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout;
        self
    }

    /// Connects to `addr` instead of resolving the host; certificates are still
    /// verified against the host name.
    pub fn connect_to(mut self, addr: IpAddr) -> Config {
        self.connect_to = Some(addr);
        self
    }

    /// Trusts these certificates (DER) as well as the webpki roots: a private CA, or the
    /// replay server's test CA, `server.pki().ca_der()`.
    pub fn trust(mut self, roots: impl IntoIterator<Item = CertificateDer<'static>>) -> Config {
        self.extra_roots.extend(roots);
        self
    }

    /// Stops after `stage` succeeds; the report lists what was not tested.
    pub fn quit_after(mut self, stage: Stage) -> Config {
        self.quit_after = Some(stage);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_the_public_fields() {
        let c = Config::new("smtp.example.com")
            .port(2525)
            .tls(TlsChoice::Implicit)
            .login("me@example.com", Secret::new("pw-123456"))
            .send_test_message("me@example.com", ["you@example.com"])
            .timeout(Duration::from_secs(3))
            .connect_to(IpAddr::from([127, 0, 0, 1]))
            .quit_after(Stage::Auth);
        assert_eq!(c.host, "smtp.example.com");
        assert_eq!(c.effective_port(), 2525);
        assert_eq!(c.tls, TlsChoice::Implicit);
        let auth = c.auth.as_ref().expect("login sets auth");
        assert_eq!(auth.user, "me@example.com");
        assert!(matches!(
            &auth.credential,
            Credential::Password { secret, choice: AuthChoice::Auto } if secret.expose() == "pw-123456"
        ));
        let mail = c.mail.as_ref().expect("send_test_message sets mail");
        assert_eq!(mail.to, ["you@example.com"]);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.connect_to, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(c.quit_after, Some(Stage::Auth));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn oauth_token_replaces_a_password() {
        let c = Config::new("smtp.example.com")
            .login("me@example.com", Secret::new("pw-123456"))
            .oauth_token("me@example.com", Secret::new("ya29.token"));
        assert!(matches!(
            c.auth.map(|a| a.credential),
            Some(Credential::OAuthToken(_))
        ));
    }
}
