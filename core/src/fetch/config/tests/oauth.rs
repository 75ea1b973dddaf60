//! `[accounts.NAME.oauth]`: presets, explicit endpoints, the client secret, scopes, the token
//! file, and each mistake named with its key and fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

fn with_oauth(table: &str) -> String {
    format!(
        "{}\n[accounts.work.oauth]\n{table}\n",
        account_with("maildir = \"~/Mail/work\"")
    )
}

fn oauth_of(account: &Account) -> &OAuthConfig {
    match &account.credential {
        CredentialSource::OAuth(o) => o,
        other => panic!("not oauth: {other:?}"),
    }
}

#[test]
fn google_preset_with_defaults() {
    let account = one(&with_oauth(
        "provider = \"google\"\nclient_id = \"abc.apps.googleusercontent.com\"\nclient_secret = \"not-so-secret\"",
    ));
    assert!(account.credential.is_token());
    assert_eq!(account.credential.config_key(), "oauth");
    let o = oauth_of(&account);
    assert_eq!(o.account, "work");
    assert_eq!(o.provider, Some(Provider::Google));
    assert_eq!(o.scopes, ["https://mail.google.com/"]);
    assert_eq!(
        o.endpoints.token.as_deref(),
        Some("https://oauth2.googleapis.com/token")
    );
    assert!(o.endpoints.device_authorization.is_some() && o.endpoints.authorization.is_some());
    assert_eq!(
        o.client_secret,
        Some(ClientSecret::Literal(Secret::new("not-so-secret")))
    );
    // The default token file sits under the data directory ($XDG_DATA_HOME or ~/.local/share).
    assert!(
        o.token_file.ends_with("popwire/oauth/work.json"),
        "{}",
        o.token_file.display()
    );
    assert!(!format!("{account:?}").contains("not-so-secret"));
    assert!(o.sasl_initial_response);
    assert!(
        crate::fetch::job::connect_options(&account)
            .engine
            .sasl_initial_response
    );
}

#[test]
fn two_step_auth_can_be_asked_for() {
    let account = one(&with_oauth(
        "provider = \"microsoft\"\nclient_id = \"x\"\nsasl_initial_response = false",
    ));
    assert!(!oauth_of(&account).sasl_initial_response);
    let options = crate::fetch::job::connect_options(&account);
    assert!(!options.engine.sasl_initial_response);
    let e = error(&with_oauth(
        "provider = \"microsoft\"\nclient_id = \"x\"\nsasl_initial_response = \"no\"",
    ));
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert_eq!(e.key(), Some("accounts.work.oauth.sasl_initial_response"));
}

#[test]
fn microsoft_preset_with_tenant_and_pop_imap_scopes() {
    let account = one(&with_oauth(
        "provider = \"microsoft\"\ntenant = \"consumers\"\nclient_id = \"00000000-1111\"\ntoken_file = \"tokens/work.json\"",
    ));
    let o = oauth_of(&account);
    assert_eq!(
        o.endpoints.device_authorization.as_deref(),
        Some("https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode")
    );
    assert!(o.scopes.iter().any(|s| s.ends_with("POP.AccessAsUser.All")));
    assert!(
        o.scopes
            .iter()
            .any(|s| s.ends_with("IMAP.AccessAsUser.All"))
    );
    assert!(o.scopes.iter().any(|s| s == "offline_access"));
    assert_eq!(o.client_secret, None);
    assert_eq!(
        o.token_file,
        Path::new("/home/u/.config/popwire/tokens/work.json")
    );
}

#[test]
fn other_servers_by_issuer_or_endpoints() {
    let o = one(&with_oauth(
        "issuer = \"https://auth.example.com\"\nclient_id = \"x\"\nclient_secret_env = \"SECRET\"\nscopes = [\"mail\", \"offline_access\"]",
    ));
    let o = oauth_of(&o);
    assert_eq!(o.issuer.as_deref(), Some("https://auth.example.com"));
    assert_eq!(o.endpoints, Endpoints::default());
    assert_eq!(o.client_secret, Some(ClientSecret::Env("SECRET".into())));
    assert_eq!(o.scopes, ["mail", "offline_access"]);

    let o = one(&with_oauth(
        "token_endpoint = \"http://127.0.0.1:8080/token\"\ndevice_authorization_endpoint = \"https://a.example/d\"\nclient_id = \"x\"",
    ));
    let o = oauth_of(&o);
    assert_eq!(
        o.endpoints.token.as_deref(),
        Some("http://127.0.0.1:8080/token")
    );
    assert!(o.scopes.is_empty());
}

#[test]
fn mistakes_name_key_and_fix() {
    let e = error(&with_oauth("provider = \"google\""));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert_eq!(e.key(), Some("accounts.work.oauth"));
    assert!(e.to_string().contains("client_id"), "{e}");
    assert!(
        e.fix().unwrap().contains("popwire ships no client id"),
        "{e}"
    );

    let e = error(&with_oauth("client_id = \"x\""));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert!(e.fix().unwrap().contains("provider = \"google\""), "{e}");

    let e = error(&with_oauth("provider = \"yahoo\"\nclient_id = \"x\""));
    assert_eq!(e.key(), Some("accounts.work.oauth.provider"));
    assert_eq!(e.line(), Some(7));

    let e = error(&with_oauth(
        "provider = \"google\"\nclient_id = \"x\"\nclient_secrets = \"y\"",
    ));
    assert_eq!(e.kind(), ConfigErrorKind::UnknownKey);
    assert_eq!(e.fix(), Some("did you mean \"client_secret\"?"));

    let e = error(&with_oauth(
        "provider = \"google\"\nclient_id = \"x\"\ntoken_endpoint = \"http://auth.example.com/token\"",
    ));
    assert_eq!(e.key(), Some("accounts.work.oauth.token_endpoint"));
    assert!(e.to_string().contains("not an https:// URL"), "{e}");

    let e = error(&with_oauth(
        "provider = \"google\"\nclient_id = \"x\"\nclient_secret = \"s3cr3t\"\nclient_secret_env = \"V\"",
    ));
    assert_eq!(e.kind(), ConfigErrorKind::Conflict);
    assert!(!e.to_string().contains("s3cr3t"));

    let e = error(&with_oauth(
        "provider = \"google\"\nclient_id = \"x\"\nscopes = [\"a b\"]",
    ));
    assert_eq!(e.key(), Some("accounts.work.oauth.scopes"));

    let e = error(&with_oauth(
        "provider = \"google\"\nclient_id = \"x\"\ntenant = \"t\"",
    ));
    assert_eq!(e.key(), Some("accounts.work.oauth.tenant"));

    // One credential per account: oauth and a password conflict.
    let text = format!(
        "{}\n[accounts.work.oauth]\nprovider = \"google\"\nclient_id = \"x\"\n",
        account_with("maildir = \"~/Mail/work\"\npassword = \"pw\"")
    );
    assert_eq!(error(&text).kind(), ConfigErrorKind::Conflict);

    // A password-only login method cannot use a token.
    let text = format!(
        "{}\n[accounts.work.oauth]\nprovider = \"google\"\nclient_id = \"x\"\n",
        account_with("maildir = \"~/Mail/work\"\nauth = \"user\"")
    );
    let e = error(&text);
    assert_eq!(e.kind(), ConfigErrorKind::Conflict);
    assert!(e.message().contains("has oauth"), "{e}");

    let e = error(&account_with(
        "maildir = \"~/Mail/work\"\noauth = \"google\"",
    ));
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert_eq!(e.key(), Some("accounts.work.oauth"));
}
