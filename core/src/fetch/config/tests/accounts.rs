//! Whole files: accounts, their defaults and order, warnings, what `Debug` shows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn minimal_account_gets_defaults() {
    let account = one(&account_with(BASICS));
    assert_eq!(account.name, "work");
    assert_eq!(account.email, "me@example.com");
    assert_eq!(account.username, "me@example.com");
    assert_eq!(
        account.credential,
        CredentialSource::Password(Secret::new("hunter2"))
    );
    assert_eq!(account.server, "pop.example.com");
    assert_eq!(account.port, 995);
    assert_eq!(account.security, Security::Tls);
    assert_eq!(account.ca_file, None);
    assert_eq!(account.auth, AuthChoice::Auto);
    assert_eq!(account.keep, Keep::Delete);
    assert_eq!(
        account.destination,
        Destination::Maildir("/home/u/Mail/work".into())
    );
    assert_eq!(account.max_message_size, None);
    assert_eq!(account.timeout, Duration::from_secs(60));
}

#[test]
fn every_key() {
    let account = one(&account_with(
        r#"username = "me"
password_command = ["pass", "show", "mail"]
port = 1995
security = "StartTLS"
ca_file = "certs/ca.pem"
auth = "scram-sha-256"
keep = "30d"
mbox = "/var/mail/me"
max_message_size = "10M"
timeout = 90"#,
    ));
    assert_eq!(account.username, "me");
    assert_eq!(
        account.credential,
        CredentialSource::PasswordCommand(CommandLine::Argv(vec![
            "pass".into(),
            "show".into(),
            "mail".into()
        ]))
    );
    assert_eq!(account.port, 1995);
    assert_eq!(account.security, Security::StartTls);
    assert_eq!(
        account.ca_file,
        Some(PathBuf::from("/home/u/.config/popwire/certs/ca.pem"))
    );
    assert_eq!(account.auth, AuthChoice::Sasl(Mechanism::ScramSha256));
    assert_eq!(account.keep, Keep::For(Duration::from_secs(30 * 86_400)));
    assert_eq!(
        account.destination,
        Destination::Mbox("/var/mail/me".into())
    );
    assert_eq!(account.max_message_size, Some(10 * 1024 * 1024));
    assert_eq!(account.timeout, Duration::from_secs(90));
}

#[test]
fn accounts_keep_file_order() {
    let text = ["zeta", "alpha", "mid"]
        .iter()
        .map(|name| {
            format!(
                "[accounts.{name}]\nemail = \"{name}@x.org\"\nserver = \"pop.x.org\"\n{BASICS}\n\n"
            )
        })
        .collect::<String>();
    let config = parse_at(&text).unwrap();
    let names: Vec<&str> = config.accounts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    assert_eq!(config.account("alpha").unwrap().email, "alpha@x.org");
    assert!(config.account("nope").is_none());
    assert!(config.warnings.is_empty());
}

#[test]
fn dotted_keys_and_inline_tables_work_too() {
    let text = "[accounts]\n\
         home = { email = \"h@x.org\", server = \"pop.x.org\", password_env = \"PW\", mbox = \"/mb\" }\n\
         work.email = \"me@example.com\"\nwork.server = \"pop.example.com\"\n\
         work.password = \"pw\"\nwork.maildir = \"/m\"\n";
    let config = parse_at(text).unwrap();
    let names: Vec<&str> = config.accounts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["home", "work"]);
    assert_eq!(
        config.accounts[1].1.destination,
        Destination::Maildir("/m".into())
    );
    // Errors in an implied table still find their line.
    let e = error(
        "accounts.work.email = \"me@example.com\"\naccounts.work.server = \"s\"\n\
         accounts.work.password = \"pw\"\naccounts.work.port = \"x\"\n",
    );
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.key(), Some("accounts.work.port"));
}

#[test]
fn no_accounts() {
    for text in ["", "[accounts]\n"] {
        assert_eq!(
            error(text).to_string(),
            format!(
                "{ORIGIN}: no accounts (add an [accounts.NAME] table with email, server, a password and a maildir)"
            )
        );
    }
}

#[test]
fn debug_never_shows_the_password() {
    let config = parse_at(&account_with(BASICS)).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("Secret(..)"));
}

#[test]
fn clear_text_warning() {
    let config = parse_at(&account_with(&format!("{BASICS}\nsecurity = \"none\""))).unwrap();
    assert_eq!(
        config.warnings,
        [format!(
            "{ORIGIN}:6: accounts.work.security: security = \"none\" sends the password to \
             pop.example.com in clear text (use \"tls\" or \"starttls\")"
        )]
    );
    for server in ["localhost", "127.0.0.1", "[::1]", "mail.localhost"] {
        let text = format!(
            "[accounts.t]\nemail = \"a@b\"\nserver = \"{server}\"\nsecurity = \"none\"\n{BASICS}\n"
        );
        assert!(parse_at(&text).unwrap().warnings.is_empty(), "{server}");
    }
}
