//! Every file-system and process call of a fetch, failed one at a time.
//!
//! A three-batch fetch (12 messages, 4 per batch) is first run clean while the fault seam
//! (`popwire::fetch::sys`) counts its calls: creates, writes, fdatasyncs, renames, directory
//! fsyncs, truncations, locks, MDA spawns and pipe writes, journal included. Then, for every N,
//! the same fetch runs against a fresh copy of the mailbox with the N-th call failing (ENOSPC,
//! EIO, EXDEV and EDQUOT in turn), and a clean fetch follows. After the faulty run nothing may be
//! lost (each message on the server or stored) or stored twice; after the clean run every message
//! is stored exactly once, and the server is empty in delete mode and untouched in keep mode.
//!
//! Walked for Maildir, mbox, an MDA, a `Poller`'s handler, an IMAP folder (Dovecot's, a fresh
//! user per run) and Gmail's API (the stand-in, messages with a Message-ID), each in delete and
//! keep mode. For IMAP the calls are the spool's (create, write, the open before each APPEND)
//! and the journal's (the receipts written ahead of the APPENDs, the mark after). An MDA's
//! delivery (a handler's `Ok`) is final before popwire can journal it, so there the promise is
//! at most one message (the one in flight) delivered twice per fault; Maildir, mbox, IMAP and
//! Gmail allow none. The fault plan is process wide, so the walks take turns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::{maildrop, messages};
use popwire::fetch::Poller;
use popwire::fetch::config;
use popwire::fetch::job::{FetchOptions, fetch_account};
use popwire::fetch::poller::{HandlerError, Message};
use popwire::fetch::sys::fault_injection;
use popwire_tests::dovecot_imap::ImapDovecot;
use popwire_tests::faulty::FaultServer;
use popwire_tests::gmail_server::GmailServer;
use popwire_tests::oauth_server::OAuthServer;

const MESSAGES: usize = 12;
const BATCH: usize = 4;
const ERRNOS: [(i32, &str); 4] = [
    (libc_errno::ENOSPC, "ENOSPC"),
    (libc_errno::EIO, "EIO"),
    (libc_errno::EXDEV, "EXDEV"),
    (libc_errno::EDQUOT, "EDQUOT"),
];

/// Linux's numbers, to keep this crate free of a libc dependency.
mod libc_errno {
    pub const EIO: i32 = 5;
    pub const EXDEV: i32 = 18;
    pub const ENOSPC: i32 = 28;
    pub const EDQUOT: i32 = 122;
}

static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
enum Kind {
    Maildir,
    Mbox,
    Mda,
    /// A `Poller`'s handler, keeping what it is given.
    Handler,
    Imap,
    Gmail,
}

fn imap_server() -> &'static ImapDovecot {
    static SERVER: OnceLock<ImapDovecot> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pw-walk-imapd-{}", std::process::id()));
        ImapDovecot::start(&dir, None).unwrap()
    })
}

struct Setup {
    dir: tempfile::TempDir,
    kind: Kind,
    keep: bool,
    port: u16,
    /// What the handler took (Kind::Handler), LF line ends as the other stores write.
    handled: Mutex<Vec<Vec<u8>>>,
    /// The IMAP user messages go to (Kind::Imap).
    imap_user: String,
    /// For [`Kind::Gmail`]: the API stand-in, and the authorization stand-in it checks
    /// tokens with.
    gmail: Option<(GmailServer, OAuthServer)>,
}

