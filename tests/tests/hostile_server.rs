//! The fetch job and the `popwire` command against hostile and broken servers (the scripted
//! [`FaultServer`]): every NO STARTTLS case, APOP in cleartext, bad certificates, oversized and
//! endless lines, stalls, garbage, lies about sizes and unique-ids, temporary refusals, unique-ids
//! shaped like paths, terminal escapes in server text, and dropped connections at each step.
//!
//! For each fault: nothing is lost (every message is on the server or stored exactly once),
//! nothing unstored is deleted, the error is clear (kind, message, exit code), no credential
//! leaves the client when it must not, and the retry succeeds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Account, PASSWORD, USER, assert_all_stored_once, assert_nothing_lost, ca,
    has_terminal_controls, kind, maildrop, messages,
};
use popwire::fetch::job::{FetchError, exit};
use popwire::net::NetError;
use popwire::proto::{Error, ResponseCode};
use popwire_tests::ServerCert;
use popwire_tests::faulty::{Action, FaultServer, Faults, Step, rewrite};

/// What is still on the fault server.
fn on_server(server: &FaultServer) -> Vec<Vec<u8>> {
    server.maildrop().messages().map(<[u8]>::to_vec).collect()
}

/// After a failed first run: nothing lost, no credential shown, and a clean retry stores
/// everything exactly once and empties the server.
#[track_caller]
fn retry_succeeds(server: &FaultServer, acct: &Account, all: &[Vec<u8>]) {
    assert_nothing_lost(all, &on_server(server), &acct.stored());
    let summary = acct.fetch().unwrap_or_else(|e| panic!("retry failed: {e}"));
    assert_all_stored_once(all, &acct.stored());
    assert!(server.maildrop().is_empty(), "server not emptied");
    assert!(summary.sessions >= 1);
}

// ---- NO STARTTLS ------------------------------------------------------------------------------

#[test]
fn response_injected_after_stls_is_refused_before_any_credential() {
    let all = messages(3);
    let inject = Faults::at(
        Step::command("STLS", 1),
        Action::Append(b"+OK injected: logged in\r\n".to_vec()),
    );
    let server = FaultServer::builder(maildrop(&all))
        .stls(ca(), ServerCert::Good)
        .session(1, inject.clone())
        .session(2, inject)
        .start()
        .unwrap();
    let acct = Account::new(server.port()).security("starttls");

    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "protocol:injection-after-stls", "{err}");
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(run.stderr.contains("injection"), "{}", run.stderr);

    assert!(!server.credentials_sent(), "{:?}", server.log());
    for s in server.log() {
        assert_eq!(s.verbs(), ["CAPA", "STLS"], "session {}", s.number);
    }
    assert!(acct.stored().is_empty());
    // The attacker gone, the same account works.
    retry_succeeds(&server, &acct, &all);
}

#[test]
fn stls_stripped_from_capa_or_not_offered_stops_before_any_credential() {
    let all = messages(2);
    // A man in the middle removes STLS from the capabilities of a server that has it...
    let stripping = FaultServer::builder(maildrop(&all))
        .stls(ca(), ServerCert::Good)
        .session(
            1,
            Faults::at(Step::every("CAPA"), rewrite::strip_capability("STLS")),
        )
        .session(
            2,
            Faults::at(Step::every("CAPA"), rewrite::strip_capability("STLS")),
        )
        .start()
        .unwrap();
    // ...or the server never offered it.
    let plain = FaultServer::builder(maildrop(&all)).start().unwrap();
    for server in [&stripping, &plain] {
        let acct = Account::new(server.port()).security("starttls");
        let err = acct.fetch().unwrap_err();
        assert_eq!(kind(&err), "policy:tls-unavailable", "{err}");
        assert!(err.to_string().contains("does not offer STLS"), "{err}");
        let run = acct.cli("fetch", &[]);
        assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
        assert!(run.stderr.contains("TLS is required"), "{}", run.stderr);
        assert!(!server.credentials_sent(), "{:?}", server.log());
        assert!(server.log().iter().all(|s| s.verbs() == ["CAPA"]));
        assert!(acct.stored().is_empty());
        assert_eq!(server.maildrop().len(), 2);
    }
    // With the stripping gone, STLS is used and the fetch completes.
    let acct = Account::new(stripping.port()).security("starttls");
    retry_succeeds(&stripping, &acct, &all);
    let last = stripping.session(3).unwrap();
    assert!(last.credential_lines().iter().all(|l| l.tls), "{last:?}");
}

