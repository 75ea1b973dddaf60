//! A throw-away certificate authority made with the `openssl` command.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dovecot::ServerCert;
use crate::util::{context, err, find_program, run};

/// Certificates for TLS tests, all PEM files in one directory.
///
/// Keys are ECDSA P-256 (fast to make, accepted by rustls, OpenSSL and
/// Dovecot). The CA certificates are v3 with `CA:TRUE`; the leaf
/// certificates have `CA:FALSE`, `extendedKeyUsage = serverAuth` and
/// subjectAltNames, so strict verifiers (webpki) accept the good one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCa {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// The test CA's certificate: the trust anchor clients should use.
    pub ca_cert: PathBuf,
    /// The test CA's private key.
    pub ca_key: PathBuf,
    /// A server certificate signed by the test CA for `localhost` with
    /// SANs `DNS:localhost`, `IP:127.0.0.1` and `IP:::1`. Dovecot uses it.
    pub server_cert: PathBuf,
    /// Key of [`TestCa::server_cert`].
    pub server_key: PathBuf,
    /// A second, unrelated CA: trusting only it must make verification of
    /// `server_cert` fail.
    pub wrong_ca_cert: PathBuf,
    /// Key of [`TestCa::wrong_ca_cert`].
    pub wrong_ca_key: PathBuf,
    /// Like `server_cert` (same names, signed by the test CA) but valid only
    /// in January 2020: expired.
    pub expired_cert: PathBuf,
    /// Key of [`TestCa::expired_cert`].
    pub expired_key: PathBuf,
    /// A self-signed certificate with the same names as `server_cert`.
    pub self_signed_cert: PathBuf,
    /// Key of [`TestCa::self_signed_cert`].
    pub self_signed_key: PathBuf,
    /// Signed by the test CA but only for `DNS:wrong.example`: a host-name
    /// mismatch for clients connecting to `localhost`/`127.0.0.1`.
    pub wrong_host_cert: PathBuf,
    /// Key of [`TestCa::wrong_host_cert`].
    pub wrong_host_key: PathBuf,
}

const OPENSSL_CNF: &str = r#"# Written by popwire-tests (src/ca.rs); used instead of the system openssl.cnf.
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = popwire-test

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_wrong_host ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ self_signed ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash

# `openssl ca` is only used for the expired certificate (it can backdate).
[ ca ]
default_ca = test_ca
[ test_ca ]
database = @DB@/index.txt
new_certs_dir = @DB@
rand_serial = yes
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
"#;

/// Leaf certificates are valid this long (the fixture may run for a while).
const LEAF_DAYS: &str = "825";
const CA_DAYS: &str = "3650";
/// [`TestCa::cached`] makes a new CA once the old one is this many days old.
pub const CACHE_DAYS: u64 = 700;

impl TestCa {
    /// The paths of a CA in `dir` (as made by [`TestCa::generate`]); nothing
    /// is checked or created.
    pub fn at(dir: &Path) -> TestCa {
        let f = |name: &str| dir.join(name);
        TestCa {
            dir: dir.to_path_buf(),
            ca_cert: f("ca.pem"),
            ca_key: f("ca.key"),
            server_cert: f("server.pem"),
            server_key: f("server.key"),
            wrong_ca_cert: f("wrong-ca.pem"),
            wrong_ca_key: f("wrong-ca.key"),
            expired_cert: f("expired.pem"),
            expired_key: f("expired.key"),
            self_signed_cert: f("self-signed.pem"),
            self_signed_key: f("self-signed.key"),
            wrong_host_cert: f("wrong-host.pem"),
            wrong_host_key: f("wrong-host.key"),
        }
    }

