//! Maildir files the way Dovecot expects them.
//!
//! A message is delivered by writing it to `Maildir/tmp/<name>` and renaming
//! it to `Maildir/new/<name>`, where
//!
//! ```text
//! <name> = <secs>.M<usecs>P<pid>Q<n>.popwire,S=<size>,W=<crlf-size>
//! ```
//!
//! * `S` is the file's exact length in bytes.
//! * `W` is its length as served on the wire: `S` plus one for every LF not
//!   preceded by CR (Dovecot serves such "bare" LFs as CRLF; CRLF-stored
//!   text is served as is, so for a pure CRLF file `W == S`). `W` does not
//!   count the CRLF Dovecot adds after a last line that lacks one. `LIST`
//!   reports `W`. With wrong `S`/`W` values Dovecot logs "Cached message size
//!   smaller/larger than expected" and serves broken data.
//! * Dovecot assigns UIDs (and so POP3 message numbers) to new files in
//!   order of `<secs>`, then `<usecs>`, then the rest of the name as a plain
//!   byte string: [`file_name`] makes `(secs, usecs)` strictly increasing
//!   within a process.
//! * The UIDL (with `pop3_uidl_format = %f`) is the name before any
//!   `:2,<flags>` suffix, i.e. exactly `<name>` above ([`uidl_of`]).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::context;

/// The number of bytes `msg` takes on the wire: its length plus one for
/// every LF that is not preceded by CR (the `W=` value).
pub fn crlf_size(msg: &[u8]) -> usize {
    let mut prev = 0u8;
    let mut bare_lf = 0;
    for &b in msg {
        if b == b'\n' && prev != b'\r' {
            bare_lf += 1;
        }
        prev = b;
    }
    msg.len() + bare_lf
}

/// A fresh, unique Maildir file name for `msg` with `,S=` and `,W=`; later
/// calls in this process sort after earlier ones (see the module docs).
pub fn file_name(msg: &[u8]) -> String {
    static LAST_MICROS: Mutex<u128> = Mutex::new(0);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let micros = {
        let mut last = LAST_MICROS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = now.max(*last + 1);
        *last
    };
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{q}.popwire,S={},W={}",
        micros / 1_000_000,
        micros % 1_000_000,
        std::process::id(),
        msg.len(),
        crlf_size(msg)
    )
}

/// The UIDL Dovecot reports for a Maildir file (`pop3_uidl_format = %f`):
/// the name without a `:2,<flags>` suffix.
pub fn uidl_of(file_name: &str) -> &str {
    file_name
        .split_once(':')
        .map_or(file_name, |(base, _)| base)
}

/// Dovecot's ordering of Maildir file names: `<secs>`, then `.M<usecs>`,
/// then the name itself.
pub fn sort_key(name: &str) -> (u64, u64, String) {
    let digits = |s: &str| -> (u64, usize) {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        (s.get(..end).and_then(|d| d.parse().ok()).unwrap_or(0), end)
    };
    let (secs, end) = digits(name);
    let rest = name.get(end..).unwrap_or("");
    let usecs = rest.strip_prefix(".M").map_or(0, |r| digits(r).0);
    (secs, usecs, name.to_owned())
}

/// Creates `maildir` with `cur/`, `new/` and `tmp/` (and parents). With
/// `owner`, the directory, its parent (the user's home) and the three
/// subdirectories are chowned to that uid/gid (needed when the tests run as
/// root, since Dovecot then runs mail processes as `nobody`).
pub fn create(maildir: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    for sub in ["cur", "new", "tmp"] {
        let d = maildir.join(sub);
        fs::create_dir_all(&d).map_err(|e| context(e, d.display()))?;
    }
    if let Some((uid, gid)) = owner {
        let mut dirs = vec![maildir.to_path_buf()];
        if let Some(home) = maildir.parent() {
            dirs.push(home.to_path_buf());
        }
        dirs.extend(["cur", "new", "tmp"].map(|s| maildir.join(s)));
        for d in dirs {
            std::os::unix::fs::chown(&d, Some(uid), Some(gid))
                .map_err(|e| context(e, format_args!("chown {}", d.display())))?;
        }
    }
    Ok(())
}

/// Delivers `msg` into `maildir/new/` (via `tmp/` and a rename, as the
/// Maildir format requires) and returns its file name.
pub fn deliver(maildir: &Path, msg: &[u8], owner: Option<(u32, u32)>) -> io::Result<String> {
    let name = file_name(msg);
    let tmp = maildir.join("tmp").join(&name);
    let mut f = fs::File::create(&tmp).map_err(|e| context(e, tmp.display()))?;
    f.write_all(msg)?;
    f.sync_data()?;
    drop(f);
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
    }
    let new = maildir.join("new").join(&name);
    fs::rename(&tmp, &new).map_err(|e| context(e, new.display()))?;
    Ok(name)
}

/// The messages in `maildir/new/` and `maildir/cur/` as (file name,
/// contents), in Dovecot's order ([`sort_key`]). A missing Maildir has none.
pub fn read_all(maildir: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for sub in ["new", "cur"] {
        let d = maildir.join(sub);
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(context(e, d.display())),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                files.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                ));
            }
        }
    }
    files.sort_by_cached_key(|(name, _)| sort_key(uidl_of(name)));
    files
        .into_iter()
        .map(|(name, path)| {
            Ok((
                name,
                fs::read(&path).map_err(|e| context(e, path.display()))?,
            ))
        })
        .collect()
}