#[test]
fn capa_refused_then_stls_refused_stops_but_capa_refused_alone_still_upgrades() {
    let all = messages(2);
    let server = FaultServer::builder(maildrop(&all))
        .stls(ca(), ServerCert::Good)
        .session(
            1,
            Faults::at(Step::command("CAPA", 1), Action::err("", "unknown command"))
                .on(Step::command("STLS", 1), Action::err("", "not now")),
        )
        // RFC 2595 predates CAPA: a server refusing CAPA may still do STLS.
        .session(
            2,
            Faults::at(Step::command("CAPA", 1), Action::err("", "unknown command")),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port()).security("starttls");
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "policy:tls-unavailable", "{err}");
    assert!(err.to_string().contains("refused STLS"), "{err}");
    assert!(!server.credentials_sent());
    assert_eq!(server.session(1).unwrap().verbs(), ["CAPA", "STLS"]);

    acct.fetch().unwrap();
    let second = server.session(2).unwrap();
    assert_eq!(second.verbs()[..2], ["CAPA", "STLS"]);
    assert!(second.lines[2..].iter().all(|l| l.tls), "{second:?}");
    assert_all_stored_once(&all, &acct.stored());
}

#[test]
fn fake_stls_ok_without_a_handshake_is_a_tls_error_and_sends_nothing() {
    let all = messages(2);
    let server = FaultServer::builder(maildrop(&all))
        .stls(ca(), ServerCert::Good)
        .session(1, Faults::at(Step::command("STLS", 1), Action::FakeStls))
        .session(2, Faults::at(Step::command("STLS", 1), Action::FakeStls))
        .start()
        .unwrap();
    let acct = Account::new(server.port()).security("starttls");
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "tls:failed", "{err}");
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(run.stderr.contains("TLS"), "{}", run.stderr);
    assert!(!server.credentials_sent());
    assert!(!server.received_contains(PASSWORD.as_bytes()));
    // What the client sent after the fake +OK was a TLS ClientHello (record type 22), not POP3.
    let first = server.session(1).unwrap();
    assert_eq!(first.verbs()[..2], ["CAPA", "STLS"]);
    assert_eq!(first.lines[2].bytes.first(), Some(&0x16), "{first:?}");
    retry_succeeds(&server, &acct, &all);
}

