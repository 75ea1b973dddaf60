//! `[accounts.NAME.imap]`: defaults, credentials, and mistakes named with their fix.

use super::*;

fn with_imap(table: &str) -> String {
    account_with(&format!(
        "password = \"pop-pw\"\n[accounts.work.imap]\nserver = \"imap.example.com\"\nusername = \"me@example.org\"\n{table}"
    ))
}

fn imap_of(text: &str) -> ImapConfig {
    match one(text).destination {
        Destination::Imap(config) => *config,
        other => panic!("not an IMAP destination: {other:?}"),
    }
}

#[test]
fn defaults_are_tls_993_inbox_created_unread() {
    let config = imap_of(&with_imap("password_command = [\"pass\", \"imap\"]"));
    assert_eq!(config.port, 993);
    assert_eq!(config.security, Security::Tls);
    assert_eq!(config.folder, "INBOX");
    assert!(config.create_folder);
    assert!(config.flags.is_empty());
    assert_eq!(config.auth, ImapAuth::Auto);
    assert!(matches!(
        config.credential,
        CredentialSource::PasswordCommand(_)
    ));

    let config = imap_of(&with_imap(
        "password_env = \"IMAP_PW\"\nsecurity = \"starttls\"\nfolder = \"From ISP\"\ncreate_folder = false\nflags = ['\\Seen', \"popwire\"]",
    ));
    assert_eq!(config.port, 143);
    assert_eq!(config.folder, "From ISP");
    assert!(!config.create_folder);
    assert_eq!(config.flags, ["\\Seen", "popwire"]);
}

#[test]
fn oauth_tokens_get_their_own_file() {
    let config = imap_of(&with_imap(
        "[accounts.work.imap.oauth]\nprovider = \"google\"\nclient_id = \"id\"\ntoken_file = \"/t/imap.json\"",
    ));
    let CredentialSource::OAuth(oauth) = config.credential else {
        panic!("not oauth");
    };
    assert_eq!(oauth.account, "work-imap");
    assert_eq!(oauth.token_file, PathBuf::from("/t/imap.json"));
}

#[test]
fn mistakes_name_the_key_and_the_fix() {
    let e = error(&with_imap("password = \"x\"\nsecurity = \"none\""));
    assert_eq!(e.key(), Some("accounts.work.imap.security"));
    assert!(e.to_string().contains("allow_plaintext = true"), "{e}");
    let config = imap_of(&with_imap(
        "password = \"x\"\nsecurity = \"none\"\nallow_plaintext = true",
    ));
    assert_eq!((config.security, config.port), (Security::None, 143));

    let e = error(&with_imap("password = \"x\"\nfolderr = \"x\""));
    assert_eq!(e.key(), Some("accounts.work.imap.folderr"));
    assert!(e.to_string().contains("did you mean \"folder\""), "{e}");

    let e = error(&with_imap("password = \"x\"\nflags = [\"\\\\Unread\"]"));
    assert_eq!(e.key(), Some("accounts.work.imap.flags"));
    assert!(e.to_string().contains("not a system flag"), "{e}");

    let e = error(&with_imap(""));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert!(e.to_string().contains("accounts.work.imap"), "{e}");

    let e = error(&with_imap("password = \"x\"\nauth = \"xoauth2\""));
    assert_eq!(e.kind(), ConfigErrorKind::Conflict);

    let e = error(&account_with(
        "password = \"x\"\nmaildir = \"/m\"\n[accounts.work.imap]\nserver = \"i\"\nusername = \"u\"\npassword = \"y\"",
    ));
    assert_eq!(e.kind(), ConfigErrorKind::Conflict);
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let text = with_imap("password = \"imap-secret-42\"\nport = 0");
    let e = error(&text);
    assert!(!e.to_string().contains("imap-secret-42"));
    let config = imap_of(&with_imap("password = \"imap-secret-42\""));
    assert!(!format!("{config:?}").contains("imap-secret-42"));
}
