#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use super::*;
use std::io::Write;

fn journal_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("work.uids");
    (dir, path)
}

fn delivered<'u>(uid: &'u str, size: Option<u64>, receipt: Option<&str>) -> Delivered<'u> {
    Delivered {
        uid,
        size,
        receipt: receipt.map(str::to_owned),
    }
}

#[test]
fn a_reused_uid_with_another_size_is_another_message() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal
        .append_delivered([delivered("1", Some(100), None)], 5)
        .unwrap();
    assert!(journal.contains_message("1", 100));
    assert!(!journal.contains_message("1", 101));
    assert!(!journal.contains_message("2", 100));
    // The same message again keeps its first time; another one under the UID replaces it.
    journal
        .append_delivered([delivered("1", Some(100), None)], 6)
        .unwrap();
    assert_eq!(journal.first_seen("1"), Some(5));
    journal
        .append_delivered([delivered("1", Some(7), None)], 9)
        .unwrap();
    let reopened = Journal::open(&path).unwrap();
    assert!(reopened.contains_message("1", 7) && !reopened.contains_message("1", 100));
    assert_eq!(reopened.first_seen("1"), Some(9));
    // Entries from before sizes were recorded match any size.
    journal.append(["old"], 1).unwrap();
    assert!(Journal::open(&path).unwrap().contains_message("old", 12345));
}

#[test]
fn where_a_message_was_published_is_kept_while_its_uid_is() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal
        .append_delivered(
            [
                delivered("a", Some(10), Some("r1")),
                delivered("b", Some(20), Some("r2")),
            ],
            5,
        )
        .unwrap();
    journal.mark_published().unwrap();
    let url = "imap://me@h:993/INBOX;UIDVALIDITY=7/;UID=42";
    journal
        .record_places([("a", url.to_owned()), ("unknown", "x".to_owned())])
        .unwrap();
    assert_eq!(journal.place("a"), Some(url));
    assert_eq!(journal.place("unknown"), None);
    // A second line for the UID, by design: the file stays appendable, nothing else changes.
    let reopened = Journal::open(&path).unwrap();
    assert!(!reopened.needs_rewrite);
    assert_eq!(reopened.place("a"), Some(url));
    assert_eq!(reopened.place("b"), None);
    assert_eq!(reopened.first_seen("a"), Some(5));
    assert!(reopened.contains_message("a", 10));
    assert_eq!(reopened.len(), 2);
    // Kept through a rewrite, on the entry's own line.
    let mut reopened = reopened;
    reopened.save().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("a\t")).count(),
        1,
        "{text}"
    );
    assert_eq!(Journal::open(&path).unwrap().place("a"), Some(url));
    // Another message under the UID, or the UID gone from the server: the place goes too.
    reopened
        .append_delivered([delivered("a", Some(11), None)], 9)
        .unwrap();
    assert_eq!(reopened.place("a"), None);
    assert_eq!(Journal::open(&path).unwrap().place("a"), None);
    reopened
        .record_places([(
            "b",
            "imap://me@h:993/INBOX;UIDVALIDITY=7/;UID=43".to_owned(),
        )])
        .unwrap();
    reopened.forget(["b"]);
    reopened.save().unwrap();
    assert_eq!(Journal::open(&path).unwrap().place("b"), None);
}

#[test]
fn unknown_fields_are_skipped_and_bad_sizes_are_named() {
    let (_dir, path) = journal_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "popwire-uid-journal 3\na\t1\tx=future\ts=9\n").unwrap();
    assert!(Journal::open(&path).unwrap().contains_message("a", 9));
    fs::write(&path, "popwire-uid-journal 3\na\t1\ts=nine\n").unwrap();
    let error = Journal::open(&path).unwrap_err().to_string();
    assert!(error.contains(":2: the size is not a number"), "{error}");
}