#[test]
fn apop_is_refused_in_cleartext() {
    let all = messages(1);
    let stamp = "<1896.697170952@fault.example>";
    // A server that offers APOP and nothing else: no STLS, no USER, no SASL.
    let apop_only = FaultServer::builder(maildrop(&all))
        .options(|o| {
            o.apop_timestamp = Some(stamp.into());
            o.allow_cleartext_password = false;
            o.mechanisms.clear();
        })
        .start()
        .unwrap();
    // The account wants STLS: neither APOP named in the config nor automatic choice may go
    // ahead in cleartext.
    for auth in ["apop", "auto"] {
        let acct = Account::new(apop_only.port())
            .security("starttls")
            .with(&format!("auth = \"{auth}\""));
        let err = acct.fetch().unwrap_err();
        assert_eq!(kind(&err), "policy:tls-unavailable", "{auth}: {err}");
        let run = acct.cli("fetch", &[]);
        assert_eq!(run.code, exit::UNAVAILABLE, "{auth}: {run:?}");
        assert!(
            !apop_only.credentials_sent(),
            "{auth}: {:?}",
            apop_only.log()
        );
    }
    // The engine alone, without TLS and without permission for cleartext: automatic choice
    // never falls back to APOP (MD5 of a server-chosen timestamp, open to offline guessing).
    let mut o = popwire::net::ConnectOptions::new("127.0.0.1");
    o.port = Some(apop_only.port());
    o.security = popwire::proto::Security::None;
    o.timeout = Duration::from_secs(20);
    let mut pop = popwire::net::blocking::BlockingClient::connect(o).unwrap();
    assert_eq!(
        pop.engine()
            .greeting()
            .and_then(|g| g.apop_timestamp.as_deref()),
        Some(stamp)
    );
    let refused = pop
        .authenticate(
            USER,
            popwire::proto::Credential::Password(PASSWORD.into()),
            popwire::proto::AuthMethod::Auto,
        )
        .unwrap_err();
    assert!(
        matches!(refused, NetError::Pop3(Error::Policy(_))),
        "{refused}"
    );
    drop(pop);
    assert!(!apop_only.credentials_sent(), "{:?}", apop_only.log());
    assert_eq!(apop_only.maildrop().len(), 1);

    // Over STLS, APOP named in the config is used, inside TLS.
    let tls = FaultServer::builder(maildrop(&all))
        .options(|o| o.apop_timestamp = Some(stamp.into()))
        .stls(ca(), ServerCert::Good)
        .start()
        .unwrap();
    let acct = Account::new(tls.port())
        .security("starttls")
        .with("auth = \"apop\"");
    acct.fetch().unwrap();
    let log = tls.session(1).unwrap();
    let apop_line = log.lines.iter().find(|l| l.verb == "APOP");
    assert!(apop_line.is_some_and(|l| l.tls), "{log:?}");
    assert_all_stored_once(&all, &acct.stored());
}

// ---- certificates -----------------------------------------------------------------------------

#[test]
fn certificate_failures_abort_before_any_credential() {
    let all = messages(1);
    let cases = [
        (ServerCert::SelfSigned, false, "not signed by a trusted CA"),
        (ServerCert::Good, true, "not signed by a trusted CA"),
        (ServerCert::WrongHost, false, "not valid for this host name"),
        (ServerCert::Expired, false, "expired"),
    ];
    for implicit in [true, false] {
        for (cert, unknown_ca, why) in cases {
            let builder = FaultServer::builder(maildrop(&all));
            let server = if implicit {
                builder.implicit_tls(ca(), cert)
            } else {
                builder.stls(ca(), cert)
            }
            .start()
            .unwrap();
            let mut acct =
                Account::new(server.port()).security(if implicit { "tls" } else { "starttls" });
            if unknown_ca {
                acct = acct.ca_file(&ca().wrong_ca_cert);
            }
            let what = format!("{cert:?}, unknown CA {unknown_ca}, implicit {implicit}");
            let err = acct.fetch().unwrap_err();
            assert_eq!(kind(&err), "tls:certificate", "{what}: {err}");
            assert!(err.to_string().contains(why), "{what}: {err}");
            let log = server.session(1).unwrap();
            assert!(log.tls_error.is_some(), "{what}: {log:?}");
            let before_tls: &[&str] = if implicit { &[] } else { &["CAPA", "STLS"] };
            assert_eq!(log.verbs(), before_tls, "{what}");
            assert!(!server.credentials_sent(), "{what}");
            assert_eq!(server.maildrop().len(), 1);
            assert!(acct.stored().is_empty());
            if cert == ServerCert::Expired {
                let run = acct.cli("fetch", &[]);
                assert_eq!(run.code, exit::UNAVAILABLE, "{what}: {run:?}");
                assert!(run.stderr.contains("certificate"), "{}", run.stderr);
                assert!(!run.stderr.contains(PASSWORD));
                assert!(!server.credentials_sent(), "{what}");
            }
        }
    }
}

// ---- oversized and endless lines --------------------------------------------------------------

