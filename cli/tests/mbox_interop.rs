//! popwire shares an mbox with other mail programs: while it fetches into the file, procmail
//! (as an MDA, `procmail -m` with a `:0:` recipe) and Python's `mailbox.mbox` (`lock()`, `add()`,
//! `flush()`, `unlock()` every ~50 ms) append to the same file. popwire's connections are cut in
//! the middle of a message by a [`FaultProxy`] round after round, so popwire rolls back what it
//! wrote of an unfinished batch again and again while the others write.
//!
//! This proves the mbox locking protocol interoperates: popwire takes the dotlock
//! (`FILE.lock`), an fcntl lock and flock, as procmail (dotlock + fcntl) and Python (fcntl +
//! dotlock) expect; `flock` alone excludes neither of them on Linux. And a rollback never cuts
//! off bytes popwire did not write. Afterwards the file must hold every message of all three
//! writers exactly once, byte for byte, and be read the same way by three independent readers:
//! this file's strict mboxrd reader, Python's `mailbox.mbox`, and Dovecot's mbox driver
//! (`doveadm fetch` against the test Dovecot's configuration with an mbox `mail_location`).
//!
//! Needs `procmail` (`tests/install-deps.sh interop`) and `python3`. Without them the test
//! fails when a test Dovecot is configured (`POPWIRE_DOVECOT`, as `tests/run-all.sh` does) and
//! is skipped, loudly, otherwise. `POPWIRE_INTEROP_ROUNDS` (default 10) sets the number of cut
//! rounds; `POPWIRE_INTEROP_SEED` replays one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod exactly_once;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use exactly_once::{Account, Destination, Rng, lf, parse_mboxrd, preview, tally, with_from_lines};
use popwire_tests::faulty::{Cut, FaultProxy};
use popwire_tests::{Dovecot, corpus};

/// Appends `messages/NNNNN.eml` to the mbox one by one with Python's own locking, until the
/// files run out or `stop` exists; prints each number once it is flushed and unlocked. Reading
/// (`read PATH`) prints every message `mailbox.mbox` finds, as hex, with mboxrd's `>From `
/// quoting undone (mailbox.mbox leaves it).
const PYTHON: &str = r#"
import mailbox, os, re, sys, time

def unquote(data):
    return re.sub(rb'(?m)^>(>*From )', rb'\1', data)

mode = sys.argv[1]
if mode == "append":
    path, messages, stop = sys.argv[2:5]
    box = mailbox.mbox(path)
    for name in sorted(os.listdir(messages)):
        if os.path.exists(stop):
            break
        with open(os.path.join(messages, name), "rb") as f:
            data = f.read()
        while True:
            try:
                box.lock()
                break
            except mailbox.ExternalClashError:
                time.sleep(0.005)
        try:
            box.add(data)
            box.flush()
        finally:
            box.unlock()
        print(name, flush=True)
        time.sleep(0.05)
    box.close()
elif mode == "read":
    box = mailbox.mbox(sys.argv[2], create=False)
    for key in box.keys():
        print(unquote(box.get_bytes(key)).hex())
"#;

/// New messages on the server per round, and their size: enough that a round's RETR stream
/// takes a while, so the other writers get in while popwire writes.
const PER_ROUND: usize = 40;
const SIZE: usize = 12_000;

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", program])
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails (with a test Dovecot configured, i.e. in the test command) or skips loudly.
fn require(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "mbox interop test needs {missing:?}: run `tests/install-deps.sh interop` (procmail) and \
         install python3"
    );
    if std::env::var_os(popwire_tests::ENV_VAR).is_some_and(|v| !v.is_empty()) {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    false
}

/// A message another writer delivers: its own Message-ID, lines of varying length, no line
/// starting with `From ` (procmail and Python quote those mboxo-style, which is theirs to do).
fn foreign_message(writer: &str, i: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut m = format!(
        "Message-ID: <{writer}-{i}-{seed}@popwire.test>\nFrom: {writer} <{writer}@popwire.test>\n\
         Subject: {writer} message {i}\n\n"
    )
    .into_bytes();
    for line in 0..(5 + rng.below(60)) {
        let width = rng.below(90) as usize;
        m.extend(format!("{writer} {i} line {line} ").bytes());
        m.extend((0..width).map(|k| b"abcdefghij .,"[(k + line as usize) % 13]));
        m.push(b'\n');
    }
    m
}

