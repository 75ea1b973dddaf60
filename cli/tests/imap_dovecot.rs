//! `popwire fetch` from Dovecot's POP3 into Dovecot's IMAP (the `[accounts.NAME.imap]`
//! destination): byte-exact, exactly once through SIGKILLs, refusals and bad logins leaving the
//! POP server alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use popwire_tests::corpus;
use popwire_tests::dovecot_imap::ImapDovecot;

fn shared() -> &'static ImapDovecot {
    static SHARED: OnceLock<ImapDovecot> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("popwire-imapd-{}", std::process::id()));
        ImapDovecot::start(&dir, None).unwrap()
    })
}

struct Setup<'d> {
    d: &'d ImapDovecot,
    dir: tempfile::TempDir,
    pop_user: String,
    imap_user: String,
}

impl<'d> Setup<'d> {
    fn new(d: &'d ImapDovecot, prefix: &str) -> Self {
        Self {
            d,
            dir: tempfile::tempdir().unwrap(),
            pop_user: d.dovecot.new_user(&format!("{prefix}-pop")),
            imap_user: d.dovecot.new_user(&format!("{prefix}-imap")),
        }
    }

    fn config(&self, keep: bool, imap_extra: &str, password_env: &str) -> PathBuf {
        let d = &self.d.dovecot;
        let path = self.dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[accounts.test]\nemail = \"{pop}@example.com\"\nusername = \"{pop}\"\nserver = \"localhost\"\nport = {port}\n\
                 ca_file = \"{ca}\"\npassword_env = \"POPWIRE_TEST_PW\"\nkeep = {keep}\n\
                 [accounts.test.imap]\nserver = \"localhost\"\nport = {imaps}\nusername = \"{imap}\"\n\
                 password_env = \"{password_env}\"\nca_file = \"{ca}\"\n{imap_extra}\n",
                pop = self.pop_user,
                port = d.tls_port,
                ca = d.ca_file.display(),
                imaps = self.d.imaps_port,
                imap = self.imap_user,
            ),
        )
        .unwrap();
        path
    }

    fn command(&self, config: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_popwire"));
        command
            .args(["fetch", "--config"])
            .arg(config)
            .env("POPWIRE_TEST_PW", &self.d.dovecot.password)
            .env("POPWIRE_WRONG_PW", "not-the-password")
            .env("XDG_STATE_HOME", self.dir.path().join("state"));
        command
    }

    fn run(&self, config: &Path) -> (i32, String) {
        let out = self.command(config).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The folder's messages with LF line ends (Dovecot saves LF), counted.
    fn in_folder(&self, folder: &str) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        for (_, bytes) in self.d.folder_files(&self.imap_user, folder) {
            *counts.entry(lf(&bytes)).or_default() += 1;
        }
        counts
    }

    fn on_pop_server(&self) -> usize {
        self.d
            .dovecot
            .server_messages(&self.pop_user)
            .unwrap()
            .len()
    }
}

fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

/// Every original exactly once in `stored`, nothing else.
fn assert_exactly_once(originals: &[Vec<u8>], stored: &HashMap<Vec<u8>, usize>) {
    let mut want: HashMap<Vec<u8>, usize> = HashMap::new();
    for m in originals {
        *want.entry(lf(m)).or_default() += 1;
    }
    let lost = want
        .iter()
        .filter(|(m, n)| stored.get(*m).copied().unwrap_or(0) < **n)
        .count();
    let extra = stored
        .iter()
        .filter(|(m, n)| want.get(*m).copied().unwrap_or(0) < **n)
        .count();
    assert_eq!(
        (lost, extra),
        (0, 0),
        "lost, duplicated or foreign messages"
    );
}

#[test]
fn a_thousand_small_messages_cross_byte_exact_and_leave_the_pop_server() {
    let d = shared();
    let s = Setup::new(d, "small");
    let messages = corpus::sized(1000, 5 * 1024, 11);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&messages, &s.in_folder("INBOX"));
    assert_eq!(s.on_pop_server(), 0);
    // A second run finds nothing and appends nothing.
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&messages, &s.in_folder("INBOX"));
}

#[test]
fn a_hundred_one_megabyte_messages_in_keep_mode_are_appended_once() {
    let d = shared();
    let s = Setup::new(d, "large");
    let messages = corpus::sized(100, 1 << 20, 12);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let config = s.config(true, "", "POPWIRE_TEST_PW");
    for _ in 0..2 {
        let (code, stderr) = s.run(&config);
        assert_eq!(code, 0, "{stderr}");
        assert_exactly_once(&messages, &s.in_folder("INBOX"));
        assert_eq!(s.on_pop_server(), 100);
    }
    s.assert_journal_names_each_appenduid(100);
}