#[test]
fn status_line_over_the_cap_is_a_clear_error() {
    let all = messages(2);
    let long = format!("+OK {}\r\n", "a".repeat(600)).into_bytes();
    let long_err = format!("-ERR [SYS/TEMP] {}\r\n", "b".repeat(2000)).into_bytes();
    let server = FaultServer::builder(maildrop(&all))
        .session(1, Faults::at(Step::Greeting, Action::Replace(long.clone())))
        .session(2, Faults::at(Step::Greeting, Action::Replace(long)))
        .session(
            3,
            Faults::at(Step::command("LIST", 1), Action::Replace(long_err)),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "protocol:status-line-too-long", "{err}");
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(
        run.stderr.contains("status line longer than 512 octets"),
        "{}",
        run.stderr
    );
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "protocol:status-line-too-long", "{err}");
    assert!(!server.log()[..2].iter().any(|s| !s.lines.is_empty()));
    retry_succeeds(&server, &acct, &all);
}

/// 100 MB without a line end, where a status line is due and inside a message: the command
/// ends with a clear error while its memory stays far below the flood.
#[test]
fn a_hundred_megabyte_line_ends_with_a_clear_error_in_bounded_memory() {
    const FLOOD: u64 = 100 << 20;
    const MAX_KIB: u64 = 64 * 1024;
    let all = messages(3);
    let flood = |prefix: &[u8]| Action::Flood {
        prefix: prefix.to_vec(),
        len: FLOOD,
        fill: b'a',
    };
    let server = FaultServer::builder(maildrop(&all))
        .session(1, Faults::at(Step::Greeting, flood(b"+OK ")))
        .session(
            2,
            Faults::at(
                Step::command("RETR", 2),
                flood(format!("+OK {FLOOD} octets\r\n").as_bytes()),
            ),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());

    let run = acct.cli_measured("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(
        run.stderr.contains("status line longer than 512 octets"),
        "{}",
        run.stderr
    );
    let peak = run.peak_kib.unwrap();
    eprintln!("peak RSS {peak} KiB");
    assert!(peak < MAX_KIB, "peak RSS {peak} KiB");

    let run = acct.cli_measured("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(
        run.stderr.contains("data line longer than"),
        "{}",
        run.stderr
    );
    let peak = run.peak_kib.unwrap();
    eprintln!("peak RSS {peak} KiB");
    assert!(peak < MAX_KIB, "peak RSS {peak} KiB");
    assert!(
        server
            .session(2)
            .unwrap()
            .end
            .contains("client closed after"),
        "the client read the whole flood: {:?}",
        server.session(2).unwrap().end
    );
    assert!(acct.tmp_files().is_empty(), "{:?}", acct.tmp_files());
    // Message 1 came whole before the flood; message 2 never did; nothing was deleted.
    assert_eq!(server.maildrop().len(), 3);
    retry_succeeds(&server, &acct, &all);
}

// ---- stalls -----------------------------------------------------------------------------------

#[test]
fn a_stall_ends_by_timeout() {
    let all = messages(3);
    // Each stall where a reply is due: before the greeting, in the TLS handshake, in the middle
    // of the session, and at QUIT (after the DELEs).
    let stalls = [
        ("greeting", false, Step::Greeting),
        ("TLS handshake", true, Step::Connect),
        ("RETR", false, Step::command("RETR", 2)),
        ("QUIT", false, Step::command("QUIT", 1)),
    ];
    for (name, tls, step) in stalls {
        let builder = FaultServer::builder(maildrop(&all))
            .session(1, Faults::at(step.clone(), Action::Stall))
            .session(2, Faults::at(step, Action::Stall));
        let server = if tls {
            builder.implicit_tls(ca(), ServerCert::Good)
        } else {
            builder
        }
        .start()
        .unwrap();
        let acct = Account::new(server.port())
            .security(if tls { "tls" } else { "none" })
            .with("timeout = \"2s\"");
        let start = Instant::now();
        let err = acct.fetch().unwrap_err();
        let took = start.elapsed();
        assert_eq!(kind(&err), "net:timeout", "{name}: {err}");
        assert!(err.to_string().contains("timed out"), "{name}: {err}");
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(20),
            "{name}: took {took:?}"
        );
        let run = acct.cli("fetch", &[]);
        assert_eq!(run.code, exit::TEMPFAIL, "{name}: {run:?}");
        assert!(run.stderr.contains("timed out"), "{name}: {}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(20), "{name}: {run:?}");
        retry_succeeds(&server, &acct, &all);
    }
}

