//! Gmail's real import cap (150 MiB, `GMAIL_IMPORT_CAP`), without 150 MiB of mail: a POP
//! server lists one small message as one octet over the cap, and popwire must leave it there,
//! never RETR it, and report its UID, size and the cap, while the rest is imported into the
//! Gmail API stand-in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::path::Path;

use common::{maildrop, messages};
use popwire::fetch::config::{self, GMAIL_IMPORT_CAP};
use popwire::fetch::job::{FetchOptions, fetch_account};
use popwire_tests::faulty::{FaultServer, Faults, Step, rewrite};
use popwire_tests::gmail_server::GmailServer;
use popwire_tests::oauth_server::OAuthServer;

#[test]
fn a_message_listed_over_the_real_cap_is_left_and_reported() {
    let all = messages(3);
    let server = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(
            Step::every("LIST"),
            rewrite::list_sizes(|n, size| if n == 2 { GMAIL_IMPORT_CAP + 1 } else { size }),
        ))
        .start()
        .unwrap();
    let oauth = OAuthServer::start().unwrap();
    let gmail = GmailServer::start(oauth.token_checker()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (access, refresh) = oauth.issue("cap");
    let token_file = dir.path().join("token.json");
    std::fs::write(
        &token_file,
        format!(
            "{{\"format\":1,\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\",\
             \"token_endpoint\":\"{}/token\",\"obtained_at\":0}}",
            oauth.base
        ),
    )
    .unwrap();
    let text = format!(
        "[accounts.cap]\nemail = \"alice@example.com\"\nusername = \"{}\"\npassword = \"{}\"\n\
         server = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nauth = \"user\"\n\
         [accounts.cap.gmail]\nendpoint = \"{}\"\n[accounts.cap.gmail.oauth]\n\
         token_endpoint = \"{}/token\"\nclient_id = \"cap\"\ntoken_file = {:?}\n",
        common::USER,
        common::PASSWORD,
        server.port(),
        gmail.base,
        oauth.base,
        token_file,
    );
    let config = config::parse(&text, Path::new("cap.toml")).unwrap();
    let account = config.account("cap").unwrap();
    let summary = fetch_account(account, &FetchOptions::new(dir.path()), &mut |_| {}).unwrap();
    assert_eq!(summary.fetched, 2);
    assert_eq!(summary.refused.len(), 1, "{:?}", summary.refused);
    let (uid, why) = &summary.refused[0];
    assert!(
        why.contains(&format!("message {uid} is {} octets", GMAIL_IMPORT_CAP + 1))
            && why.contains(&format!("cap of {GMAIL_IMPORT_CAP} octets"))
            && why.contains("account cap"),
        "{why}"
    );
    assert_eq!(server.maildrop().len(), 1);
    assert_eq!(gmail.imported().len(), 2);
    // Never retrieved: only two RETRs reached the server.
    let retrs = server
        .log()
        .iter()
        .flat_map(|session| session.lines.iter())
        .filter(|line| line.verb == "RETR")
        .count();
    assert_eq!(retrs, 2);
    assert_eq!(gmail.violations(), Vec::<String>::new());
}