#[test]
fn receipts_stay_pending_until_marked_published() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal
        .append_delivered(
            [
                delivered("a", Some(3), Some("f1,S=3")),
                delivered("b", None, None),
                delivered("c d", Some(40), Some("f 2")),
            ],
            7,
        )
        .unwrap();
    let reopened = Journal::open(&path).unwrap();
    assert_eq!(
        reopened.pending(),
        [
            ("a".to_owned(), "f1,S=3".to_owned()),
            ("c d".to_owned(), "f 2".to_owned())
        ]
    );
    assert_eq!(reopened.len(), 3);
    journal.mark_published().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "popwire-uid-journal 3\na\t7\ts=3\tr=f1,S=3\nb\t7\nc%20d\t7\ts=40\tr=f%202\n+\n"
    );
    let mut reopened = Journal::open(&path).unwrap();
    assert!(reopened.pending().is_empty());
    // The file is clean: the next batch is appended, not rewritten.
    reopened
        .append_delivered([delivered("e", None, Some("f3"))], 8)
        .unwrap();
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .ends_with("+\ne\t8\tr=f3\n")
    );
}

#[test]
fn settling_forgets_what_was_not_found_and_keeps_receipts_through_a_rewrite() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal
        .append_delivered(
            [
                delivered("a", None, Some("r1")),
                delivered("b", None, Some("r2")),
            ],
            1,
        )
        .unwrap();
    // A compaction while receipts are pending must not lose them.
    journal.retain_only(&["a", "b"].into_iter().collect());
    journal.record(["z"], 2);
    journal.save().unwrap();
    let mut reopened = Journal::open(&path).unwrap();
    assert_eq!(reopened.pending().len(), 2);
    reopened.settle_pending(&[true, false]).unwrap();
    let reopened = Journal::open(&path).unwrap();
    assert!(reopened.pending().is_empty());
    assert!(reopened.contains("a") && !reopened.contains("b") && reopened.contains("z"));
}

#[test]
fn version_1_files_are_read_and_rewritten_as_version_2() {
    let (_dir, path) = journal_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "popwire-uid-journal 1\na\t1\n").unwrap();
    let mut journal = Journal::open(&path).unwrap();
    assert!(journal.contains("a"));
    journal.append(["b"], 2).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "popwire-uid-journal 3\na\t1\nb\t2\n"
    );
}

#[test]
fn missing_file_is_empty() {
    let (_dir, path) = journal_path();
    let journal = Journal::open(&path).unwrap();
    assert!(journal.is_empty());
    assert!(!journal.contains("x"));
    assert_eq!(journal.first_seen("x"), None);
}

#[test]
fn round_trip_with_odd_uids() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    let odd = [
        "plain",
        "with space",
        "tab\there",
        "new\nline",
        "50%",
        "ünï",
        "",
        "%41",
    ];
    journal.record(odd, 100);
    journal.record(["plain"], 200); // keeps the first time
    journal.save().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("popwire-uid-journal 3\n"));
    assert!(text.contains("with%20space\t100\n"));
    assert!(text.contains("50%25\t100\n"));
    assert!(text.is_ascii());

    let reopened = Journal::open(&path).unwrap();
    assert_eq!(reopened.len(), odd.len());
    for uid in odd {
        assert_eq!(reopened.first_seen(uid), Some(100), "{uid:?}");
    }
}

#[test]
fn retain_only_forgets_and_append_compacts() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal.append(["a", "b", "c"], 1).unwrap();
    let present: HashSet<&str> = ["a", "c"].into_iter().collect();
    journal.retain_only(&present);
    journal.append(["d"], 2).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "popwire-uid-journal 3\na\t1\nc\t1\nd\t2\n");
}

#[test]
fn append_adds_lines_without_rewriting() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal.append(["b", "a"], 5).unwrap(); // first append creates the file by a save
    journal.append(["z", "a", "y"], 6).unwrap();
    journal.append(Vec::<&str>::new(), 7).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "popwire-uid-journal 3\na\t5\nb\t5\nz\t6\ny\t6\n");
    let reopened = Journal::open(&path).unwrap();
    assert_eq!(reopened.first_seen("a"), Some(5));
    assert_eq!(reopened.first_seen("y"), Some(6));
    assert!(!reopened.needs_rewrite);
}

#[test]
fn torn_last_line_is_ignored_and_repaired() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal.append(["a"], 1).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"b\t2\ntorn\t12").unwrap();
    drop(file);

    let mut journal = Journal::open(&path).unwrap();
    assert!(journal.contains("b"));
    assert!(!journal.contains("torn"));
    journal.append(["c"], 3).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "popwire-uid-journal 3\na\t1\nb\t2\nc\t3\n");
}