// ---- garbage and lies -------------------------------------------------------------------------

#[test]
fn garbage_instead_of_replies_is_a_protocol_error() {
    let all = messages(3);
    let server = FaultServer::builder(maildrop(&all))
        .session(
            1,
            Faults::at(
                Step::Greeting,
                Action::Replace(b"\x00\xff\xfeSSH-2.0-OpenSSH_9.6\r\n".to_vec()),
            ),
        )
        .session(
            2,
            Faults::at(
                Step::command("UIDL", 1),
                Action::Replace(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            ),
        )
        .session(
            3,
            Faults::at(
                Step::command("RETR", 2),
                Action::rewrite(|reply| {
                    let mut r = reply.to_vec();
                    // Cut off the terminating ".\r\n" and follow with nonsense.
                    r.truncate(r.len() - 3);
                    r.extend_from_slice(b"\x1b[0m\x00garbage");
                    r
                }),
            )
            .on(Step::command("RETR", 3), Action::Close),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "protocol:bad-greeting", "{err}");
    let err = acct.fetch().unwrap_err();
    assert_eq!(kind(&err), "protocol:bad-status-line", "{err}");
    let err = acct.fetch().unwrap_err();
    assert!(
        matches!(kind(&err).as_str(), "protocol:unexpected-eof" | "net:io"),
        "{err}"
    );
    assert_nothing_lost(&all, &on_server(&server), &acct.stored());
    assert_eq!(server.maildrop().len(), 3, "something was deleted");
    retry_succeeds(&server, &acct, &all);
}

#[test]
fn lies_about_list_sizes_lose_nothing() {
    let all = messages(4);
    // Sizes far too small: everything is still stored whole.
    let small = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(
            Step::every("LIST"),
            rewrite::list_sizes(|_, _| 1),
        ))
        .start()
        .unwrap();
    let acct = Account::new(small.port()).with("max_message_size = \"100\"");
    let summary = acct.fetch().unwrap();
    assert_eq!(summary.fetched, 4);
    assert_all_stored_once(&all, &acct.stored());
    assert!(small.maildrop().is_empty());

    // Sizes far too large: skipped as too large, and left on the server.
    let large = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(
            Step::every("LIST"),
            rewrite::list_sizes(|n, size| if n % 2 == 0 { 10 << 30 } else { size }),
        ))
        .start()
        .unwrap();
    let acct = Account::new(large.port()).with("max_message_size = \"1M\"");
    let summary = acct.fetch().unwrap();
    assert_eq!(summary.skipped_too_large, 2);
    assert_eq!(summary.fetched, 2);
    assert_nothing_lost(&all, &on_server(&large), &acct.stored());
    assert_eq!(large.maildrop().len(), 2);

    // A listing with a message that does not exist, and without one that does.
    let phantom = FaultServer::builder(maildrop(&all))
        .session(
            1,
            Faults::at(
                Step::every("LIST"),
                rewrite::lines(|line| {
                    if line.starts_with("2 ") {
                        Some("9 4000".into())
                    } else {
                        Some(line.into())
                    }
                }),
            )
            .on(
                Step::every("UIDL"),
                rewrite::lines(|line| {
                    if line.starts_with("2 ") {
                        Some("9 phantom".into())
                    } else {
                        Some(line.into())
                    }
                }),
            ),
        )
        .start()
        .unwrap();
    let acct = Account::new(phantom.port());
    let summary = acct.fetch().unwrap();
    assert_eq!(summary.fetched, 3);
    assert_nothing_lost(&all, &on_server(&phantom), &acct.stored());
    assert_eq!(on_server(&phantom), [all[1].clone()]);
    retry_succeeds(&phantom, &acct, &all);
}

#[test]
fn duplicate_uidls_lose_nothing() {
    let all = messages(4);
    let same = || rewrite::uidls(|_, _| "same-uid".into());
    // Delete mode: every message fetched once, then deleted.
    let server = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(Step::every("UIDL"), same()))
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    acct.fetch().unwrap();
    assert_all_stored_once(&all, &acct.stored());
    assert!(server.maildrop().is_empty());
}

