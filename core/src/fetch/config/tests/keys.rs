//! Each account key's accepted values and its refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn port_defaults_follow_security() {
    for (security, port) in [("tls", 995), ("starttls", 110), ("none", 110)] {
        let account = one(&account_with(&format!(
            "{BASICS}\nsecurity = \"{security}\""
        )));
        assert_eq!(account.port, port, "{security}");
    }
}

#[test]
fn auth_values() {
    let cases = [
        ("auto", AuthChoice::Auto),
        ("USER", AuthChoice::User),
        ("apop", AuthChoice::Apop),
        ("plain", AuthChoice::Sasl(Mechanism::Plain)),
        ("login", AuthChoice::Sasl(Mechanism::Login)),
        ("Cram-MD5", AuthChoice::Sasl(Mechanism::CramMd5)),
        ("scram-sha-1", AuthChoice::Sasl(Mechanism::ScramSha1)),
        ("scram-sha-256", AuthChoice::Sasl(Mechanism::ScramSha256)),
        ("xoauth2", AuthChoice::Sasl(Mechanism::XOAuth2)),
        ("oauthbearer", AuthChoice::Sasl(Mechanism::OAuthBearer)),
    ];
    for (text, expected) in cases {
        let account = one(&account_with(&format!("{BASICS}\nauth = \"{text}\"")));
        assert_eq!(account.auth, expected);
    }
    let e = error(&account_with(&format!("{BASICS}\nauth = \"gssapi\"")));
    assert_eq!(e.kind(), ConfigErrorKind::BadValue);
    assert_eq!(
        e.to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.auth: unknown auth \"gssapi\" (expected one of \"auto\", \"user\", \
             \"apop\", \"plain\", \"login\", \"cram-md5\", \"scram-sha-1\", \"scram-sha-256\", \"xoauth2\", \
             \"oauthbearer\")"
        )
    );
}

#[test]
fn keep_values() {
    let cases = [
        ("false", Keep::Delete),
        ("true", Keep::Forever),
        ("\"12h\"", Keep::For(Duration::from_secs(43_200))),
        ("\"90m\"", Keep::For(Duration::from_secs(5_400))),
        ("\"2w\"", Keep::For(Duration::from_secs(1_209_600))),
        ("\"45s\"", Keep::For(Duration::from_secs(45))),
    ];
    for (text, expected) in cases {
        let account = one(&account_with(&format!("{BASICS}\nkeep = {text}")));
        assert_eq!(account.keep, expected, "{text}");
    }
    assert_eq!(
        error(&account_with(&format!("{BASICS}\nkeep = 30"))).to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.keep: 30 has no unit (write keep = \"30d\" for days, or true to keep forever)"
        )
    );
    assert_eq!(
        error(&account_with(&format!("{BASICS}\nkeep = \"0d\""))).to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.keep: a zero duration would delete at once (write keep = false)"
        )
    );
    assert_eq!(
        error(&account_with(&format!("{BASICS}\nkeep = \"3 months\""))).to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.keep: \"3 months\" is not a duration: unknown unit \"months\" \
             (write a number and a unit: \"45s\", \"90m\", \"12h\", \"30d\" or \"2w\")"
        )
    );
    let e = error(&account_with(&format!("{BASICS}\nkeep = 1.5")));
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert_eq!(
        e.message(),
        "expected a boolean or a duration string, found a float"
    );
}

#[test]
fn destinations() {
    let account = one(&account_with("password = \"pw\"\nmbox = \"mail/inbox\""));
    assert_eq!(
        account.destination,
        Destination::Mbox("/home/u/.config/popwire/mail/inbox".into())
    );
    let account = one(&account_with("password = \"pw\"\nmda = \"procmail -d me\""));
    assert_eq!(
        account.destination,
        Destination::Mda(CommandLine::Shell("procmail -d me".into()))
    );
    let account = one(&account_with("password = \"pw\"\nmda = [\"maildrop\"]"));
    assert_eq!(
        account.destination,
        Destination::Mda(CommandLine::Argv(vec!["maildrop".into()]))
    );

    assert_eq!(
        error(&account_with(
            "password = \"pw\"\nmaildir = \"/m\"\nmbox = \"/b\""
        ))
        .to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.mbox: conflicts with \"maildir\" on line 5 \
             (keep only one of \"maildir\", \"mbox\", \"mda\", \"imap\", \"gmail\")"
        )
    );
    let e = error(&account_with("password = \"pw\""));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert_eq!(
        e.to_string(),
        format!(
            "{ORIGIN}:1: accounts.work: missing one of \"maildir\", \"mbox\", \"mda\", \"imap\", \"gmail\" \
             (add maildir = \"~/Mail/inbox\", mbox = \"~/mbox\", mda = [\"procmail\"], an [accounts.NAME.imap] or an [accounts.NAME.gmail] table)"
        )
    );
    let e = error(&account_with("password = \"pw\"\nmda = [\"procmail\", 5]"));
    assert_eq!(e.key(), Some("accounts.work.mda[1]"));
    assert_eq!(e.message(), "expected a string, found an integer");
    let e = error(&account_with("password = \"pw\"\nmda = []"));
    assert_eq!(e.message(), "empty command");
    let e = error(&account_with("password = \"pw\"\nmaildir = \"\""));
    assert_eq!(e.message(), "empty path");
    let e = error(&account_with("password = \"pw\"\nmaildir = \"~bob/Mail\""));
    assert_eq!(e.fix(), Some("write the full path"));
}

