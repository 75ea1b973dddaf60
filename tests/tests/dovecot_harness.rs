//! Self-tests of the Dovecot test harness, using only std and the `openssl`
//! command (no popwire, no rustls).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use popwire_tests::corpus::{self, wire_form};
use popwire_tests::maildir::crlf_size;
use popwire_tests::raw::Session;
use popwire_tests::{Dovecot, ServerCert};

fn dovecot() -> &'static Dovecot {
    Dovecot::shared()
}

fn login(d: &Dovecot, user: &str) -> Session {
    let mut s = Session::connect(d.plain_addr().unwrap()).unwrap();
    s.login(user, &d.password).unwrap();
    s
}

fn scratch_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!("pwt-{name}-{}-{nanos:x}", std::process::id()))
}

/// Runs `openssl s_client -quiet ARGS`, sending QUIT; returns (success, stdout+stderr).
fn s_client(args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-quiet")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    // Dovecot closes the connection after QUIT; s_client then exits.
    let _ = child.stdin.take().unwrap().write_all(b"QUIT\r\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "openssl s_client {args:?} hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl_md5(data: &[u8], hmac_key: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-md5"]);
    if let Some(k) = hmac_key {
        cmd.args(["-hmac", k]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let vals: Vec<u32> = s
        .bytes()
        .filter(|&b| b != b'=')
        .map(|b| B64.iter().position(|&c| c == b).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn plain_port_greets_with_apop_timestamp() {
    let s = Session::connect(dovecot().plain_addr().unwrap()).unwrap();
    assert!(s.greeting.starts_with("+OK"), "{}", s.greeting);
    assert!(
        s.greeting.contains('<') && s.greeting.ends_with('>'),
        "no APOP timestamp: {}",
        s.greeting
    );
    s.quit().unwrap();
}

#[test]
fn ipv6_listener_greets() {
    let d = dovecot();
    let Some(h6) = &d.host6 else {
        // Said loudly: a machine without IPv6 loopback must not pass this test in silence. Written
        // to the stderr handle, which the test harness does not capture (eprintln! it would).
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: this machine has no IPv6 loopback (::1), so IPv6 is not tested here\n",
        );
        return;
    };
    let s = Session::connect((h6.as_str(), d.plain_port)).unwrap();
    assert!(s.greeting.starts_with("+OK"));
}

#[test]
fn capa_lists_stls_pipelining_and_sasl() {
    let mut s = Session::connect(dovecot().plain_addr().unwrap()).unwrap();
    let (status, body) = s.multiline("CAPA").unwrap();
    assert!(status.starts_with("+OK"));
    let capa = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = capa.lines().collect();
    for want in [
        "STLS",
        "PIPELINING",
        "TOP",
        "UIDL",
        "USER",
        "RESP-CODES",
        "AUTH-RESP-CODE",
    ] {
        assert!(lines.contains(&want), "{want} missing in {lines:?}");
    }
    let sasl = lines
        .iter()
        .find(|l| l.starts_with("SASL "))
        .expect("SASL line");
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        assert!(
            sasl.split(' ').any(|m| m == mech),
            "{mech} missing in {sasl}"
        );
    }
}

#[test]
fn user_pass_works_and_stat_counts_seeded_messages() {
    let d = dovecot();
    let user = d.new_user("stat");
    let msgs = corpus::sized(3, 2000, 42);
    let uidls = d.seed_with_uidls(&user, &msgs).unwrap();
    let mut s = login(d, &user);
    let total: usize = msgs.iter().map(|m| crlf_size(m)).sum();
    assert_eq!(s.stat().unwrap(), (3, total as u64));
    assert_eq!(s.uidls().unwrap(), uidls);
    s.quit().unwrap();
    // UIDLs are stable across sessions (and the files moved to cur/).
    let mut s = login(d, &user);
    assert_eq!(s.uidls().unwrap(), uidls);
    s.quit().unwrap();
    assert_eq!(d.server_uidls(&user).unwrap(), uidls);
}

#[test]
fn unknown_user_has_an_empty_mailbox() {
    let d = dovecot();
    let mut s = login(d, &format!("never-seeded-{}", std::process::id()));
    assert_eq!(s.stat().unwrap(), (0, 0));
}

#[test]
fn wrong_password_fails_fast() {
    let d = dovecot();
    let user = d.new_user("wrongpw");
    let mut s = Session::connect(d.plain_addr().unwrap()).unwrap();
    for _ in 0..3 {
        assert!(
            s.command(&format!("USER {user}"))
                .unwrap()
                .starts_with("+OK")
        );
        let t = Instant::now();
        let r = s.command("PASS not-the-password").unwrap();
        assert!(r.starts_with("-ERR"), "{r}");
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "failure took {:?}",
            t.elapsed()
        );
    }
    s.login(&user, &d.password).unwrap();
    assert_eq!(s.stat().unwrap(), (0, 0));
}

#[test]
fn cram_md5_and_apop_work() {
    let d = dovecot();
    let user = d.new_user("cram");
    let mut s = Session::connect(d.plain_addr().unwrap()).unwrap();
    let r = s.command("AUTH CRAM-MD5").unwrap();
    let challenge = b64_decode(r.strip_prefix("+ ").expect(&r));
    let digest = openssl_md5(&challenge, Some(&d.password));
    let r = s
        .command(&b64_encode(format!("{user} {digest}").as_bytes()))
        .unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    s.quit().unwrap();

    let mut s = Session::connect(d.plain_addr().unwrap()).unwrap();
    let ts = &s.greeting[s.greeting.find('<').unwrap()..];
    let digest = openssl_md5(format!("{ts}{}", d.password).as_bytes(), None);
    let r = s.command(&format!("APOP {user} {digest}")).unwrap();
    assert!(r.starts_with("+OK"), "{r}");
    let r = s.command(&format!("APOP {user} {}", "0".repeat(32)));
    // Already logged in: any answer is fine, the session must still work.
    drop(r);
}

#[test]
fn tricky_corpus_round_trips_byte_for_byte() {
    let d = dovecot();
    let user = d.new_user("tricky");
    let msgs = corpus::tricky_messages();
    d.seed(&user, &msgs).unwrap();
    let mut s = login(d, &user);
    let (status, list) = s.multiline("LIST").unwrap();
    assert!(status.starts_with("+OK"));
    let sizes: Vec<usize> = String::from_utf8(list)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(sizes, msgs.iter().map(|m| crlf_size(m)).collect::<Vec<_>>());
    for (i, m) in msgs.iter().enumerate() {
        let got = s.retr(i + 1).unwrap();
        assert!(
            got == wire_form(m),
            "message {i} differs (got {} bytes, want {})",
            got.len(),
            wire_form(m).len()
        );
    }
    assert!(s.command("DELE 1").unwrap().starts_with("+OK"));
    assert!(s.quit().unwrap().starts_with("+OK"));
    assert_eq!(d.server_messages(&user).unwrap(), msgs[1..].to_vec());
    assert!(
        !d.log_tail(200).contains("size mismatch") && !d.log_tail(200).contains("than expected")
    );
}

#[test]
fn many_concurrent_sessions() {
    let d = dovecot();
    let user = d.new_user("concurrent");
    let msgs = corpus::sized(2, 500, 1);
    d.seed(&user, &msgs).unwrap();
    let expected = msgs.iter().map(|m| crlf_size(m) as u64).sum::<u64>();
    let threads: Vec<_> = (0..40)
        .map(|_| {
            let user = user.clone();
            std::thread::spawn(move || {
                let mut s = login(dovecot(), &user);
                let stat = s.stat().unwrap();
                std::thread::sleep(Duration::from_millis(200));
                s.quit().unwrap();
                stat
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (2, expected));
    }
}

fn tls_args<'a>(port: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec![
        "-connect",
        port,
        "-CAfile",
        ca,
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
    ]
}

#[test]
fn implicit_tls_verifies_with_the_ca_and_not_with_the_wrong_ca() {
    let d = dovecot();
    let addr = format!("127.0.0.1:{}", d.tls_port);
    let ca = d.ca_file.to_str().unwrap();
    let (ok, out) = s_client(&tls_args(&addr, ca));
    assert!(
        ok && out.contains("+OK popwire test Dovecot ready"),
        "{out}"
    );
    let wrong = d.ca().wrong_ca_cert;
    let (ok, out) = s_client(&tls_args(&addr, wrong.to_str().unwrap()));
    assert!(!ok, "verification with the wrong CA succeeded: {out}");
}

#[test]
fn stls_upgrade_verifies() {
    let d = dovecot();
    let addr = format!("127.0.0.1:{}", d.plain_port);
    let mut args = tls_args(&addr, d.ca_file.to_str().unwrap());
    args.extend(["-starttls", "pop3"]);
    let (ok, out) = s_client(&args);
    assert!(ok && out.contains("+OK Logging out"), "{out}");
}

#[test]
fn private_instance_with_expired_cert_starts_and_stops() {
    let dir = scratch_dir("exp");
    let d = Dovecot::start_with(&dir, ServerCert::Expired).unwrap();
    let addr = format!("127.0.0.1:{}", d.tls_port);
    let (ok, out) = s_client(&tls_args(&addr, d.ca_file.to_str().unwrap()));
    assert!(!ok && out.contains("expired"), "{out}");
    let plain = d.plain_addr().unwrap();
    d.stop().unwrap();
    assert!(std::net::TcpStream::connect(plain).is_err());
    assert!(!Path::new(&format!("/proc/{}", d.pid)).exists());
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fixture_binary_start_env_file_and_stop() {
    let dir = scratch_dir("fix");
    let exe = env!("CARGO_BIN_EXE_popwire-fixture");
    let out = Command::new(exe)
        .args(["start", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(env, std::fs::canonicalize(&dir).unwrap().join("env"));

    let d = Dovecot::from_env_file(&env).unwrap();
    let user = d.new_user("fixture");
    d.seed(&user, &corpus::sized(2, 300, 3)).unwrap();
    let mut s = login(&d, &user);
    assert_eq!(s.stat().unwrap().0, 2);
    s.quit().unwrap();
    // A second `start` in the same directory is refused.
    assert!(
        !Command::new(exe)
            .args(["start", "--dir"])
            .arg(&dir)
            .output()
            .unwrap()
            .status
            .success()
    );

    let pid = d.pid;
    drop(d); // an env-file instance is not stopped by Drop
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let out = Command::new(exe)
        .args(["stop", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.exists());
    assert!(Dovecot::from_env_file(&env).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