#[test]
fn changing_uidls_lose_nothing() {
    let all = messages(3);
    // Every session invents new unique-ids.
    let server = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(
            Step::every("UIDL"),
            rewrite::uidls(|n, _| {
                use std::sync::atomic::{AtomicU64, Ordering};
                static CALLS: AtomicU64 = AtomicU64::new(0);
                format!("{n}-{}", CALLS.fetch_add(1, Ordering::Relaxed))
            }),
        ))
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    acct.fetch().unwrap();
    assert_all_stored_once(&all, &acct.stored());
    assert!(server.maildrop().is_empty());

    // Cut after DELE, before QUIT: the server keeps the messages, and the next session calls
    // them by other names. The client cannot recognise them: they arrive twice, none is lost.
    let server = FaultServer::builder(maildrop(&all))
        .session(1, Faults::at(Step::command("QUIT", 1), Action::Close))
        .every_session(Faults::none())
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    acct.fetch().unwrap_err();
    assert_eq!(server.maildrop().len(), 3);
    let renamed = FaultServer::builder(maildrop(&all))
        .every_session(Faults::at(
            Step::every("UIDL"),
            rewrite::uidls(|_, uid| format!("renamed-{uid}")),
        ))
        .start()
        .unwrap();
    let acct2 = Account {
        port: renamed.port(),
        ..acct
    };
    acct2.fetch().unwrap();
    let stored = acct2.stored();
    for m in &all {
        let copies = stored.iter().filter(|s| *s == m).count();
        assert!((1..=2).contains(&copies), "{copies} copies");
    }
    assert!(renamed.maildrop().is_empty());
}

/// A unique-id that an earlier session recorded, reused by the server for another message
/// (servers that use the message number as the unique-id do this): the message must not be
/// deleted unfetched.
#[test]
fn a_reused_uidl_never_deletes_an_unfetched_message() {
    let all = messages(2);
    let numbers_as_uids = || rewrite::uidls(|n, _| n.to_string());
    let server = FaultServer::builder(maildrop(&all))
        // Session 1: message 1 arrives whole, the connection drops in message 2.
        .session(
            1,
            Faults::at(Step::every("UIDL"), numbers_as_uids())
                .on(Step::command("RETR", 2), Action::Truncate(30)),
        )
        .every_session(Faults::at(Step::every("UIDL"), numbers_as_uids()))
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    acct.fetch().unwrap_err();
    assert_eq!(acct.stored(), [all[0].clone()]);
    // Another client takes message 1 meanwhile; message 2 is now number 1, UID "1".
    {
        let mut drop = server.maildrop();
        *drop = maildrop(&all[1..]);
    }
    acct.fetch().unwrap();
    assert_nothing_lost(&all, &on_server(&server), &acct.stored());
    assert_all_stored_once(&all, &acct.stored());
}

// ---- refusals ---------------------------------------------------------------------------------

#[test]
fn temporary_and_auth_refusals_at_login() {
    let all = messages(2);
    let cases = [
        ("IN-USE", ResponseCode::InUse, exit::TEMPFAIL),
        ("LOGIN-DELAY", ResponseCode::LoginDelay, exit::TEMPFAIL),
        ("SYS/TEMP", ResponseCode::SysTemp, exit::TEMPFAIL),
        ("AUTH", ResponseCode::Auth, exit::NOPERM),
    ];
    for (code, parsed, exit_code) in cases {
        let refuse = Faults::at(
            Step::command("AUTH", 1),
            Action::err(code, "refused by the fault server"),
        );
        let server = FaultServer::builder(maildrop(&all))
            .session(1, refuse.clone())
            .session(2, refuse)
            .start()
            .unwrap();
        let acct = Account::new(server.port());
        match acct.fetch().unwrap_err() {
            FetchError::Net(NetError::Pop3(Error::Server(e))) => {
                assert_eq!(e.code, Some(parsed.clone()), "{code}");
                assert_eq!(e.is_temporary(), exit_code == exit::TEMPFAIL, "{code}");
            }
            other => panic!("{code}: {other}"),
        }
        let run = acct.cli("fetch", &[]);
        assert_eq!(run.code, exit_code, "{code}: {run:?}");
        assert!(run.stderr.contains(&format!("[{code}]")), "{}", run.stderr);
        assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
        assert!(acct.stored().is_empty());
        retry_succeeds(&server, &acct, &all);
    }
}