#[test]
fn credentials() {
    let account = one(&account_with(
        "maildir = \"/m\"\npassword_command = \"pass show mail | head -1\"",
    ));
    assert_eq!(
        account.credential,
        CredentialSource::PasswordCommand(CommandLine::Shell("pass show mail | head -1".into()))
    );
    let account = one(&account_with(
        "maildir = \"/m\"\npassword_env = \"MAIL_PW\"",
    ));
    assert_eq!(
        account.credential,
        CredentialSource::PasswordEnv("MAIL_PW".into())
    );
    let account = one(&account_with(
        "maildir = \"/m\"\ntoken_command = [\"oauth2\", \"me\"]",
    ));
    assert!(account.credential.is_token());
    assert_eq!(account.credential.config_key(), "token_command");
    let account = one(&account_with(
        "maildir = \"/m\"\ntoken_command = \"get-token\"\nauth = \"oauthbearer\"",
    ));
    assert_eq!(account.auth, AuthChoice::Sasl(Mechanism::OAuthBearer));

    assert_eq!(
        error(&account_with(
            "maildir = \"/m\"\npassword = \"a\"\npassword_env = \"B\""
        ))
        .to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.password_env: conflicts with \"password\" on line 5 \
             (keep only one of \"password\", \"password_command\", \"password_env\", \"token_command\", \"oauth\")"
        )
    );
    let e = error(&account_with("maildir = \"/m\""));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert_eq!(
        e.message(),
        "missing one of \"password\", \"password_command\", \"password_env\", \"token_command\", \"oauth\""
    );
    assert_eq!(
        error(&account_with(
            "maildir = \"/m\"\ntoken_command = \"t\"\nauth = \"plain\""
        ))
        .to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.auth: this login method needs a password, but the account \
             has token_command (set auth = \"xoauth2\" or \"oauthbearer\", or use password_command)"
        )
    );
    assert_eq!(
        error(&account_with("maildir = \"/m\"\npassword = \"\"")).message(),
        "empty password"
    );
    assert_eq!(
        error(&account_with("maildir = \"/m\"\npassword_env = \"A=B\"")).kind(),
        ConfigErrorKind::BadValue
    );
    assert_eq!(
        error(&account_with("maildir = \"/m\"\npassword_command = \"  \"")).message(),
        "empty command"
    );
}

#[test]
fn sizes_and_timeouts() {
    for (text, size) in [
        ("1048576", 1_048_576),
        ("\"512K\"", 524_288),
        ("\"1G\"", 1 << 30),
    ] {
        let account = one(&account_with(&format!(
            "{BASICS}\nmax_message_size = {text}"
        )));
        assert_eq!(account.max_message_size, Some(size));
    }
    for text in ["0", "-5", "\"0K\"", "\"10X\""] {
        let e = error(&account_with(&format!(
            "{BASICS}\nmax_message_size = {text}"
        )));
        assert_eq!(e.kind(), ConfigErrorKind::BadValue, "{text}");
        assert_eq!(e.key(), Some("accounts.work.max_message_size"));
    }
    assert_eq!(
        error(&account_with(&format!("{BASICS}\nmax_message_size = true"))).kind(),
        ConfigErrorKind::WrongType
    );
    let account = one(&account_with(&format!("{BASICS}\ntimeout = \"2m\"")));
    assert_eq!(account.timeout, Duration::from_secs(120));
    assert_eq!(
        error(&account_with(&format!("{BASICS}\ntimeout = 0"))).to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.timeout: the timeout must be positive (write e.g. timeout = \"60s\")"
        )
    );
    assert_eq!(
        error(&account_with(&format!("{BASICS}\ntimeout = \"soon\""))).kind(),
        ConfigErrorKind::BadValue
    );
}

#[test]
fn ca_file_paths() {
    let account = one(&account_with(&format!("{BASICS}\nca_file = \"~/ca.pem\"")));
    assert_eq!(account.ca_file, Some(PathBuf::from("/home/u/ca.pem")));
    let account = one(&account_with(&format!(
        "{BASICS}\nca_file = \"/etc/ca.pem\""
    )));
    assert_eq!(account.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    let text = account_with(&format!("{BASICS}\nca_file = \"~/ca.pem\""));
    let e = Checker::new(&text, Path::new(ORIGIN), None)
        .check()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{ORIGIN}:6: accounts.work.ca_file: cannot expand \"~/ca.pem\": $HOME is not set (write the full path)"
        )
    );
}

#[test]
fn command_lines() {
    let shell = CommandLine::Shell("pass show mail | head -1".into());
    assert_eq!(shell.program(), "pass");
    assert_eq!(shell.to_string(), "pass show mail | head -1");
    let argv = CommandLine::Argv(vec!["gpg".into(), "-d".into()]);
    assert_eq!(argv.program(), "gpg");
    assert_eq!(argv.to_string(), "gpg -d");
    let output = argv.to_command().arg("--version").output();
    drop(output); // gpg may not be installed; building the command is what is tested
    let output = CommandLine::Shell("echo $((1+2))".into())
        .to_command()
        .output()
        .unwrap();
    assert_eq!(output.stdout, b"3\n");
}