impl Setup<'_> {
    /// The journal says where each kept POP message landed (the APPENDUID, as an IMAP URL),
    /// and Dovecot's own UID list agrees, message by message.
    fn assert_journal_names_each_appenduid(&self, count: usize) {
        let journal = find_journal(&self.dir.path().join("state"));
        let text = std::fs::read_to_string(&journal).unwrap();
        let mut places: HashMap<String, String> = HashMap::new();
        for line in text.lines().skip(1) {
            let mut fields = line.split('\t');
            let uid = fields.next().unwrap().to_owned();
            if let Some(p) = fields.find_map(|f| f.strip_prefix("p=")) {
                places.insert(uid, p.to_owned());
            }
        }
        let (validity, by_uid) = self.d.folder_by_uid(&self.imap_user, "INBOX").unwrap();
        let prefix = format!(
            "imap://{}@localhost:{}/INBOX;UIDVALIDITY={validity}/;UID=",
            self.imap_user, self.d.imaps_port
        );
        let pop = &self.d.dovecot;
        let uidls = pop.server_uidls(&self.pop_user).unwrap();
        let bodies = pop.server_messages(&self.pop_user).unwrap();
        assert_eq!(uidls.len(), count);
        let mut imap_uids = std::collections::HashSet::new();
        for (uidl, body) in uidls.iter().zip(&bodies) {
            let place = places
                .get(uidl)
                .unwrap_or_else(|| panic!("no p= for {uidl} in\n{text}"));
            let imap_uid: u32 = place
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{place} does not start with {prefix}"))
                .parse()
                .unwrap();
            assert!(imap_uids.insert(imap_uid), "UID {imap_uid} twice");
            assert_eq!(lf(&by_uid[&imap_uid]), lf(body), "IMAP UID {imap_uid}");
        }
    }
}

/// The one UID journal under a state directory.
fn find_journal(dir: &Path) -> PathBuf {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b.starts_with(b"popwire-uid-journal ")) {
                return path;
            }
        }
    }
    panic!("no journal under {}", dir.display());
}

#[test]
fn the_folder_is_created_and_flags_and_internal_date_are_set() {
    let d = shared();
    let s = Setup::new(d, "folder");
    let message = b"From: a@example.com\nTo: b@example.com\nSubject: dated\nDate: Tue, 1 Jul 2003 10:52:37 +0200\n\nbody\n".to_vec();
    d.dovecot.seed(&s.pop_user, &[&message]).unwrap();
    let config = s.config(
        false,
        "folder = \"FromISP\"\nflags = [\"\\\\Seen\", \"popwire\"]",
        "POPWIRE_TEST_PW",
    );
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    let files = d.folder_files(&s.imap_user, "FromISP");
    assert_eq!(files.len(), 1, "{files:?}");
    let (name, bytes) = &files[0];
    assert_eq!(lf(bytes), lf(&message));
    assert!(name.contains(":2,S"), "flags in {name}");
    // Dovecot's Maildir keeps the internal date as the file's mtime.
    let path = d.folder_dir(&s.imap_user, "FromISP").join("cur").join(name);
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_057_049_557);

    // create_folder = false and a missing folder: a clear error, nothing deleted.
    let s = Setup::new(d, "nofolder");
    d.dovecot.seed(&s.pop_user, &[&message]).unwrap();
    let config = s.config(
        false,
        "folder = \"Missing\"\ncreate_folder = false",
        "POPWIRE_TEST_PW",
    );
    let (code, stderr) = s.run(&config);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("Missing") && stderr.contains("create_folder"),
        "{stderr}"
    );
    assert_eq!(s.on_pop_server(), 1);
}

#[test]
fn starttls_on_the_plain_port_works_and_no_plaintext_without_asking() {
    let d = shared();
    let s = Setup::new(d, "starttls");
    let messages = corpus::sized(5, 3000, 16);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let port = d.imap_port;
    let config = s.config(
        false,
        &format!("security = \"starttls\"\nport = {port}"),
        "POPWIRE_TEST_PW",
    );
    // The helper wrote the imaps port; TOML refuses a second `port`, so drop that one.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(&format!("port = {}\n", d.imaps_port), "", 1);
    std::fs::write(&config, text).unwrap();
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&messages, &s.in_folder("INBOX"));

    let config = s.config(false, "security = \"none\"", "POPWIRE_TEST_PW");
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("allow_plaintext"), "{stderr}");
}

