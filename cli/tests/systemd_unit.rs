//! `contrib/popwire-watch.service`: `systemd-analyze verify` accepts it (with ExecStart pointed at
//! the binary under test), and its offline security exposure stays low. Needs no running
//! systemd; `tests/install-deps.sh systemd` installs the command.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Command;

fn unit_under_test(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/popwire-watch.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/popwire watch "));
    for key in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=popwire",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.contains(key), "the unit lacks {key}");
    }
    let path = dir.join("popwire-watch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/popwire", env!("CARGO_BIN_EXE_popwire")),
    )
    .unwrap();
    path
}

fn systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (run tests/install-deps.sh systemd); the unit was not verified"
        );
    }
    found
}

#[test]
fn the_unit_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    if !systemd_analyze() {
        return;
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("popwire-watch.service"),
        "warnings about the unit: {stderr}"
    );
}

#[test]
fn the_unit_is_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    if !systemd_analyze() {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for popwire-watch.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    // 0 is fully locked down, 10 not at all; systemd calls up to 2 "OK".
    assert!(level <= 2.0, "exposure {level}: {text}");
}