/// What the three readers found, each as a message → count map.
fn read_with_python(python: &Path, mbox: &Path) -> HashMap<Vec<u8>, usize> {
    let out = Command::new("python3")
        .arg(python)
        .arg("read")
        .arg(mbox)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Python's mailbox.mbox could not read the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex_lines(&out.stdout)
}

fn read_with_dovecot(mbox: &Path, user: &str) -> HashMap<Vec<u8>, usize> {
    let d = Dovecot::shared();
    // Dovecot writes its own X-UID/X-IMAPbase headers and index into an mbox it opens, so it
    // reads a copy, in a directory its mail user (the owner of the users' Maildirs) can use.
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(d.maildir_of(user)).unwrap();
    let dir = d.home.join(format!("{user}-mboxcheck"));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("inbox");
    std::fs::copy(mbox, &copy).unwrap();
    for p in [&dir, &copy] {
        std::os::unix::fs::chown(p, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let out = Command::new("doveadm")
        .arg("-c")
        .arg(d.dir.join("dovecot.conf"))
        .arg("-o")
        .arg(format!(
            "mail_location=mbox:{}:INBOX={}",
            dir.display(),
            copy.display()
        ))
        // The pager format prints each value raw (JSON would replace the corpus's 8-bit bytes):
        // `text:\n<message>` per message, the message ending in its own newline.
        .args([
            "-f", "pager", "fetch", "-u", user, "text", "mailbox", "INBOX", "all",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "doveadm could not read the mbox ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = HashMap::new();
    let Some(records) = out.stdout.strip_prefix(b"text:\n") else {
        assert!(
            out.stdout.is_empty(),
            "doveadm printed {:?}",
            preview(&out.stdout)
        );
        return counts;
    };
    // A line `text:` inside a message would look like a new record; the test's messages have
    // none, so a split there shows up as unknown messages rather than passing silently.
    let mut rest = records;
    loop {
        let (message, next) = match rest.windows(7).position(|w| w == b"\ntext:\n") {
            Some(at) => (&rest[..=at], Some(&rest[at + 7..])),
            None => (rest, None),
        };
        *counts.entry(mboxrd_unquote(message)).or_insert(0) += 1;
        match next {
            Some(next) => rest = next,
            None => break,
        }
    }
    counts
}

/// Removes one `>` from every line matching `^>+From ` (Dovecot, like mailbox.mbox, leaves
/// mboxrd quoting in place).
fn mboxrd_unquote(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    for line in message.split_inclusive(|&b| b == b'\n') {
        match line.iter().position(|&b| b != b'>') {
            Some(n) if n > 0 && line[n..].starts_with(b"From ") => {
                out.extend_from_slice(&line[1..])
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

fn hex_lines(text: &[u8]) -> HashMap<Vec<u8>, usize> {
    let mut counts = HashMap::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let bytes = line
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect();
        *counts.entry(bytes).or_insert(0) += 1;
    }
    counts
}

/// procmail delivering `messages` one by one into `mbox` until `stop`; returns what it accepted.
fn procmail_loop(
    writer: &'static str,
    rcfile: PathBuf,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut delivered = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let message = foreign_message(writer, i, seed);
            let mut child = Command::new("procmail")
                .args(["-f", "procmail-feeder", "-m"])
                .arg(&rcfile)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&message).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "procmail failed on message {i} ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            delivered.push(message);
            // Pacing, so procmail is one writer among three rather than a flood.
            std::thread::sleep(Duration::from_millis(15));
        }
        delivered
    })
}

#[test]
fn popwire_procmail_and_python_share_an_mbox_through_dropped_connections() {
    if !require(&["procmail", "python3", "doveadm"]) {
        return;
    }
    let d = Dovecot::shared();
    let seed = exactly_once::seed("POPWIRE_INTEROP_SEED");
    let mut rng = Rng(seed);
    let rounds = exactly_once::count("POPWIRE_INTEROP_ROUNDS", 10);
    eprintln!("mbox interop: seed {seed} (POPWIRE_INTEROP_SEED={seed} replays it)");

    let user = d.new_user("interop");
    // Sessions 1..=rounds are cut in the middle of the RETR stream; the last one is not.
    let cuts: Vec<(usize, Cut)> = (1..=rounds)
        .map(|n| {
            let octets = 2_000 + rng.below((PER_ROUND * SIZE) as u64 - 2_000);
            (n, Cut::MidRetr { octets })
        })
        .collect();
    let proxy = FaultProxy::start(d.plain_addr().unwrap(), cuts.clone()).unwrap();
    let account = Account::for_user(
        user.clone(),
        "interop",
        Destination::Mbox,
        false,
        proxy.port(),
    );
    let dir = account.dir.path();
    let mbox = account.mbox();
    std::fs::create_dir_all(mbox.parent().unwrap()).unwrap();

    let python = dir.join("mbox_writer.py");
    std::fs::write(&python, PYTHON).unwrap();
    let rcfile = dir.join("procmailrc");
    std::fs::write(
        &rcfile,
        format!(
            "LOGFILE={}\nLOCKSLEEP=1\n:0:\n{}\n",
            dir.join("procmail.log").display(),
            mbox.display()
        ),
    )
    .unwrap();
    let python_dir = dir.join("python-messages");
    std::fs::create_dir(&python_dir).unwrap();
    let mut python_messages = HashMap::new();
    for i in 0..2000 {
        let name = format!("{i:05}.eml");
        let message = foreign_message("python", i, seed);
        std::fs::write(python_dir.join(&name), &message).unwrap();
        python_messages.insert(name, message);
    }

    // The other writers start first and run until popwire is done.
    let stop_file = dir.join("stop");
    let python_writer = Command::new("python3")
        .arg(&python)
        .arg("append")
        .arg(&mbox)
        .arg(&python_dir)
        .arg(&stop_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Two procmail feeders, so procmail also meets procmail.
    let procmails = ["procmail-a", "procmail-b"]
        .map(|writer| procmail_loop(writer, rcfile.clone(), seed, Arc::clone(&stop)));
    let both_wrote = exactly_once::poll(Duration::from_secs(20), || {
        std::fs::read(&mbox).is_ok_and(|b| {
            let text = String::from_utf8_lossy(&b);
            text.contains("Subject: procmail-") && text.contains("Subject: python message")
        })
    });
    assert!(
        both_wrote,
        "procmail and python never both wrote to {}",
        mbox.display()
    );

    let started = Instant::now();
    let mut originals = Vec::new();
    for round in 0..=rounds {
        let mut mail = corpus::sized(PER_ROUND, SIZE, seed ^ round as u64);
        for m in mail.iter_mut().step_by(3) {
            *m = with_from_lines(m);
        }
        d.seed(&user, &mail).unwrap();
        originals.extend(mail.iter().map(|m| lf(m)));
        let mut run = account.command().spawn().unwrap();
        let status = exactly_once::wait_until(&mut run, Duration::from_secs(60));
        let Some(status) = status else {
            let _ = run.kill();
            let _ = run.wait();
            stop.store(true, Ordering::SeqCst);
            std::fs::write(&stop_file, "").unwrap();
            panic!(
                "seed {seed}: popwire run {} did not finish in 60 s (a lock never released, or \
                 a lock-order deadlock with procmail or python)",
                round + 1
            );
        };
        let stderr = exactly_once::stderr_of(&mut run);
        if round < rounds {
            let session = proxy.session(round + 1).unwrap();
            assert!(
                session.fired,
                "seed {seed}: round {round}: the cut did not happen: {session:?}"
            );
            assert!(
                !status.success(),
                "seed {seed}: round {round}: the cut run succeeded"
            );
        } else {
            assert!(
                status.success(),
                "seed {seed}: the clean run failed ({status}): {stderr}"
            );
        }
    }
    let popwire_time = started.elapsed();

    stop.store(true, Ordering::SeqCst);
    std::fs::write(&stop_file, "").unwrap();
    let procmail_delivered: Vec<Vec<u8>> = procmails
        .into_iter()
        .flat_map(|feeder| feeder.join().unwrap())
        .collect();
    let python_out = python_writer.wait_with_output().unwrap();
    assert!(
        python_out.status.success(),
        "the python writer failed: {}",
        String::from_utf8_lossy(&python_out.stderr)
    );
    let python_delivered: Vec<Vec<u8>> = String::from_utf8_lossy(&python_out.stdout)
        .lines()
        .map(|name| python_messages[name].clone())
        .collect();

    let mut expected = originals.clone();
    expected.extend(procmail_delivered.iter().cloned());
    expected.extend(python_delivered.iter().cloned());
    let summary = format!(
        "seed {seed}: {} from popwire ({rounds} cut runs and a clean one), {} from procmail, {} \
         from python",
        originals.len(),
        procmail_delivered.len(),
        python_delivered.len()
    );

    // 1. This file's mboxrd reader: structure, and every message of every writer once.
    let bytes = std::fs::read(&mbox).unwrap();
    let parsed =
        parse_mboxrd(&bytes).unwrap_or_else(|e| panic!("{summary}: the mbox is broken: {e}"));
    let mut ours = HashMap::new();
    for m in &parsed {
        *ours.entry(m.content.clone()).or_insert(0) += 1;
    }
    let check = |reader: &str, found: &HashMap<Vec<u8>, usize>| {
        let (lost, twice, unknown) = tally(&expected, found);
        let lost_by_writer: Vec<(&str, usize)> = [
            ("popwire", &originals),
            ("procmail", &procmail_delivered),
            ("python", &python_delivered),
        ]
        .into_iter()
        .map(|(w, ms)| (w, ms.iter().filter(|m| !found.contains_key(*m)).count()))
        .collect();
        let unknown_preview: Vec<String> = found
            .keys()
            .filter(|m| !expected.contains(m))
            .take(3)
            .map(|m| preview(m))
            .collect();
        assert_eq!(
            (lost, twice, unknown),
            (0, 0, 0),
            "{summary}: {reader}: lost, duplicated, unknown (lost by writer: \
             {lost_by_writer:?}; unknown e.g. {unknown_preview:?})"
        );
    };
    check("mboxrd reader", &ours);
    for m in &parsed {
        if originals.contains(&m.content) {
            assert!(
                m.from_line.starts_with(b"From MAILER-DAEMON "),
                "popwire's From line: {:?}",
                String::from_utf8_lossy(&m.from_line)
            );
        }
    }
    // 2. Python's mailbox.mbox.
    check("Python mailbox.mbox", &read_with_python(&python, &mbox));
    // 3. Dovecot's mbox driver.
    check("Dovecot (doveadm fetch)", &read_with_dovecot(&mbox, &user));

    assert!(
        d.server_messages(&user).unwrap().is_empty(),
        "{summary}: the server is not empty"
    );
    eprintln!(
        "mbox interop: {summary}; popwire's runs took {popwire_time:?}; all three readers agree"
    );
}

/// The interleaving above, pinned down: popwire's session is cut in the middle of a message and
/// popwire cuts off what it wrote of it (and, at octet 5000, that is all its batch wrote);
/// Python's `mailbox.mbox` then appends a message, whose `From MAILER-DAEMON ` line is the same
/// as popwire's; the next run must leave that message alone, whatever its journal says about
/// the batch before it. popwire wrote none of its bytes.
#[test]
fn a_message_python_appends_after_a_rolled_back_batch_survives_the_next_run() {
    if !require(&["python3"]) {
        return;
    }
    // Inside the first message (about 12 KB on the wire), then inside the fifth.
    for octets in [5_000, 50_000] {
        python_append_after_rollback(octets);
    }
}

fn python_append_after_rollback(octets: u64) {
    let d = Dovecot::shared();
    let user = d.new_user("rolledback");
    let mail = corpus::sized(20, SIZE, 77);
    d.seed(&user, &mail).unwrap();
    let proxy = FaultProxy::start(d.plain_addr().unwrap(), [(1, Cut::MidRetr { octets })]).unwrap();
    let account = Account::for_user(
        user.clone(),
        "rolledback",
        Destination::Mbox,
        false,
        proxy.port(),
    );
    let dir = account.dir.path();
    let mbox = account.mbox();

    let cut = account.command().output().unwrap();
    assert!(
        proxy.session(1).unwrap().fired,
        "cut at {octets}: it did not happen"
    );
    assert!(!cut.status.success(), "cut at {octets}: the run succeeded");

    let python = dir.join("mbox_writer.py");
    std::fs::write(&python, PYTHON).unwrap();
    let python_dir = dir.join("python-messages");
    std::fs::create_dir(&python_dir).unwrap();
    let theirs = foreign_message("python", 0, octets);
    std::fs::write(python_dir.join("00000.eml"), &theirs).unwrap();
    let added = Command::new("python3")
        .arg(&python)
        .arg("append")
        .arg(&mbox)
        .arg(&python_dir)
        .arg(dir.join("stop"))
        .output()
        .unwrap();
    assert!(
        added.status.success() && added.stdout == b"00000.eml\n",
        "python did not append: {}",
        String::from_utf8_lossy(&added.stderr)
    );

    account.clean_run();
    let mut expected: Vec<Vec<u8>> = mail.iter().map(|m| lf(m)).collect();
    expected.push(theirs.clone());
    let stored = account.stored();
    assert!(
        stored.contains_key(&theirs),
        "cut at {octets}: the next run cut off the message Python appended after popwire's \
         rolled-back batch"
    );
    assert_eq!(
        tally(&expected, &stored),
        (0, 0, 0),
        "cut at {octets}: lost, duplicated, unknown"
    );
}
