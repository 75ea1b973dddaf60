//! The library's OAuth token handling against the local authorization server stand-in
//! (tests/src/oauth_server.rs): a fresh token is used as stored, one with under a minute left
//! is refreshed and saved, and each failure has the class and exit code a caller acts on.
#![cfg(feature = "oauth")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::Path;

use popwire::fetch::config::{ClientSecret, Endpoints, OAuthConfig};
use popwire::fetch::oauth::{self, OAuthError, TokenFile, TokenSet};
use popwire::proto::{ErrorClass, Secret};
use popwire_tests::oauth_server::{CLIENT_ID, OAuthServer};

fn config(server: &OAuthServer, dir: &Path) -> OAuthConfig {
    OAuthConfig {
        account: "acct".into(),
        provider: None,
        issuer: Some(server.base.clone()),
        endpoints: Endpoints::default(),
        client_id: CLIENT_ID.into(),
        client_secret: None,
        scopes: vec!["mail".into()],
        token_file: dir.join("acct.json"),
        sasl_initial_response: true,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn store(config: &OAuthConfig, server: &OAuthServer, access: &str, refresh: &str, left: u64) {
    TokenFile::new(&config.token_file)
        .save(&TokenSet {
            access_token: Secret::new(access),
            refresh_token: Some(Secret::new(refresh)),
            expires_at: Some(now() + left),
            scopes: vec!["mail".into()],
            token_endpoint: format!("{}/token", server.base),
            obtained_at: now(),
        })
        .unwrap();
}

#[test]
fn fresh_token_is_used_as_stored_and_a_stale_one_is_refreshed() {
    let server = OAuthServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server, dir.path());
    let (access, refresh) = server.issue("someone");
    store(&config, &server, &access, &refresh, 3600);
    assert_eq!(
        oauth::access_token(&config).unwrap().expose(),
        access.as_bytes()
    );
    assert!(server.log().is_empty(), "{:?}", server.log());

    // 59 s left is under the margin: refreshed, saved, and the refresh token kept.
    store(
        &config,
        &server,
        &access,
        &refresh,
        oauth::REFRESH_MARGIN.as_secs() - 1,
    );
    let fresh = oauth::access_token(&config).unwrap();
    assert_ne!(fresh.expose(), access.as_bytes());
    assert_eq!(server.log(), ["POST /token refresh_token"]);
    let saved = TokenFile::new(&config.token_file)
        .load("acct")
        .unwrap()
        .unwrap();
    assert_eq!(saved.access_token, fresh);
    assert_eq!(saved.refresh_token, Some(Secret::new(refresh.as_str())));
    assert!(saved.expires_at.unwrap() > now() + 3000);
    // And now it is fresh: no second refresh.
    assert_eq!(oauth::access_token(&config).unwrap(), fresh);
    assert_eq!(server.log().len(), 1);
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[test]
fn revoked_refresh_token_asks_for_login_with_exit_77() {
    let server = OAuthServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server, dir.path());
    let (access, refresh) = server.issue("revoked-user");
    store(&config, &server, &access, &refresh, 5);
    server.revoke("revoked-user");
    let error = oauth::access_token(&config).unwrap_err();
    assert!(error.needs_login(), "{error}");
    assert_eq!(error.class(), ErrorClass::Auth);
    assert_eq!(error.exit_code(), 77);
    let text = error.to_string();
    assert!(
        text.ends_with("log in again with: popwire auth login acct"),
        "{text}"
    );
    assert!(!text.contains(&refresh) && !format!("{error:?}").contains(&refresh));

    // No file at all: the same hint.
    let empty = OAuthConfig {
        token_file: dir.path().join("none.json"),
        ..config.clone()
    };
    let error = oauth::access_token(&empty).unwrap_err();
    assert!(matches!(error, OAuthError::LoginRequired { .. }), "{error}");
}

#[test]
fn unreachable_server_is_temporary_and_a_wrong_client_is_config() {
    let server = OAuthServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path());
    let (access, refresh) = server.issue("u");

    // Nothing listens on the stored endpoint: a network error, retried later (75).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    TokenFile::new(&config.token_file)
        .save(&TokenSet {
            access_token: Secret::new(access.as_str()),
            refresh_token: Some(Secret::new(refresh.as_str())),
            expires_at: Some(now()),
            scopes: vec![],
            token_endpoint: format!("http://127.0.0.1:{port}/token"),
            obtained_at: now(),
        })
        .unwrap();
    let error = oauth::access_token(&config).unwrap_err();
    assert_eq!(error.class(), ErrorClass::Network, "{error}");
    assert_eq!(error.exit_code(), 75);

    // A client id the server does not know: the settings are wrong (78), not the login.
    store(&config, &server, &access, &refresh, 0);
    config.client_id = "someone-else".into();
    config.client_secret = Some(ClientSecret::Literal(Secret::new("x")));
    let error = oauth::access_token(&config).unwrap_err();
    assert_eq!(error.class(), ErrorClass::Config, "{error}");
    assert_eq!(error.exit_code(), 78);
}

#[test]
fn concurrent_refreshes_spend_the_refresh_token_once() {
    let server = OAuthServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server, dir.path());
    let (access, refresh) = server.issue("u");
    store(&config, &server, &access, &refresh, 0);
    let tokens: Vec<Secret> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| oauth::access_token(&config).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(server.log(), ["POST /token refresh_token"]);
}

#[test]
fn status_and_logout_never_show_tokens() {
    let server = OAuthServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server, dir.path());
    assert_eq!(oauth::status(&config).unwrap(), None);
    store(&config, &server, "access-canary", "refresh-canary", 600);
    let status = oauth::status(&config).unwrap().unwrap();
    assert!(status.has_refresh_token);
    assert!((590..=600).contains(&status.expires_in.unwrap()));
    assert_eq!(status.scopes, ["mail"]);
    assert!(!format!("{status:?}").contains("canary"));
    assert!(oauth::logout(&config).unwrap());
    assert!(!oauth::logout(&config).unwrap());
    assert_eq!(oauth::status(&config).unwrap(), None);
}