#[test]
fn sigkill_at_random_moments_then_a_clean_run_loses_and_duplicates_nothing() {
    let d = shared();
    let s = Setup::new(d, "crash");
    let messages = corpus::sized(300, 20 * 1024, 13);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    // 20 KB messages: a 32 MiB batch is never reached, so each run commits its stream at the
    // end and kills land before, during and after the APPENDs.
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    let mut state: u64 = std::env::var("POPWIRE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234);
    eprintln!("crash seed {state:#x} (POPWIRE_CRASH_SEED)");
    for _ in 0..8 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(50 + (state >> 33) % 1500);
        let mut child = s
            .command(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
    }
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&messages, &s.in_folder("INBOX"));
    assert_eq!(s.on_pop_server(), 0);
}

#[test]
fn a_wrong_imap_password_deletes_nothing_and_exits_for_auth() {
    let d = shared();
    let s = Setup::new(d, "badpw");
    let messages = corpus::sized(3, 2048, 14);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_WRONG_PW");
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("refused the login"), "{stderr}");
    assert_eq!(s.on_pop_server(), 3);
    assert!(s.in_folder("INBOX").is_empty());
}

/// Gmail announces LITERAL- (non-synchronizing literals up to 4096 octets, RFC 7888) and no
/// LITERAL+; so does this Dovecot.
const GMAIL_LIKE_CAPABILITY: &str = "IMAP4rev1 UNSELECT IDLE NAMESPACE ID CHILDREN UIDPLUS ENABLE MOVE CONDSTORE ESEARCH LIST-STATUS LITERAL- SPECIAL-USE";

#[test]
fn without_literal_plus_large_messages_wait_for_the_servers_continuation() {
    let dir = std::env::temp_dir().join(format!("popwire-imapl-{}", std::process::id()));
    let d = ImapDovecot::start_announcing(&dir, GMAIL_LIKE_CAPABILITY).unwrap();
    let s = Setup::new(&d, "litminus");
    let mut messages = corpus::sized(60, 2 * 1024, 16);
    messages.extend(corpus::sized(60, 20 * 1024, 17));
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    for _ in 0..2 {
        let (code, stderr) = s.run(&config);
        assert_eq!(code, 0, "{stderr}");
        assert_exactly_once(&messages, &s.in_folder("INBOX"));
        assert_eq!(s.on_pop_server(), 0);
    }
    // What the client sent: every literal over 4096 octets synchronizing, the rest not.
    let mut sent = Vec::new();
    for entry in std::fs::read_dir(d.rawlog_dir(&s.imap_user))
        .unwrap()
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "in") {
            sent.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    let (mut sync, mut non_sync) = (0, 0);
    for line in sent.split(|&b| b == b'\n') {
        let Some(text) = std::str::from_utf8(line)
            .ok()
            .filter(|l| l.contains(" APPEND "))
        else {
            continue;
        };
        let announced = text
            .trim_end()
            .rsplit('{')
            .next()
            .unwrap()
            .trim_end_matches('}');
        let (size, plus) = match announced.strip_suffix('+') {
            Some(size) => (size.parse::<u64>().unwrap(), true),
            None => (announced.parse::<u64>().unwrap(), false),
        };
        assert_eq!(plus, size <= 4096, "{text}");
        if plus {
            non_sync += 1;
        } else {
            sync += 1;
        }
    }
    assert_eq!((sync, non_sync), (60, 60), "APPENDs seen in the raw log");
    let _ = d.dovecot.stop();
}

#[test]
fn a_message_too_big_for_the_imap_server_stays_on_the_pop_server_and_is_named() {
    let dir = std::env::temp_dir().join(format!("popwire-imapbig-{}", std::process::id()));
    let d = ImapDovecot::start_with_max_mail_size(&dir, "50k").unwrap();
    let s = Setup::new(&d, "toobig");
    let mut messages = corpus::sized(2, 4 * 1024, 18);
    messages.insert(1, corpus::sized(1, 80 * 1024, 19).remove(0));
    let uidls = d.dovecot.seed_with_uidls(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    let (code, stderr) = s.run(&config);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(uidls[1].as_str()),
        "names the message: {stderr}"
    );
    assert!(stderr.contains("maximum size"), "{stderr}");
    assert!(stderr.contains("test"), "names the account: {stderr}");
    // The batch failed, so nothing was deleted; the small ones that landed are found by the
    // next run's recovery and not appended again.
    assert_eq!(s.on_pop_server(), 3);
    let (code, stderr) = s.run(&config);
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(s.on_pop_server(), 3, "{stderr}");
    let folder = s.in_folder("INBOX");
    assert_eq!(folder.len(), 2);
    assert!(folder.values().all(|&n| n == 1), "no duplicate");
    let _ = d.dovecot.stop();
}

