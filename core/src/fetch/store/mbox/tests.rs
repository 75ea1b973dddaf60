use super::quote::asctime;
use super::*;
use std::io::Write;

fn quote_in_pieces(input: &[u8], split: usize) -> Vec<u8> {
    let mut quoter = FromQuoter::default();
    let mut out = Vec::new();
    let (a, b) = input.split_at(split);
    quoter.feed(a, &mut out);
    quoter.feed(b, &mut out);
    quoter.finish(&mut out);
    out
}

#[test]
fn from_quoting() {
    let input = b"From x\nFrom\n>From y\n>>From z\n> From w\nFro\nxFrom \n>>>\n>Fr";
    let expected: &[u8] = b">From x\nFrom\n>>From y\n>>>From z\n> From w\nFro\nxFrom \n>>>\n>Fr";
    for split in 0..=input.len() {
        assert_eq!(quote_in_pieces(input, split), expected, "split at {split}");
    }
    let mut quoter = FromQuoter::default();
    let mut out = Vec::new();
    for byte in input {
        quoter.feed(std::slice::from_ref(byte), &mut out);
    }
    quoter.finish(&mut out);
    assert_eq!(out, expected);
}

fn stored(dir: &Path) -> String {
    String::from_utf8(fs::read(dir.join("mbox")).unwrap()).unwrap()
}

fn strip_from_dates(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("From MAILER-DAEMON ") {
                "From MAILER-DAEMON DATE"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn appends_quoted_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
    let mut draft = mbox.draft().unwrap();
    draft.write_all(b"Subject: a\r\n\r\nFr").unwrap();
    draft.write_all(b"om here\r").unwrap();
    draft.write_all(b"\n>From there\r\nend").unwrap();
    let _ = draft.finish().unwrap();
    let mut draft = mbox.draft().unwrap();
    draft.write_all(b"Subject: b\r\n\r\nbody\r\n").unwrap();
    let _ = draft.finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 2);
    let text = stored(dir.path());
    assert!(text.starts_with("From MAILER-DAEMON "));
    assert_eq!(
        strip_from_dates(&text),
        "From MAILER-DAEMON DATE\nSubject: a\n\n>From here\n>>From there\nend\n\n\
         From MAILER-DAEMON DATE\nSubject: b\n\nbody\n"
    );
    assert!(text.ends_with("body\n\n"));
}

#[test]
fn dropped_draft_is_truncated_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Mbox::open(&dir.path().join("mbox")).unwrap();
    let mut draft = mbox.draft().unwrap();
    draft.write_all(b"Subject: kept\r\n\r\nyes\r\n").unwrap();
    let _ = draft.finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 1);
    let committed = stored(dir.path());

    let mut draft = mbox.draft().unwrap();
    // More than the buffer, so part of it reaches the file before the drop.
    let line = b"0123456789012345678901234567890123456789012345678901234567890123\r\n";
    for _ in 0..2000 {
        draft.write_all(line).unwrap();
    }
    draft.flush().unwrap();
    assert!(stored(dir.path()).len() > committed.len());
    drop(draft);
    assert_eq!(stored(dir.path()), committed);
    assert_eq!(mbox.commit().unwrap(), 0);

    // A later message still lands right after the committed one.
    let mut draft = mbox.draft().unwrap();
    draft.write_all(b"Subject: next\r\n\r\n").unwrap();
    let _ = draft.finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 1);
    assert_eq!(
        strip_from_dates(&stored(dir.path())),
        "From MAILER-DAEMON DATE\nSubject: kept\n\nyes\n\nFrom MAILER-DAEMON DATE\nSubject: next\n\n"
    );
}

#[test]
fn uncommitted_batch_is_cut_off_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    fs::write(&path, "From old\nx\n").unwrap();
    let mut mbox = Mbox::open(&path).unwrap();
    let mut draft = mbox.draft().unwrap();
    draft.write_all(b"Subject: lost\r\n").unwrap();
    let _ = draft.finish().unwrap();
    drop(mbox);
    assert_eq!(stored(dir.path()), "From old\nx\n");
}

#[test]
fn separates_from_existing_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    for (existing, separator) in [("", ""), ("x", "\n\n"), ("x\n", "\n"), ("x\n\n", "")] {
        fs::write(&path, existing).unwrap();
        let mut mbox = Mbox::open(&path).unwrap();
        let _ = mbox.draft().unwrap().finish().unwrap();
        mbox.commit().unwrap();
        let text = stored(dir.path());
        let expected_prefix = format!("{existing}{separator}From MAILER-DAEMON ");
        assert!(text.starts_with(&expected_prefix), "{existing:?}: {text:?}");
    }
}

