//! A full disk against a real Dovecot: the Maildir lives on a 1 MiB tmpfs the test mounts, the
//! mailbox is 3 MB. popwire must stop with a clear "disk full" error and exit code 75 (try again
//! later), delete nothing that was not stored, leave only whole messages; and once there is room,
//! fetch the rest with every message stored exactly once.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says so and does nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use popwire_tests::{Dovecot, corpus};

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Self(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {} failed", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn run(config: &Path, state: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_popwire"))
        .args(["fetch", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .env("POPWIRE_TEST_PW", &Dovecot::shared().password)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stored(maildir: &Path) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(maildir.join(sub)).unwrap() {
            all.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    all.sort();
    all
}

#[test]
fn disk_full_deletes_nothing_unstored_and_the_retry_completes() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !is_root {
        eprintln!("disk_full: skipped, mounting a tmpfs needs root");
        return;
    }
    let d = Dovecot::shared();
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("small"), "1M") else {
        panic!("root, but cannot mount a tmpfs: the test cannot run");
    };
    let maildir = mount.0.join("Maildir");
    let state = dir.path().join("state");
    let user = d.new_user("diskfull");
    let originals = corpus::sized(30, 100_000, 7);
    d.seed(&user, &originals).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[accounts.full]\nemail = \"{user}@example.com\"\nusername = \"{user}\"\n\
             server = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             password_env = \"POPWIRE_TEST_PW\"\nmaildir = \"{}\"\n",
            d.plain_port,
            maildir.display()
        ),
    )
    .unwrap();

    let (code, stderr) = run(&config, &state);
    assert_eq!(code, 75, "expected EX_TEMPFAIL; stderr: {stderr}");
    assert!(
        stderr.contains("disk full") && stderr.contains(&*maildir.to_string_lossy()),
        "the error should say the disk is full and where: {stderr}"
    );
    let partial = stored(&maildir);
    eprintln!(
        "disk full after {} of {} messages; popwire said: {}",
        partial.len(),
        originals.len(),
        stderr.trim()
    );
    assert!(partial.len() < originals.len(), "1 MiB cannot hold 3 MB");
    let expected: Vec<Vec<u8>> = {
        let mut v = originals.clone();
        v.sort();
        v
    };
    for message in &partial {
        assert!(
            expected.binary_search(message).is_ok(),
            "a stored message is not whole"
        );
    }
    // Nothing is deleted in a session that failed: the server still has everything.
    assert_eq!(d.server_messages(&user).unwrap().len(), originals.len());

    mount.resize("16M");
    let (code, stderr) = run(&config, &state);
    assert_eq!(code, 0, "retry failed: {stderr}");
    assert_eq!(stored(&maildir), expected, "every message exactly once");
    assert!(d.server_messages(&user).unwrap().is_empty());
}