#[test]
fn a_message_over_the_announced_appendlimit_is_reported_and_the_rest_flows() {
    let dir = std::env::temp_dir().join(format!("popwire-imaplimit-{}", std::process::id()));
    let d = ImapDovecot::start_announcing(&dir, "IMAP4rev1 LITERAL+ UIDPLUS APPENDLIMIT=51200")
        .unwrap();
    let s = Setup::new(&d, "limit");
    let mut messages = corpus::sized(2, 4 * 1024, 20);
    let big = corpus::sized(1, 80 * 1024, 21).remove(0);
    messages.insert(1, big.clone());
    let uidls = d.dovecot.seed_with_uidls(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    for _ in 0..2 {
        let (code, stderr) = s.run(&config);
        assert_eq!(code, 65, "one message refused for good: {stderr}");
        assert!(
            stderr.contains(uidls[1].as_str()) && stderr.contains("APPENDLIMIT"),
            "{stderr}"
        );
        // The others are in the folder once and gone from the POP server; the big one stays.
        let small = [messages[0].clone(), messages[2].clone()];
        assert_exactly_once(&small, &s.in_folder("INBOX"));
        assert_eq!(
            d.dovecot.server_messages(&s.pop_user).unwrap(),
            vec![big.clone()]
        );
    }
    let _ = d.dovecot.stop();
}

#[test]
fn an_append_over_quota_leaves_the_message_on_the_pop_server_and_names_it() {
    let dir = std::env::temp_dir().join(format!("popwire-imapq-{}", std::process::id()));
    let d = ImapDovecot::start(&dir, Some("100K")).unwrap();
    let s = Setup::new(&d, "quota");
    let messages = corpus::sized(3, 60 * 1024, 15);
    let uidls = d.dovecot.seed_with_uidls(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    let (code, stderr) = s.run(&config);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("OVERQUOTA") || stderr.to_ascii_lowercase().contains("quota"),
        "{stderr}"
    );
    assert!(
        uidls[1..].iter().any(|u| stderr.contains(u.as_str())),
        "names the refused message: {stderr}"
    );
    // Nothing left the POP server in the failed session. The next run finds the first message
    // in the folder (recovery) and does not append it again; the refusal repeats, so that
    // session too deletes nothing.
    assert_eq!(s.on_pop_server(), 3);
    assert_eq!(s.in_folder("INBOX").len(), 1);
    let (code, stderr) = s.run(&config);
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(s.in_folder("INBOX").len(), 1);
    assert_eq!(s.on_pop_server(), 3);
}

/// The memory figure in BENCHMARKS.md: one 200 MB message crosses with a bounded RSS. A
/// benchmark, not a check (`cargo test -p popwire-cli --test imap_dovecot -- --ignored`).
#[test]
#[ignore = "benchmark: prints the peak RSS of one 200 MB message"]
fn rss_of_one_200_megabyte_message() {
    let d = shared();
    let s = Setup::new(d, "rss");
    let mut message =
        b"From: a@example.com\nSubject: big\nDate: Tue, 1 Jul 2003 10:52:37 +0200\n\n".to_vec();
    let line = [b'x'; 99];
    while message.len() < 200_000_000 {
        message.extend_from_slice(&line);
        message.push(b'\n');
    }
    d.dovecot.seed(&s.pop_user, &[&message]).unwrap();
    let config = s.config(false, "", "POPWIRE_TEST_PW");
    let mut time = Command::new("/usr/bin/time");
    time.arg("-v").arg(env!("CARGO_BIN_EXE_popwire"));
    let inner = s.command(&config);
    time.args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            time.env(k, v);
        }
    }
    let out = time.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rss = stderr
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .unwrap_or("no RSS line");
    eprintln!("200 MB message: {rss}");
    let files = d.folder_files(&s.imap_user, "INBOX");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1.len(), message.len());
}