impl Setup {
    fn new(kind: Kind, keep: bool, port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pw-walk")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("mda/tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("mda/new")).unwrap();
        let imap_user = match kind {
            Kind::Imap => imap_server().dovecot.new_user("walk"),
            _ => String::new(),
        };
        let gmail = matches!(kind, Kind::Gmail).then(|| {
            let oauth = OAuthServer::start().unwrap();
            let (access, refresh) = oauth.issue("walk");
            let tokens = format!(
                "{{\"format\":1,\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\",\
                 \"token_endpoint\":\"{}/token\",\"obtained_at\":0}}",
                oauth.base
            );
            std::fs::write(dir.path().join("token.json"), tokens).unwrap();
            (GmailServer::start(oauth.token_checker()).unwrap(), oauth)
        });
        Self {
            dir,
            kind,
            keep,
            port,
            handled: Mutex::new(Vec::new()),
            imap_user,
            gmail,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn fetch(&self) -> Result<(), String> {
        let destination = match self.kind {
            // The poller ignores the destination; the file needs one.
            Kind::Maildir | Kind::Handler => format!("maildir = {:?}", self.path("Maildir")),
            Kind::Mbox => format!("mbox = {:?}", self.path("mail/inbox.mbox")),
            // A delivery agent that publishes each message atomically, one file per message.
            Kind::Mda => format!(
                "mda = {:?}",
                format!(
                    "f=$(mktemp {0}/tmp/m.XXXXXX) && cat > \"$f\" && mv \"$f\" {0}/new/",
                    self.path("mda").display()
                )
            ),
            Kind::Imap => {
                let d = imap_server();
                format!(
                    "[accounts.walk.imap]\nserver = \"localhost\"\nport = {}\nusername = \"{}\"\n\
                     password = \"{}\"\nca_file = {:?}\n",
                    d.imaps_port, self.imap_user, d.dovecot.password, d.dovecot.ca_file
                )
            }
            Kind::Gmail => {
                let (gmail, oauth) = self.gmail.as_ref().unwrap();
                format!(
                    "[accounts.walk.gmail]\nendpoint = {:?}\n[accounts.walk.gmail.oauth]\n\
                     token_endpoint = \"{}/token\"\nclient_id = \"walk\"\ntoken_file = {:?}\n",
                    gmail.base,
                    oauth.base,
                    self.path("token.json")
                )
            }
        };
        let text = format!(
            "[accounts.walk]\nemail = \"alice@example.com\"\nusername = \"{}\"\n\
             password = \"{}\"\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             auth = \"user\"\nkeep = {}\ntimeout = \"10s\"\n{destination}\n",
            common::USER,
            common::PASSWORD,
            self.port,
            self.keep
        );
        let config = config::parse(&text, Path::new("walk.toml")).unwrap();
        let account = config.account("walk").unwrap();
        if let Kind::Handler = self.kind {
            let mut poller = Poller::from_account(account)
                .state_dir(self.path("state"))
                .retry_backoff(Duration::ZERO, Duration::ZERO)
                .build();
            let mut handler = |mut m: Message<'_>| -> Result<(), HandlerError> {
                let body = m.to_vec()?;
                let lf = String::from_utf8_lossy(&body).replace("\r\n", "\n");
                self.handled.lock().unwrap().push(lf.into_bytes());
                Ok(())
            };
            return poller
                .poll_once(&mut handler)
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
        let mut options = FetchOptions::new(self.path("state"));
        options.batch = BATCH;
        fetch_account(account, &options, &mut |_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every message stored, with how often.
    fn stored(&self) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        let mut add = |m: Vec<u8>| *counts.entry(m).or_insert(0) += 1;
        match self.kind {
            Kind::Handler => {
                for m in self.handled.lock().unwrap().iter() {
                    add(m.clone());
                }
            }
            Kind::Maildir | Kind::Mda => {
                let root = match self.kind {
                    Kind::Maildir => self.path("Maildir"),
                    _ => self.path("mda"),
                };
                for sub in ["new", "cur"] {
                    let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
                        continue;
                    };
                    for entry in entries {
                        add(std::fs::read(entry.unwrap().path()).unwrap());
                    }
                }
            }
            Kind::Imap => {
                // Dovecot keeps LF line ends, as the local stores do.
                for (_, bytes) in imap_server().folder_files(&self.imap_user, "INBOX") {
                    add(bytes);
                }
            }
            Kind::Gmail => {
                let (gmail, _) = self.gmail.as_ref().unwrap();
                for message in gmail.imported() {
                    // Gmail holds the wire form; the originals have LF line ends.
                    let text = String::from_utf8(message.raw).unwrap();
                    add(text.replace("\r\n", "\n").into_bytes());
                }
            }
            Kind::Mbox => {
                let Ok(bytes) = std::fs::read(self.path("mail/inbox.mbox")) else {
                    return counts;
                };
                for message in mboxrd_messages(&bytes) {
                    add(message);
                }
            }
        }
        counts
    }
}

/// Splits an mboxrd file written by popwire into its messages, undoing the `>From ` quoting and
/// the blank line after each message.
fn mboxrd_messages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(done) = current.take() {
                messages.push(done);
            }
            current = Some(Vec::new());
            continue;
        }
        let Some(message) = current.as_mut() else {
            panic!("mbox does not start with a From line: {line:?}");
        };
        let unquoted = match line.iter().position(|&b| b != b'>') {
            Some(gts) if gts > 0 && line[gts..].starts_with(b"From ") => &line[1..],
            _ => line,
        };
        message.extend_from_slice(unquoted);
    }
    if let Some(done) = current {
        messages.push(done);
    }
    for message in &mut messages {
        // The blank line mboxrd puts after each message.
        assert!(
            message.ends_with(b"\n\n"),
            "unterminated message {message:?}"
        );
        message.pop();
    }
    messages
}