#[test]
fn a_message_refused_with_sys_temp_stays_on_the_server() {
    let all = messages(3);
    let server = FaultServer::builder(maildrop(&all))
        .session(
            1,
            Faults::at(
                Step::command("RETR", 2),
                Action::err("SYS/TEMP", "cannot read it now"),
            ),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    let summary = acct.fetch().unwrap();
    assert_eq!(summary.fetched, 2);
    assert_eq!(on_server(&server), [all[1].clone()]);
    assert_nothing_lost(&all, &on_server(&server), &acct.stored());
    retry_succeeds(&server, &acct, &all);
}

// ---- unique-ids shaped like paths -------------------------------------------------------------

#[test]
fn uids_shaped_like_paths_never_reach_a_file_path() {
    let uids = [
        "../x",
        "/",
        "..",
        "../../../../tmp/popwire-pwned",
        ".",
        "~root",
        "x/../../y",
    ];
    let all = messages(uids.len());
    let mut drop = popwire::proto::server::MemoryMaildrop::new().with_user(USER, PASSWORD);
    for (uid, m) in uids.iter().zip(&all) {
        drop.add_message_with_uid(*uid, m.clone());
    }
    let server = FaultServer::builder(drop).start().unwrap();
    let acct = Account::new(server.port()).with("keep = true");
    let summary = acct.fetch().unwrap();
    assert_eq!(summary.fetched, uids.len());
    assert_all_stored_once(&all, &acct.stored());

    // Nothing but the Maildir's three directories, the state directory and the config exist,
    // and no name anywhere is made of a unique-id.
    let mut seen = Vec::new();
    let mut stack = vec![acct.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(acct.dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            seen.push(rel);
        }
    }
    for path in &seen {
        let top = path.split('/').next().unwrap();
        assert!(
            ["mail", "state", "config.toml"].contains(&top),
            "unexpected {path} (all: {seen:?})"
        );
        if let Some(rest) = path.strip_prefix("mail/Maildir/") {
            assert!(
                ["new", "cur", "tmp"].contains(&rest.split('/').next().unwrap()),
                "unexpected {path}"
            );
        }
        let name = path.rsplit('/').next().unwrap();
        assert!(
            !["x", "y", "popwire-pwned", "root"].contains(&name),
            "{path}"
        );
    }
    assert!(!std::path::Path::new("/tmp/popwire-pwned").exists());
    // The journal kept them all as given: the next run fetches nothing again.
    let summary = acct.fetch().unwrap();
    assert_eq!((summary.fetched, summary.kept), (0, uids.len()));
    // And `popwire list` shows them as text.
    let run = acct.cli("list", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    for uid in uids {
        assert!(run.stdout.contains(uid), "{uid}: {}", run.stdout);
    }
}

// ---- terminal escapes -------------------------------------------------------------------------

/// Text with the bytes a hostile server would use on a terminal: clear screen, set the window
/// title, bell, backspaces, colour, an 8-bit CSI (U+009B), and a carriage return that would
/// overwrite the line.
const NASTY: &str = "\x1b[2J\x1b]0;pwned\x07\x08\x08\x1b[31mred\u{9b}1mbold\roverwritten";

#[test]
fn server_text_is_escaped_before_it_reaches_a_terminal() {
    let all = messages(2);
    let nasty_err = Action::Replace(format!("-ERR [AUTH] {NASTY}\r\n").into_bytes());
    let server = FaultServer::builder(maildrop(&all))
        .session(1, Faults::at(Step::command("AUTH", 1), nasty_err.clone()))
        .session(2, Faults::at(Step::command("AUTH", 1), nasty_err))
        .session(
            3,
            Faults::at(
                Step::Greeting,
                Action::Replace(format!("{NASTY} not POP3\r\n").into_bytes()),
            ),
        )
        .session(
            4,
            Faults::at(
                Step::command("UIDL", 1),
                rewrite::uidls(|n, _| format!("\x1b[31m{n}")),
            ),
        )
        .session(
            5,
            Faults::at(
                Step::command("STAT", 1),
                Action::Replace(format!("-ERR [SYS/TEMP] {NASTY}\r\n").into_bytes()),
            ),
        )
        .start()
        .unwrap();
    let acct = Account::new(server.port());

    // The message keeps the server's words, escaped.
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::NOPERM, "{run:?}");
    assert!(
        !has_terminal_controls(&run.stderr_bytes),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pwned") && run.stderr.contains("\\u{1b}"),
        "{}",
        run.stderr
    );
    let run = acct.cli("fetch", &["--json"]);
    assert_eq!(run.code, exit::NOPERM, "{run:?}");
    assert!(
        !has_terminal_controls(&run.stdout_bytes),
        "{:?}",
        run.stdout
    );
    assert!(
        !has_terminal_controls(&run.stderr_bytes),
        "{:?}",
        run.stderr
    );
    for line in run.stdout.lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    }

    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{run:?}");
    assert!(
        !has_terminal_controls(&run.stderr_bytes),
        "{:?}",
        run.stderr
    );
    assert!(run.stderr.contains("greeting"), "{}", run.stderr);

    let run = acct.cli("list", &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        !has_terminal_controls(&run.stdout_bytes),
        "{:?}",
        run.stdout
    );
    assert!(
        !has_terminal_controls(&run.stderr_bytes),
        "{:?}",
        run.stderr
    );

    let run = acct.cli("check", &[]);
    assert_eq!(run.code, exit::TEMPFAIL, "{run:?}");
    assert!(
        !has_terminal_controls(&run.stderr_bytes),
        "{:?}",
        run.stderr
    );
    assert!(run.stderr.contains("SYS/TEMP"), "{}", run.stderr);

    assert_eq!(server.maildrop().len(), 2);
    retry_succeeds(&server, &acct, &all);
}