    /// Opens a CA that [`TestCa::generate`] made earlier in `dir`.
    pub fn open(dir: &Path) -> io::Result<TestCa> {
        let ca = TestCa::at(dir);
        for p in ca.files() {
            if !p.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("test CA file {} is missing", p.display()),
                ));
            }
        }
        Ok(ca)
    }

    /// Makes a fresh CA and all certificates in `dir` (created if missing;
    /// existing files are overwritten). Takes well under a second.
    pub fn generate(dir: &Path) -> io::Result<TestCa> {
        std::fs::create_dir_all(dir).map_err(|e| context(e, dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let ca = TestCa::at(&dir);
        let openssl = find_program(
            "openssl",
            "POPWIRE_OPENSSL",
            &["/usr/bin", "/usr/local/bin"],
        )?;
        let db = dir.join("ca-db");
        std::fs::create_dir_all(&db)?;
        std::fs::write(db.join("index.txt"), b"")?;
        let cnf = dir.join("openssl.cnf");
        let db_str = db
            .to_str()
            .ok_or_else(|| err("CA directory path is not UTF-8"))?;
        std::fs::write(&cnf, OPENSSL_CNF.replace("@DB@", db_str))?;

        let tool = Tool {
            openssl: &openssl,
            cnf: &cnf,
        };

        tool.self_signed(
            &ca.ca_cert,
            &ca.ca_key,
            "/CN=popwire test CA",
            "v3_ca",
            CA_DAYS,
        )
        .map_err(making("the test CA"))?;
        tool.self_signed(
            &ca.wrong_ca_cert,
            &ca.wrong_ca_key,
            "/CN=popwire wrong CA",
            "v3_ca",
            CA_DAYS,
        )
        .map_err(making("the wrong CA"))?;
        tool.self_signed(
            &ca.self_signed_cert,
            &ca.self_signed_key,
            "/CN=localhost",
            "self_signed",
            LEAF_DAYS,
        )
        .map_err(making("the self-signed certificate"))?;

        let csr = dir.join("leaf.csr");
        tool.csr(&csr, &ca.server_key, "/CN=localhost")
            .map_err(making("the server key"))?;
        tool.sign(&ca, &csr, &ca.server_cert, "server_localhost")
            .map_err(making("the server certificate"))?;

        tool.csr(&csr, &ca.wrong_host_key, "/CN=wrong.example")
            .map_err(making("the wrong-host key"))?;
        tool.sign(&ca, &csr, &ca.wrong_host_cert, "server_wrong_host")
            .map_err(making("the wrong-host certificate"))?;

        tool.csr(&csr, &ca.expired_key, "/CN=localhost")
            .map_err(making("the expired key"))?;
        run(Command::new(tool.openssl)
            .args(["ca", "-batch", "-notext", "-preserveDN", "-config"])
            .arg(&cnf)
            .args([
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200131000000Z",
            ])
            .args(["-extensions", "server_localhost", "-extfile"])
            .arg(&cnf)
            .arg("-cert")
            .arg(&ca.ca_cert)
            .arg("-keyfile")
            .arg(&ca.ca_key)
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&ca.expired_cert))
        .map_err(making("the expired certificate"))?;
        std::fs::remove_file(&csr)?;
        Ok(ca)
    }

    /// Opens the CA that an earlier call made in `dir`, or makes one there when it is missing,
    /// incomplete or older than [`CACHE_DAYS`] (its leaf certificates are valid for 825 days).
    /// A fresh CA is made in a sibling directory and renamed into place, so test processes
    /// running at the same time never see half of one. For tests that need certificates but no
    /// Dovecot, with `dir` under the target directory (e.g. `CARGO_TARGET_TMPDIR`).
    pub fn cached(dir: &Path) -> io::Result<TestCa> {
        let fresh = |ca: &TestCa| {
            std::fs::metadata(&ca.server_cert)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() < CACHE_DAYS * 86_400)
        };
        if let Ok(ca) = TestCa::open(dir) {
            if fresh(&ca) {
                return Ok(ca);
            }
            std::fs::remove_dir_all(dir).map_err(|e| context(e, dir.display()))?;
        }
        let name = dir
            .file_name()
            .ok_or_else(|| err(format!("{} has no file name", dir.display())))?;
        let mut staging_name = name.to_os_string();
        staging_name.push(format!(".new-{}", std::process::id()));
        let staging = dir.with_file_name(staging_name);
        let _ = std::fs::remove_dir_all(&staging);
        let made = TestCa::generate(&staging)?;
        match std::fs::rename(&made.dir, dir) {
            Ok(()) => {}
            // Another process won the race: use its CA.
            Err(_) if TestCa::open(dir).is_ok() => {
                let _ = std::fs::remove_dir_all(&made.dir);
            }
            Err(e) => return Err(context(e, format_args!("renaming into {}", dir.display()))),
        }
        TestCa::open(&std::fs::canonicalize(dir)?)
    }

    /// The certificate and key files a server presenting `cert` uses.
    pub fn server_files(&self, cert: ServerCert) -> (&Path, &Path) {
        let (c, k) = match cert {
            ServerCert::Good => (&self.server_cert, &self.server_key),
            ServerCert::Expired => (&self.expired_cert, &self.expired_key),
            ServerCert::SelfSigned => (&self.self_signed_cert, &self.self_signed_key),
            ServerCert::WrongHost => (&self.wrong_host_cert, &self.wrong_host_key),
        };
        (c.as_path(), k.as_path())
    }

    /// Every certificate and key file.
    pub fn files(&self) -> [&Path; 12] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.wrong_ca_cert,
            &self.wrong_ca_key,
            &self.expired_cert,
            &self.expired_key,
            &self.self_signed_cert,
            &self.self_signed_key,
            &self.wrong_host_cert,
            &self.wrong_host_key,
        ]
        .map(PathBuf::as_path)
    }
}

