//! `[accounts.NAME.gmail]`: defaults, every key, the OAuth login it uses, and each mistake
//! named with its key and fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

const OAUTH: &str = "[accounts.work.gmail.oauth]\nprovider = \"google\"\nclient_id = \"abc.apps.googleusercontent.com\"\n";

fn with_gmail(table: &str) -> String {
    format!(
        "{}\n[accounts.work.gmail]\n{table}\n{OAUTH}",
        account_with("password = \"pw\"")
    )
}

fn gmail_of(account: &Account) -> &GmailConfig {
    match &account.destination {
        Destination::Gmail(g) => g,
        other => panic!("not gmail: {other:?}"),
    }
}

#[test]
fn defaults() {
    let account = one(&with_gmail(""));
    let g = gmail_of(&account);
    assert_eq!(g.account, "work");
    assert_eq!(g.user, "me");
    assert_eq!(g.labels, ["INBOX", "UNREAD"]);
    assert!(!g.create_labels && !g.never_mark_spam && !g.process_for_calendar);
    assert_eq!(g.internal_date_source, InternalDateSource::DateHeader);
    assert_eq!(g.endpoint, GMAIL_ENDPOINT);
    assert_eq!(g.max_import_size, GMAIL_IMPORT_CAP);
    assert_eq!(account.destination.size_cap(), Some(GMAIL_IMPORT_CAP));
    // Its own login: the Gmail scope and a token file of its own.
    assert_eq!(g.oauth.scopes, [GMAIL_SCOPE]);
    assert_eq!(
        g.oauth.token_file,
        default_token_file("work-gmail", Some(Path::new("/home/u"))).unwrap()
    );
    // The POP side keeps its password.
    assert_eq!(account.credential.config_key(), "password");
}

#[test]
fn every_key() {
    let account = one(&with_gmail(
        "user = \"me@example.com\"\nlabels = [\"INBOX\", \"From POP\", \"INBOX\"]\ncreate_labels = true\n\
         internal_date_source = \"receivedTime\"\nnever_mark_spam = true\nprocess_for_calendar = true\n\
         endpoint = \"http://127.0.0.1:8080/\"\nmax_import_size = \"1M\"",
    ));
    let g = gmail_of(&account);
    assert_eq!(g.user, "me@example.com");
    assert_eq!(g.labels, ["INBOX", "From POP"]);
    assert!(g.create_labels && g.never_mark_spam && g.process_for_calendar);
    assert_eq!(g.internal_date_source, InternalDateSource::ReceivedTime);
    assert_eq!(g.endpoint, "http://127.0.0.1:8080");
    assert_eq!(g.max_import_size, 1 << 20);
}

#[test]
fn the_accounts_own_oauth_serves_when_the_table_has_none() {
    let text = format!(
        "{}\n[accounts.work.oauth]\nprovider = \"google\"\nclient_id = \"id\"\n[accounts.work.gmail]\n",
        account_with("")
    );
    let account = one(&text);
    let g = gmail_of(&account);
    assert_eq!(g.oauth.scopes, ["https://mail.google.com/"]);
    assert!(account.credential.is_token());
}

#[test]
fn mistakes_name_the_key_and_the_fix() {
    let e = error(&format!(
        "{}\n[accounts.work.gmail]\nlabels = [\"INBOX\"]\n",
        account_with("password = \"pw\"")
    ));
    assert_eq!(e.kind(), ConfigErrorKind::MissingKey);
    assert_eq!(e.key(), Some("accounts.work.gmail"));
    assert!(
        e.to_string()
            .contains("add [accounts.work.gmail.oauth] with provider = \"google\""),
        "{e}"
    );
    let e = error(&with_gmail("lables = [\"INBOX\"]"));
    assert_eq!(e.kind(), ConfigErrorKind::UnknownKey);
    assert_eq!(e.key(), Some("accounts.work.gmail.lables"));
    assert_eq!(e.fix(), Some("did you mean \"labels\"?"));
    let e = error(&with_gmail("internal_date_source = \"now\""));
    assert_eq!(e.key(), Some("accounts.work.gmail.internal_date_source"));
    assert_eq!(e.fix(), Some(r#"expected "dateHeader" or "receivedTime""#));
    let e = error(&with_gmail("endpoint = \"http://gmail.example.com\""));
    assert_eq!(e.key(), Some("accounts.work.gmail.endpoint"));
    assert_eq!(e.kind(), ConfigErrorKind::BadValue);
    let e = error(&with_gmail("max_import_size = \"200M\""));
    assert_eq!(e.key(), Some("accounts.work.gmail.max_import_size"));
    let e = error(&with_gmail("never_mark_spam = \"yes\""));
    assert_eq!(e.kind(), ConfigErrorKind::WrongType);
    assert_eq!(e.fix(), Some("write it like never_mark_spam = false"));
    let e = error(&with_gmail("labels = [\"\"]"));
    assert_eq!(e.key(), Some("accounts.work.gmail.labels"));
    let e = error(&with_gmail("user = \"a/b\""));
    assert_eq!(e.key(), Some("accounts.work.gmail.user"));
    // A second destination beside it.
    let e = error(&format!(
        "{}\n[accounts.work.gmail]\n{OAUTH}",
        account_with("password = \"pw\"\nmaildir = \"~/m\"")
    ));
    assert_eq!(e.kind(), ConfigErrorKind::Conflict);
    // The oauth table under gmail is checked like the account's, with its own key path.
    let e = error(&format!(
        "{}\n[accounts.work.gmail]\n[accounts.work.gmail.oauth]\nprovider = \"google\"\n",
        account_with("password = \"pw\"")
    ));
    assert_eq!(e.key(), Some("accounts.work.gmail.oauth"));
    assert!(e.message().contains("client_id"), "{e}");
}

#[test]
fn debug_hides_the_client_secret() {
    let text = format!(
        "{}\n[accounts.work.gmail]\n[accounts.work.gmail.oauth]\nprovider = \"google\"\nclient_id = \"id\"\nclient_secret = \"canary-7f3a\"\n",
        account_with("password = \"pw\"")
    );
    let account = one(&text);
    assert!(!format!("{account:?}").contains("canary-7f3a"));
}