#[test]
fn locked_by_another_holder_waits_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    let mut mbox = Mbox::open(&path).unwrap();
    mbox.set_lock_timeout(Duration::from_millis(300));
    let other = File::open(&path).unwrap();
    other.lock().unwrap();
    let started = Instant::now();
    let error = mbox.draft().err().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(error, StoreError::Locked { .. }));
    assert!(error.to_string().contains("is locked by another program"));
    other.unlock().unwrap();
    let _ = mbox.draft().unwrap().finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 1);
}

#[test]
fn asctime_dates() {
    assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
    assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    assert_eq!(asctime(1_764_232_740), "Thu Nov 27 08:39:00 2025");
    assert_eq!(asctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
}

#[test]
fn bytes_another_program_wrote_are_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    let mut mbox = Mbox::open(&path).unwrap();
    let mut draft = mbox.draft().unwrap();
    draft.write_all(&vec![b'x'; 100_000]).unwrap();
    draft.flush().unwrap();
    // A program that ignores every lock appends meanwhile.
    let mut other = fs::OpenOptions::new().append(true).open(&path).unwrap();
    other.write_all(b"From other\nSubject: theirs\n\n").unwrap();
    drop(draft);
    let text = fs::read(&path).unwrap();
    assert!(text.ends_with(b"From other\nSubject: theirs\n\n"));
    // The batch is refused rather than committed over a damaged file.
    assert!(mbox.commit().is_err());
    assert!(fs::read(&path).unwrap().ends_with(b"Subject: theirs\n\n"));
}

#[test]
fn a_dotlock_or_an_fcntl_lock_of_another_program_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    let mut mbox = Mbox::open(&path).unwrap();
    mbox.set_lock_timeout(Duration::from_millis(300));
    // procmail's and Python's dotlock: no pid in it, so only its age could make it stale.
    fs::write(dir.path().join("mbox.lock"), "").unwrap();
    assert!(matches!(
        mbox.draft().err(),
        Some(StoreError::Locked { .. })
    ));
    // A dotlock naming a process that is gone is a crashed run's: broken at once.
    fs::write(dir.path().join("mbox.lock"), "2147483646\n").unwrap();
    let _ = mbox.draft().unwrap().finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 1);
    // Python's mailbox.lock() and procmail take a POSIX record lock: held by another process.
    let mut holder = std::process::Command::new("python3")
        .arg("-c")
        .arg("import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    io::BufRead::read_line(
        &mut io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    assert!(matches!(
        mbox.draft().err(),
        Some(StoreError::Locked { .. })
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = mbox.draft().unwrap().finish().unwrap();
    assert_eq!(mbox.commit().unwrap(), 1);
    assert!(!dir.path().join("mbox.lock").exists());
}

#[test]
fn recovery_keeps_whole_messages_and_cuts_what_a_crash_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbox");
    fs::write(&path, "From someone\nold\n\n").unwrap();
    let mut mbox = Mbox::open(&path).unwrap();
    // A crash within this process leaves its flock and dotlock held; an fcntl lock, like the
    // others after a real crash, does not stand in its own process's way.
    mbox.set_locks(&[LockKind::Fcntl]);
    let mark = mbox.begin().unwrap().unwrap();
    assert!(mbox.owns(&mark));
    let mut receipts = Vec::new();
    for body in [
        &b"Subject: one\r\n\r\n1\r\n"[..],
        b"Subject: two\r\n\r\n2\r\n",
    ] {
        let mut draft = mbox.draft().unwrap();
        draft.write_all(body).unwrap();
        match draft.finish().unwrap() {
            Finished::Stored { receipt: Some(r) } => receipts.push(r),
            other => panic!("{other:?}"),
        }
    }
    // The crash, mid-way through a third message: no destructor runs.
    let mut draft = mbox.draft().unwrap();
    draft.write_all(&vec![b'y'; 70_000]).unwrap();
    std::mem::forget(draft);
    std::mem::forget(mbox);
    let before = fs::metadata(&path).unwrap().len();
    // The second message's receipt line was lost in the crash: only the first is known.
    let mut again = Mbox::open(&path).unwrap();
    again.set_locks(&[LockKind::Fcntl]);
    let found = again
        .recover(
            &[
                receipts[0].clone(),
                "mbox:1:2:0:5:00000000:/elsewhere".into(),
            ],
            &[mark],
        )
        .unwrap();
    assert_eq!(found, [true, false]);
    let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
    assert!(fs::metadata(&path).unwrap().len() < before);
    assert_eq!(
        strip_from_dates(&text),
        "From someone\nold\n\nFrom MAILER-DAEMON DATE\nSubject: one\n\n1\n"
    );
}