/// Adds "making WHAT" to an error.
fn making(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| context(e, format_args!("making {what}"))
}

struct Tool<'a> {
    openssl: &'a Path,
    cnf: &'a Path,
}

impl Tool<'_> {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new(self.openssl);
        c.arg(sub).arg("-config").arg(self.cnf);
        c
    }

    fn new_key_args(c: &mut Command, key: &Path) {
        c.args([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
        ])
        .arg(key);
    }

    fn self_signed(
        &self,
        cert: &Path,
        key: &Path,
        subj: &str,
        ext: &str,
        days: &str,
    ) -> io::Result<()> {
        let mut c = self.cmd("req");
        c.args([
            "-x509",
            "-new",
            "-sha256",
            "-days",
            days,
            "-subj",
            subj,
            "-extensions",
            ext,
        ]);
        Self::new_key_args(&mut c, key);
        c.arg("-out").arg(cert);
        run(&mut c).map(drop)
    }

    fn csr(&self, csr: &Path, key: &Path, subj: &str) -> io::Result<()> {
        let mut c = self.cmd("req");
        c.args(["-new", "-sha256", "-subj", subj]);
        Self::new_key_args(&mut c, key);
        c.arg("-out").arg(csr);
        run(&mut c).map(drop)
    }

    fn sign(&self, ca: &TestCa, csr: &Path, cert: &Path, ext: &str) -> io::Result<()> {
        run(Command::new(self.openssl)
            .args([
                "x509",
                "-req",
                "-sha256",
                "-days",
                LEAF_DAYS,
                "-set_serial",
                &serial(),
            ])
            .arg("-in")
            .arg(csr)
            .arg("-CA")
            .arg(&ca.ca_cert)
            .arg("-CAkey")
            .arg(&ca.ca_key)
            .arg("-extfile")
            .arg(self.cnf)
            .args(["-extensions", ext])
            .arg("-out")
            .arg(cert))
        .map(drop)
    }
}

/// A fresh positive serial number (hex with 0x prefix) for `-set_serial`.
fn serial() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("0x{:x}{:04x}{n:04x}", nanos, std::process::id() & 0xffff)
}
