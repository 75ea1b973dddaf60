//! Dovecot checking OAuth 2.0 bearer tokens with its `oauth2` passdb against the local
//! authorization server stand-in: XOAUTH2 and OAUTHBEARER log in with a valid token (one-line
//! and two-step forms) and fail cleanly, as an `auth` error, once the token is revoked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::OnceLock;
use std::time::Duration;

use popwire::net::ConnectOptions;
use popwire::net::blocking::BlockingClient;
use popwire::proto::{AuthMethod, Credential, ErrorClass, Mechanism, Secret, Security};
use popwire_tests::Dovecot;
use popwire_tests::dovecot_oauth::start_oauth_dovecot;
use popwire_tests::oauth_server::OAuthServer;

struct Fixture {
    server: OAuthServer,
    dovecot: Dovecot,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = OAuthServer::start().unwrap();
        let dir = tempfile::Builder::new()
            .prefix("pw-oauth")
            .tempdir()
            .unwrap()
            .keep();
        let dovecot = start_oauth_dovecot(&dir, &format!("{}/introspect", server.base)).unwrap();
        Fixture { server, dovecot }
    })
}

fn options(d: &Dovecot) -> ConnectOptions {
    let mut o = ConnectOptions::new("localhost");
    o.security = Security::Tls;
    o.port = Some(d.tls_port);
    o.ca_file = Some(d.ca_file.clone());
    o.timeout = Duration::from_secs(20);
    o
}

fn login(
    user: &str,
    token: &str,
    method: AuthMethod,
) -> Result<BlockingClient, popwire::net::NetError> {
    let f = fixture();
    let mut pop = BlockingClient::connect(options(&f.dovecot))?;
    pop.authenticate(user, Credential::Token(Secret::new(token)), method)?;
    Ok(pop)
}

#[test]
fn valid_token_logs_in_with_xoauth2_oauthbearer_and_auto() {
    let f = fixture();
    let user = f.dovecot.new_user("oauth");
    f.dovecot
        .seed(&user, &[b"Subject: token\n\nhello\n".to_vec()])
        .unwrap();
    let (access, _) = f.server.issue(&user);
    for method in [
        AuthMethod::Sasl(Mechanism::XOAuth2),
        AuthMethod::Sasl(Mechanism::OAuthBearer),
        AuthMethod::Auto,
    ] {
        let mut pop = login(&user, &access, method)
            .unwrap_or_else(|e| panic!("{method:?}: {e}\n{}", f.dovecot.log_tail(20)));
        assert_eq!(pop.retr(1).unwrap(), b"Subject: token\r\n\r\nhello\r\n");
        pop.quit().unwrap();
    }
    assert!(
        f.server
            .log()
            .iter()
            .any(|l| l.starts_with("POST /introspect"))
    );
    assert_eq!(f.server.violations(), Vec::<String>::new());
}

#[test]
fn token_of_another_user_is_refused() {
    let f = fixture();
    let user = f.dovecot.new_user("oauth-other");
    let (access, _) = f.server.issue("somebody-else");
    let error = login(&user, &access, AuthMethod::Sasl(Mechanism::XOAuth2)).unwrap_err();
    assert_eq!(error.class(), ErrorClass::Auth, "{error}");
}

#[test]
fn revoked_token_fails_cleanly_as_auth() {
    let f = fixture();
    let user = f.dovecot.new_user("oauth-revoked");
    let (access, _) = f.server.issue(&user);
    login(&user, &access, AuthMethod::Sasl(Mechanism::OAuthBearer))
        .unwrap()
        .quit()
        .unwrap();
    f.server.revoke(&user);
    for mechanism in [Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let error = login(&user, &access, AuthMethod::Sasl(mechanism)).unwrap_err();
        assert_eq!(error.class(), ErrorClass::Auth, "{mechanism:?}: {error}");
        assert!(error.is_auth_failure(), "{mechanism:?}: {error}");
        assert!(!error.to_string().contains(&access), "{error}");
    }
}

#[test]
fn two_step_form_logs_in_too() {
    let f = fixture();
    let user = f.dovecot.new_user("oauth-two-step");
    let (access, _) = f.server.issue(&user);
    for mechanism in [Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let mut o = options(&f.dovecot);
        o.engine.sasl_initial_response = false;
        let mut pop = BlockingClient::connect(o).unwrap();
        pop.authenticate(
            &user,
            Credential::Token(Secret::new(access.as_str())),
            AuthMethod::Sasl(mechanism),
        )
        .unwrap_or_else(|e| panic!("{mechanism:?}: {e}\n{}", f.dovecot.log_tail(20)));
        pop.quit().unwrap();
    }
    // A token too long for the AUTH line (Microsoft's are over 1 KB) goes two-step on its own;
    // this one is refused by the server (unknown), cleanly, after the exchange.
    let long = "x".repeat(1500);
    let error = login(&user, &long, AuthMethod::Sasl(Mechanism::XOAuth2)).unwrap_err();
    assert_eq!(error.class(), ErrorClass::Auth, "{error}");
}