// ---- dropped connections, step by step --------------------------------------------------------

/// The connection drops at `step` in session 1 (through the command); session 2 behaves.
fn dropped_at(name: &str, step: Step, action: Action) {
    let all = messages(4);
    let server = FaultServer::builder(maildrop(&all))
        .session(1, Faults::at(step, action))
        .start()
        .unwrap();
    let acct = Account::new(server.port());
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, exit::TEMPFAIL, "{name}: {run:?}");
    assert!(
        run.stderr.contains("connection") || run.stderr.contains("closed"),
        "{name}: {}",
        run.stderr
    );
    assert!(
        server.session(1).unwrap().end.starts_with("fault:"),
        "{name}: the fault did not fire: {:?}",
        server.session(1).unwrap()
    );
    assert_nothing_lost(&all, &on_server(&server), &acct.stored());
    let run = acct.cli("fetch", &[]);
    assert_eq!(run.code, 0, "{name}: {run:?}");
    assert_all_stored_once(&all, &acct.stored());
    assert!(server.maildrop().is_empty(), "{name}");
    assert_eq!(server.sessions(), 2, "{name}");
}

#[test]
fn dropped_after_the_greeting() {
    dropped_at(
        "after greeting",
        Step::Greeting,
        Action::close_after_reply(),
    );
}

#[test]
fn dropped_during_auth() {
    dropped_at(
        "during AUTH",
        Step::command(popwire_tests::faulty::SASL_RESPONSE, 1),
        Action::Close,
    );
}

#[test]
fn dropped_in_the_middle_of_retr() {
    dropped_at("mid-RETR", Step::command("RETR", 3), Action::Truncate(100));
}

#[test]
fn dropped_after_dele_before_quit() {
    dropped_at("after DELE", Step::command("QUIT", 1), Action::Close);
}

#[test]
fn dropped_during_quit() {
    dropped_at("during QUIT", Step::command("QUIT", 1), Action::Truncate(0));
}
