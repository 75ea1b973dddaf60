//! Running the `popwire` command from this crate's tests: finding (building) the binary, and
//! measuring a child's peak memory.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::{context, err};

/// Environment variable naming a `popwire` binary to test instead of building one.
pub const BIN_ENV_VAR: &str = "POPWIRE_BIN";

/// The `popwire` command-line binary.
///
/// `env!("CARGO_BIN_EXE_popwire")` only exists in the `popwire` package's own tests, so this
/// crate builds the binary itself, once per process, with `cargo build -p popwire-cli --bin
/// popwire` into the same target directory and profile as the running test (up to date after
/// `cargo test --workspace`, so then it takes a moment). Set `POPWIRE_BIN` to test another
/// binary.
pub fn popwire_binary() -> io::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| e.to_string()))
        .clone()
        .map_err(err)
}

fn build() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BIN_ENV_VAR) {
        return Ok(PathBuf::from(path));
    }
    // A test executable lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).ok_or_else(|| {
        err(format!(
            "cannot find the target directory from {}",
            exe.display()
        ))
    })?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| err("the profile directory has no parent"))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| err("the tests crate has no parent directory"))?;
    let mut build = Command::new(&cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "popwire-cli",
            "--bin",
            "popwire",
            "--profile",
        ])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace)
        .stdin(Stdio::null());
    // Cargo gives a running test variables describing the test's own package. Passed on, some
    // reach build scripts that track them (ring's tracks CARGO_MANIFEST_DIR), and this build and
    // the next ordinary one would rebuild each other's dependencies every time.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let set_by_cargo_for_the_test = [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&name.as_ref())
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo_for_the_test {
            build.env_remove(&key);
        }
    }
    let out = build
        .output()
        .map_err(|e| context(e, "running cargo to build the popwire binary"))?;
    if !out.status.success() {
        return Err(err(format!(
            "cargo build -p popwire-cli --bin popwire failed (or set {BIN_ENV_VAR}): {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let bin = profile_dir.join("popwire");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(err(format!(
            "built popwire but {} is missing (set {BIN_ENV_VAR})",
            bin.display()
        )))
    }
}

/// Runs `command` to completion (stdin closed, output captured) and returns its output and its
/// peak resident set size in KiB.
///
/// The peak is measured by GNU time (`/usr/bin/time -f %M`, package `time`) when installed,
/// else by watching `VmHWM` in `/proc/<pid>/status` every few milliseconds (which can miss a
/// peak in the last moments of a process; a test should keep such a child waiting, e.g. by
/// stalling after flooding it, so that a buffering bug is caught while it holds the memory).
pub fn run_with_peak_rss(command: &mut Command) -> io::Result<(Output, u64)> {
    let gnu_time = Path::new("/usr/bin/time");
    if gnu_time.is_file() {
        by_gnu_time(gnu_time, command)
    } else {
        by_polling(command)
    }
}

/// The peak as GNU time reports it (`%M`, KiB).
fn by_gnu_time(gnu_time: &Path, command: &Command) -> io::Result<(Output, u64)> {
    static N: AtomicU64 = AtomicU64::new(0);
    let report = std::env::temp_dir().join(format!(
        "popwire-rss-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut timed = Command::new(gnu_time);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => timed.env(key, v),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let out = timed.stdin(Stdio::null()).output()?;
    let text = std::fs::read_to_string(&report).map_err(|e| context(e, report.display()))?;
    let _ = std::fs::remove_file(&report);
    // GNU time prints "Command exited with non-zero status N" before the figure.
    let kib = text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .ok_or_else(|| err(format!("GNU time printed {text:?}")))?;
    Ok((out, kib))
}

/// The peak as `VmHWM` in `/proc/<pid>/status` shows it while the child runs.
fn by_polling(command: &mut Command) -> io::Result<(Output, u64)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = 0;
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_all = |pipe: Option<Box<dyn io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = read_all(stdout.map(|p| Box::new(p) as Box<dyn io::Read + Send>));
    let err_thread = read_all(stderr.map(|p| Box::new(p) as Box<dyn io::Read + Send>));
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            peak = peak.max(vm_hwm(&text).unwrap_or(0));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok((
        Output {
            status,
            stdout,
            stderr,
        },
        peak,
    ))
}

/// `VmHWM` (peak RSS) in KiB from the text of `/proc/<pid>/status`.
fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_hwm() {
        assert_eq!(
            vm_hwm("Name:\tx\nVmHWM:\t  1234 kB\nVmRSS: 1 kB\n"),
            Some(1234)
        );
        assert_eq!(vm_hwm("Name:\tx\n"), None);
    }

    /// `sh` holding 32 MiB in a variable for a moment.
    fn allocating_child() -> Command {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "x=$(head -c 33554432 /dev/zero | tr '\\0' a); sleep 0.2; echo ${#x}",
        ]);
        c
    }

    #[test]
    fn measures_a_child_that_allocates_both_ways() {
        let (out, kib) = by_polling(&mut allocating_child()).unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "33554432");
        assert!(kib > 32 * 1024, "peak {kib} KiB by polling");
        let gnu_time = Path::new("/usr/bin/time");
        if gnu_time.is_file() {
            let (out, kib) = by_gnu_time(gnu_time, &allocating_child()).unwrap();
            assert!(out.status.success(), "{out:?}");
            assert!(kib > 32 * 1024, "peak {kib} KiB by GNU time");
        }
    }
}