#[test]
fn xoauth2_and_oauthbearer_log_in_to_dovecot_oauth2_passdb() {
    let server = popwire_tests::oauth_server::OAuthServer::start().unwrap();
    let dir = std::env::temp_dir().join(format!("popwire-imapo-{}", std::process::id()));
    let d =
        ImapDovecot::start_with(&dir, None, Some(&format!("{}/introspect", server.base))).unwrap();
    for (auth, n) in [("xoauth2", 2usize), ("oauthbearer", 3), ("auto", 1)] {
        let s = Setup::new(&d, &format!("tok-{auth}"));
        let messages = corpus::sized(n, 2000, 17);
        d.dovecot.seed(&s.pop_user, &messages).unwrap();
        let (access, _) = server.issue(&s.imap_user);
        let config = s.config(false, &format!("auth = \"{auth}\""), "UNUSED");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "password_env = \"UNUSED\"",
            &format!("token_command = [\"echo\", \"{access}\"]"),
        );
        std::fs::write(&config, text).unwrap();
        let (code, stderr) = s.run(&config);
        assert_eq!(code, 0, "{auth}: {stderr}\n{}", d.dovecot.log_tail(20));
        assert_exactly_once(&messages, &s.in_folder("INBOX"));
        assert_eq!(s.on_pop_server(), 0);
    }
    // A revoked token: exit 77, nothing deleted.
    let s = Setup::new(&d, "tok-revoked");
    d.dovecot
        .seed(&s.pop_user, &corpus::sized(1, 2000, 18))
        .unwrap();
    let (access, _) = server.issue(&s.imap_user);
    server.revoke(&s.imap_user);
    let config = s.config(false, "auth = \"xoauth2\"", "UNUSED");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "password_env = \"UNUSED\"",
        &format!("token_command = [\"echo\", \"{access}\"]"),
    );
    std::fs::write(&config, text).unwrap();
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 77, "{stderr}");
    assert_eq!(s.on_pop_server(), 1);
}

/// The throughput figure in BENCHMARKS.md (`bench/imap.sh`): 1000 × 5 KB from POP into IMAP on
/// loopback, wall time of `popwire fetch` (median of 5 runs, each on a fresh pair of users).
#[test]
#[ignore = "benchmark: prints the wall time of POP -> IMAP 1000 x 5 KB"]
fn bench_pop_to_imap_1000_small_messages() {
    let d = shared();
    let messages = corpus::sized(1000, 5 * 1024, 19);
    let mut times = Vec::new();
    for round in 0..5 {
        let s = Setup::new(d, &format!("bench{round}"));
        d.dovecot.seed(&s.pop_user, &messages).unwrap();
        let config = s.config(false, "", "POPWIRE_TEST_PW");
        let start = std::time::Instant::now();
        let (code, stderr) = s.run(&config);
        times.push(start.elapsed());
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(s.in_folder("INBOX").len(), 1000);
    }
    times.sort();
    eprintln!(
        "POP -> IMAP 1000 x 5 KB: median {:?}, min {:?}, max {:?}",
        times[2], times[0], times[4]
    );
}

#[test]
fn auth_commands_name_the_imap_login_name_imap() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[accounts.isp]\nemail = \"me@isp.example\"\nserver = \"pop.isp.example\"\npassword_env = \"X\"\n\
         [accounts.isp.imap]\nserver = \"imap.gmail.com\"\nusername = \"me@gmail.com\"\n\
         [accounts.isp.imap.oauth]\nprovider = \"google\"\nclient_id = \"id\"\n",
    )
    .unwrap();
    let run = |account: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
            .args(["auth", "status", account, "--config"])
            .arg(&config)
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = run("isp-imap");
    assert_eq!(code, Some(77), "{text}");
    assert!(text.contains("popwire auth login isp-imap"), "{text}");
    let (code, text) = run("isp");
    assert_eq!(code, Some(78), "{text}");
    assert!(text.contains("use isp-imap"), "{text}");
}

#[test]
fn a_folder_with_accents_is_named_in_modified_utf7() {
    let d = shared();
    let s = Setup::new(d, "utf7");
    let messages = corpus::sized(2, 1500, 20);
    d.dovecot.seed(&s.pop_user, &messages).unwrap();
    let config = s.config(false, "folder = \"Privé & Co\"", "POPWIRE_TEST_PW");
    let (code, stderr) = s.run(&config);
    assert_eq!(code, 0, "{stderr}");
    // Dovecot's Maildir++ directory keeps the IMAP (modified UTF-7) name.
    assert_exactly_once(&messages, &s.in_folder("Priv&AOk- &- Co"));
}