#[test]
fn torn_header_and_empty_file_are_empty() {
    let (_dir, path) = journal_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    for content in ["", "popwire-uid"] {
        fs::write(&path, content).unwrap();
        assert!(Journal::open(&path).unwrap().is_empty());
    }
}

#[test]
fn duplicates_keep_the_earliest_time() {
    let (_dir, path) = journal_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "popwire-uid-journal 1\na\t9\na\t3\n").unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.first_seen("a"), Some(3));
    assert!(journal.needs_rewrite);
}

#[test]
fn corruption_names_file_and_line() {
    let (_dir, path) = journal_path();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cases = [
        (
            "popwire-uid-journal 1\na\t1\nb 2\n",
            3,
            "expected UID, a tab, and a time",
        ),
        (
            "popwire-uid-journal 1\na\tsoon\n",
            2,
            "the time is not a number of seconds",
        ),
        (
            "popwire-uid-journal 1\na\t-1\n",
            2,
            "the time is not a number of seconds",
        ),
        (
            "popwire-uid-journal 1\na%4\t1\n",
            2,
            "bad %-escape in the UID",
        ),
        (
            "popwire-uid-journal 1\na b\t1\n",
            2,
            "unexpected byte 0x20 in the UID",
        ),
        ("popwire-uid-journal 1\n%FF\t1\n", 2, "the UID is not UTF-8"),
        (
            "popwire-uid-journal 1\n\n",
            2,
            "expected UID, a tab, and a time",
        ),
        ("uidl\na\t1\n", 1, "not a popwire UID journal"),
    ];
    for (content, line, reason) in cases {
        fs::write(&path, content).unwrap();
        let error = Journal::open(&path).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("UID journal {}:{line}: {reason}", path.display())),
            "{content:?} gave {text}"
        );
    }
    fs::write(&path, "popwire-uid-journal 1\nb 2\n").unwrap();
    assert_eq!(
        Journal::open(&path).unwrap_err().to_string(),
        format!(
            "UID journal {}:2: expected UID, a tab, and a time (repair or delete that line; \
             deleting the whole file makes popwire fetch kept messages again)",
            path.display()
        )
    );
    fs::write(&path, "popwire-uid-journal 7\n").unwrap();
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::UnsupportedVersion { found, .. }) if found == "7"
    ));
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal.record(["a"], 1);
    journal.save().unwrap();
    // A stale temporary file from a crashed run does not get in the way.
    let stale = path
        .parent()
        .unwrap()
        .join(format!(".work.uids.{}.tmp", std::process::id()));
    fs::write(&stale, "junk").unwrap();
    journal.record(["b"], 2);
    journal.save().unwrap();
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("work.uids")]);
    assert_eq!(Journal::open(&path).unwrap().len(), 2);
}

#[cfg(unix)]
#[test]
fn save_failure_keeps_the_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    journal.record(["a"], 1);
    journal.save().unwrap();
    let dir = path.parent().unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
    journal.record(["b"], 2);
    let result = journal.save();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    // Root ignores directory permissions; only check the failure path when it happened.
    if let Err(error) = result {
        assert!(
            error.to_string().contains("check the permissions of"),
            "{error}"
        );
        assert_eq!(Journal::open(&path).unwrap().len(), 1);
    }
}

#[test]
fn scales_to_many_uids() {
    let (_dir, path) = journal_path();
    let mut journal = Journal::open(&path).unwrap();
    let uids: Vec<String> = (0..100_000).map(|i| format!("uid-{i:08}")).collect();
    journal.record(uids.iter().map(String::as_str), 1);
    journal.save().unwrap();
    let started = std::time::Instant::now();
    let mut journal = Journal::open(&path).unwrap();
    for batch in 0..10 {
        let new: Vec<String> = (0..100).map(|i| format!("new-{batch}-{i}")).collect();
        journal.append(new.iter().map(String::as_str), 2).unwrap();
    }
    assert_eq!(journal.len(), 101_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(Journal::open(&path).unwrap().len(), 101_000);
}

#[test]
fn disk_full_is_recognised() {
    let error = JournalError::Io {
        path: PathBuf::from("/var/lib/x/journal"),
        action: "write it",
        source: io::Error::from_raw_os_error(libc::ENOSPC),
    };
    assert!(error.is_disk_full());
    assert!(
        error
            .to_string()
            .ends_with("(disk full: free space on /var/lib/x)"),
        "{error}"
    );
}
