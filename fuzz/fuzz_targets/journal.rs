//! The UID journal's reader and writer (`popwire::fetch::journal::Journal`) fed arbitrary files.
//!
//! The journal is only read from a path, so each input is written to a scratch file (under
//! `/dev/shm` when it exists: the target then never touches a disk) and opened. Checks:
//! - no panic; an error renders, holds no control character (UIDs come from servers and the
//!   error is printed on a terminal), and names a line that exists;
//! - every pending receipt belongs to a recorded UID;
//! - `save` is a fixed point: the file it writes opens to the same entries, the same UIDs
//!   pending (each with one of the receipts it had), and saves again to the same bytes (so
//!   every UID, size and receipt escapes and unescapes to itself);
//! - `append_delivered` of new messages (UIDs with spaces, `%`, tabs, newlines, non-ASCII; a
//!   reused UID with another size; receipts shaped like paths), straight after opening and
//!   after saving, gives exactly what the documented rules predict: a UID already recorded with
//!   a matching size keeps its entry and time, any other replaces or adds one, and each new
//!   receipt is pending;
//! - `mark_published` then `open` leaves nothing pending and the entries unchanged.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use popwire::fetch::journal::{Delivered, Journal, JournalError};

/// Messages a lenient or hostile server might list, appended after every successful open:
/// (UID, listed size, receipt).
const NEW: &[(&str, Option<u64>, Option<&str>)] = &[
    (
        "plain-uid",
        Some(5120),
        Some("1732696741.M5P7Q0.host,S=5120"),
    ),
    ("with space", None, None),
    ("50%\t\r\nnext", Some(0), Some("../../etc/passwd")),
    ("ünï\u{1b}[31m", Some(u64::MAX), Some("r%\t\n\u{0}é")),
    ("%41", None, None),
    // UIDs the seeds use: replaced when recorded with another size.
    ("a", Some(17), Some("a-receipt")),
    ("x", None, Some("x-receipt")),
    // The same UID twice in one batch, with two sizes: the second replaces the first.
    ("dup", Some(1), Some("dup-1")),
    ("dup", Some(2), Some("dup-2")),
];
const NOW: u64 = 1_800_000_000;

/// UID -> the receipts pending for it.
type Pending = BTreeMap<String, BTreeSet<String>>;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = ["/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        // Earlier runs cannot clean up (libFuzzer leaves by exit()): remove the directories of
        // processes that are gone (known only where /proc is).
        let old = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|_| Path::new("/proc/self").exists());
        for entry in old {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("popwire-fuzz-journal-"));
            if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("popwire-fuzz-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fn entries(journal: &Journal) -> BTreeMap<String, u64> {
    journal.iter().map(|(uid, t)| (uid.to_owned(), t)).collect()
}

fn pending(journal: &Journal) -> Pending {
    let mut map = Pending::new();
    for (uid, receipt) in journal.pending() {
        assert!(
            journal.contains(uid),
            "receipt pending for {uid:?}, which is not recorded"
        );
        map.entry(uid.clone()).or_default().insert(receipt.clone());
    }
    map
}

fn open(path: &Path) -> (BTreeMap<String, u64>, Pending) {
    let journal = Journal::open(path).expect("a journal popwire wrote must open");
    (entries(&journal), pending(&journal))
}

/// A rewrite keeps one receipt per UID: the same UIDs pending, each with a receipt it had.
fn assert_pending_kept(before: &Pending, after: &Pending, what: &str) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{what}: pending UIDs changed"
    );
    for (uid, receipts) in after {
        let had = before.get(uid).cloned().unwrap_or_default();
        assert!(
            receipts.len() == 1 && receipts.is_subset(&had),
            "{what}: {uid:?} pending with {receipts:?}, had {had:?}"
        );
    }
}

fn append_new(journal: &mut Journal) {
    let delivered = NEW.iter().map(|&(uid, size, receipt)| Delivered {
        uid,
        size,
        receipt: receipt.map(str::to_owned),
    });
    journal.append_delivered(delivered, NOW).expect("append");
}