/// Lost (on neither side), stored twice, stored but unknown.
fn tally(
    originals: &[Vec<u8>],
    on_server: &[Vec<u8>],
    stored: &HashMap<Vec<u8>, usize>,
) -> (usize, usize, usize) {
    let lost = originals
        .iter()
        .filter(|m| !on_server.contains(m) && !stored.contains_key(*m))
        .count();
    let twice = stored.values().map(|&n| n.saturating_sub(1)).sum();
    let unknown = stored.keys().filter(|m| !originals.contains(m)).count();
    (lost, twice, unknown)
}

fn walk(kind: Kind, keep: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut all = messages(MESSAGES);
    if matches!(kind, Kind::Gmail) {
        // What recovery searches Gmail for.
        for (i, message) in all.iter_mut().enumerate() {
            let mut with_id = format!("Message-ID: <walk.{i}@example.com>\n").into_bytes();
            with_id.append(message);
            *message = with_id;
        }
    }
    let server = FaultServer::builder(maildrop(&all)).start().unwrap();
    let on_server = |server: &FaultServer| -> Vec<Vec<u8>> {
        server.maildrop().messages().map(<[u8]>::to_vec).collect()
    };

    // The clean run, counted.
    let setup = Setup::new(kind, keep, server.port());
    fault_injection::arm(None);
    let result = setup.fetch();
    let calls = fault_injection::disarm();
    result.unwrap();
    assert!(
        calls.len() > 3 * BATCH,
        "{kind:?}: only {} calls counted: {calls:?}",
        calls.len()
    );

    let mut failures = Vec::new();
    let mut failed_runs = 0;
    let mut twice = 0;
    for n in 1..=calls.len() {
        let (errno, errno_name) = ERRNOS[n % ERRNOS.len()];
        *server.maildrop() = maildrop(&all);
        let setup = Setup::new(kind, keep, server.port());
        fault_injection::arm(Some((n, errno)));
        let faulty = setup.fetch();
        fault_injection::disarm();
        if faulty.is_err() {
            failed_runs += 1;
        }
        let after_fault = tally(&all, &on_server(&server), &setup.stored());
        let clean = setup.fetch();
        let after_clean = tally(&all, &on_server(&server), &setup.stored());
        // The MDA's one message in flight may arrive twice, and so may the handler's (its Ok
        // precedes its journal line: at least once); nothing else may.
        let allowed_twice = usize::from(matches!(kind, Kind::Mda | Kind::Handler));
        let after_fault_ok =
            after_fault.0 == 0 && after_fault.1 <= allowed_twice && after_fault.2 == 0;
        let after_clean_ok =
            after_clean.0 == 0 && after_clean.1 <= allowed_twice && after_clean.2 == 0;
        let complete = setup.stored().len() == all.len();
        twice += after_clean.1;
        let server_ok = if keep {
            on_server(&server).len() == all.len()
        } else {
            server.maildrop().is_empty()
        };
        if !after_fault_ok || clean.is_err() || !after_clean_ok || !complete || !server_ok {
            failures.push(format!(
                "call {n} ({:?}) failed with {errno_name}: faulty run {faulty:?}, \
                 then lost/twice/unknown {after_fault:?}; clean run {clean:?}, then \
                 {after_clean:?}, all stored: {complete}, server as expected: {server_ok}",
                calls[n - 1]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{kind:?} keep={keep}: {} of {} faults broke exactly-once:\n{}",
        failures.len(),
        calls.len(),
        failures.join("\n")
    );
    // The walk reached the delivery path: most faults must have stopped the run.
    assert!(
        failed_runs * 2 > calls.len(),
        "{kind:?}: only {failed_runs} of {} faults were noticed",
        calls.len()
    );
    eprintln!(
        "{kind:?} keep={keep}: {} calls walked, {failed_runs} runs failed, 0 lost, {twice} duplicated",
        calls.len()
    );
}

#[test]
fn maildir_delete() {
    walk(Kind::Maildir, false);
}

#[test]
fn maildir_keep() {
    walk(Kind::Maildir, true);
}

#[test]
fn mbox_delete() {
    walk(Kind::Mbox, false);
}

#[test]
fn mbox_keep() {
    walk(Kind::Mbox, true);
}

#[test]
fn mda_delete() {
    walk(Kind::Mda, false);
}

#[test]
fn mda_keep() {
    walk(Kind::Mda, true);
}

#[test]
fn handler_delete() {
    walk(Kind::Handler, false);
}

#[test]
fn handler_keep() {
    walk(Kind::Handler, true);
}

#[test]
fn imap_delete() {
    walk(Kind::Imap, false);
}

#[test]
fn imap_keep() {
    walk(Kind::Imap, true);
}

#[test]
fn gmail_delete() {
    walk(Kind::Gmail, false);
}

#[test]
fn gmail_keep() {
    walk(Kind::Gmail, true);
}
