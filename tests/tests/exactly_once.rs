//! Exactly-once cases the schedule and the server bring, beyond a single fetch: a server that
//! hands a deleted message's UID to a new message, keep mode with UIDs that identify nothing, and
//! an account moved to another destination while a batch was pending.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{Account, maildrop, messages};
use popwire_tests::faulty::FaultServer;

#[test]
fn a_uid_reused_after_deletion_names_a_new_message_that_is_fetched() {
    let first = b"Subject: first\n\nAAAA\n".to_vec();
    let second = b"Subject: other\n\nBBBB\n".to_vec();
    assert_eq!(
        first.len(),
        second.len(),
        "same size, so only the UID could tell them apart"
    );
    let server = FaultServer::builder(maildrop::<Vec<u8>>(&[]))
        .start()
        .unwrap();
    server
        .maildrop()
        .add_message_with_uid("reused", first.clone());
    let acct = Account::new(server.port());
    acct.fetch().unwrap();
    assert!(server.maildrop().is_empty());
    // The server gives the freed UID to the next message, of the same size.
    server
        .maildrop()
        .add_message_with_uid("reused", second.clone());
    let summary = acct.fetch().unwrap();
    assert_eq!(
        summary.fetched, 1,
        "the new message was taken for the deleted one"
    );
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(acct.stored(), expected);
    assert!(server.maildrop().is_empty());
}

#[test]
fn keep_mode_leaves_messages_without_a_usable_uid_alone_and_says_so() {
    let all = messages(3);
    let server = FaultServer::builder(maildrop::<Vec<u8>>(&[]))
        .start()
        .unwrap();
    {
        let mut drop = server.maildrop();
        drop.add_message_with_uid("twice", all[0].clone());
        drop.add_message_with_uid("twice", all[1].clone());
        drop.add_message_with_uid("once", all[2].clone());
    }
    let acct = Account::new(server.port()).with("keep = true");
    for run in 0..3 {
        let summary = acct.fetch().unwrap();
        assert_eq!(summary.skipped_unidentified, 2, "run {run}");
        assert_eq!(summary.fetched, usize::from(run == 0), "run {run}");
        assert_eq!(acct.stored(), vec![all[2].clone()], "run {run}");
    }
    assert_eq!(server.maildrop().len(), 3);
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("no unique UID"), "{}", run.stderr);
}

#[test]
fn a_closed_standard_output_neither_panics_nor_stops_the_fetch() {
    let all = messages(4);
    let server = FaultServer::builder(maildrop(&all)).start().unwrap();
    let acct = Account::new(server.port());
    // `popwire fetch --json | head -1` with head gone before the first line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = std::process::Command::new(popwire_tests::process::popwire_binary().unwrap())
        .args(["fetch", "--json", "--config"])
        .arg(acct.config_path())
        .arg("--state-dir")
        .arg(acct.state_dir())
        .stdout(writer)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(acct.stored(), expected);
    assert!(server.maildrop().is_empty());
}

#[test]
fn a_message_the_mda_refuses_stays_on_the_server_and_the_rest_flows() {
    let mut all = messages(5);
    all[2] = b"Subject: REFUSE me\n\nthe MDA will not take this one\n".to_vec();
    let server = FaultServer::builder(maildrop(&all)).start().unwrap();
    let acct = Account::new(server.port());
    let out = acct.dir.path().join("mda-out");
    std::fs::create_dir_all(&out).unwrap();
    // An MDA that refuses one message for good (exit 67, EX_NOUSER) and takes the others.
    let mda = format!(
        "f=$(mktemp {0}/m.XXXXXX) && cat > \"$f\" && if grep -q REFUSE \"$f\"; then rm \"$f\"; echo 'no such user' >&2; exit 67; fi",
        out.display()
    );
    let config = acct.config_path();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("maildir"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &format!("mda = {mda:?}\n");
    std::fs::write(&config, text).unwrap();
    let run = std::process::Command::new(popwire_tests::process::popwire_binary().unwrap())
        .args(["fetch", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(acct.state_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("left on the server") && stderr.contains("no such user"),
        "{stderr}"
    );
    let delivered = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(delivered, 4, "{stderr}");
    let left: Vec<Vec<u8>> = server.maildrop().messages().map(<[u8]>::to_vec).collect();
    assert_eq!(left, vec![all[2].clone()]);
}