/// What appending [`NEW`] to `journal` should give, by the rules `append_delivered` documents:
/// a UID already recorded keeps its entry when either size is unknown or both are equal;
/// otherwise the new message adds or replaces the entry and its receipt becomes pending.
fn expected_after_append(journal: &Journal) -> (BTreeMap<String, u64>, Pending) {
    let (mut times, mut pending) = (entries(journal), pending(journal));
    // Sizes of the entries this batch wrote (those from the file are asked of the journal).
    let mut written: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    for &(uid, size, receipt) in NEW {
        let keep = match written.get(uid) {
            Some(known) => size.is_none() || known.is_none() || *known == size,
            None => match size {
                Some(size) => journal.contains_message(uid, size),
                None => journal.contains(uid),
            },
        };
        if keep {
            continue;
        }
        written.insert(uid, size);
        times.insert(uid.to_owned(), NOW);
        if let Some(receipt) = receipt {
            pending
                .entry(uid.to_owned())
                .or_default()
                .insert(receipt.to_owned());
        }
    }
    (times, pending)
}

fn check_after_append(path: &Path, expected: &(BTreeMap<String, u64>, Pending), what: &str) {
    let journal = Journal::open(path).expect("a journal popwire wrote must open");
    let (times, pending) = (entries(&journal), pending(&journal));
    assert_eq!(times, expected.0, "{what}: entries lost or changed");
    // Appended lines keep every receipt; a rewrite keeps one per UID.
    for (uid, receipts) in &pending {
        let allowed = expected.1.get(uid).cloned().unwrap_or_default();
        assert!(
            !receipts.is_empty() && receipts.is_subset(&allowed),
            "{what}: {uid:?} pending with {receipts:?}, expected among {allowed:?}"
        );
    }
    assert_eq!(
        pending.keys().collect::<Vec<_>>(),
        expected.1.keys().collect::<Vec<_>>(),
        "{what}: pending UIDs"
    );
    // The last size given for each UID is what the journal now matches.
    let mut last = BTreeMap::new();
    for &(uid, size, _) in NEW {
        if let Some(size) = size {
            last.insert(uid, size);
        }
    }
    for (uid, size) in last {
        if times.get(uid) == Some(&NOW) {
            assert!(
                journal.contains_message(uid, size),
                "{what}: {uid:?} does not match its size {size}"
            );
        }
    }
}

fn saved_bytes(journal: &mut Journal, path: &Path) -> Vec<u8> {
    journal.save().expect("save");
    std::fs::read(path).expect("read the saved journal")
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("account@pop.example.com.uids");
    std::fs::write(&path, data).expect("write the scratch journal");
    let mut journal = match Journal::open(&path) {
        Ok(journal) => journal,
        Err(error) => {
            let shown = error.to_string();
            assert!(
                !shown.chars().any(char::is_control),
                "a journal error holds a control character: {shown:?}"
            );
            let _ = (format!("{error:?}"), error.is_disk_full());
            if let JournalError::Corrupt { line, .. } = error {
                let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
            return;
        }
    };
    let read = entries(&journal);
    let read_pending = pending(&journal);
    assert_eq!(journal.len(), read.len());
    assert_eq!(journal.is_empty(), read.is_empty());
    for (uid, time) in &read {
        assert!(journal.contains(uid));
        assert_eq!(journal.first_seen(uid), Some(*time));
    }

    // Appending straight after open: to the file as it is, or by rewriting it.
    let expected = expected_after_append(&journal);
    append_new(&mut journal);
    assert_eq!(entries(&journal), expected.0);
    check_after_append(&path, &expected, "open, append, open");
    journal.mark_published().expect("mark_published");
    assert!(journal.pending().is_empty());
    assert_eq!(
        open(&path),
        (expected.0.clone(), Pending::new()),
        "open, append, mark_published, open"
    );

    // save is a fixed point, and a clean file takes an append.
    std::fs::write(&path, data).expect("write the scratch journal");
    let mut journal = Journal::open(&path).expect("opened before");
    let first = saved_bytes(&mut journal, &path);
    let mut journal = Journal::open(&path).expect("a saved journal opens");
    assert_eq!(
        entries(&journal),
        read,
        "save then open changed the entries"
    );
    assert_pending_kept(&read_pending, &pending(&journal), "save then open");
    let second = saved_bytes(&mut journal, &path);
    assert!(
        first == second,
        "saving a saved journal changed it:\n{}\n{}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
    let mut journal = Journal::open(&path).expect("a saved journal opens");
    let expected = expected_after_append(&journal);
    append_new(&mut journal);
    check_after_append(&path, &expected, "save, open, append, open");
});
