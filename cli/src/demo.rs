//! `popwire demo`: an embedded POP3 server on loopback with sample mail, fetched into a Maildir
//! by the real fetch job. Needs nothing but this binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use popwire::fetch::config::{Account, AuthChoice, CredentialSource, Destination, Keep, Security};
use popwire::fetch::job::{self, FetchOptions, exit};
use popwire::proto::Secret;
use popwire::proto::server::{MemoryMaildrop, ServerOptions};

use crate::{report, serve};

fn sample(i: usize) -> Vec<u8> {
    let subjects = [
        "Welcome to popwire",
        "Your weekly report",
        "Lunch?",
        "Build #4711 passed",
        "Re: the plan",
    ];
    let subject = subjects.get(i % subjects.len()).copied().unwrap_or("Hello");
    let mut m = format!(
        "From: Demo Sender <sender{i}@example.org>\nTo: you@example.com\nSubject: {subject} ({i})\n\
         Message-ID: <demo-{i}@popwire.invalid>\nContent-Type: text/plain; charset=utf-8\n\n\
         Hello! This is sample message {i}.\n"
    );
    // The awkward bits POP3 must get right: dot lines, 8-bit text, a long line.
    m.push_str(".a line starting with a dot\n.\nUnicode: gr\u{fc}\u{df}e, \u{1f4ec}\n");
    m.push_str(&"long line ".repeat(20 + i * 3));
    m.push_str("\n-- \npopwire demo\n");
    m.into_bytes()
}

pub fn run(maildir: Option<PathBuf>, messages: usize) -> i32 {
    let work = match tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("popwire demo: cannot create a temporary directory: {e}");
            return exit::IOERR;
        }
    };
    let maildir = maildir.unwrap_or_else(|| work.join("Maildir"));
    let password = serve::random_token();
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("popwire demo: cannot listen on loopback: {e}");
            return exit::UNAVAILABLE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut drop = MemoryMaildrop::new().with_user("demo", Secret::new(password.as_bytes()));
    for i in 1..=messages {
        drop.add_message(sample(i));
    }
    drop.set_nonce_seed(serve::random_token());
    println!(
        "popwire demo: serving {messages} sample messages on 127.0.0.1:{port} (embedded server)"
    );
    std::thread::spawn(move || {
        let _ = serve::serve(listener, move || {
            let options = ServerOptions {
                implementation: Some("popwire demo".into()),
                ..Default::default()
            };
            (options, drop.clone())
        });
    });

    // Loopback only, so no TLS here; SCRAM-SHA-256 is chosen, which never sends the password.
    let account = Account {
        name: "demo".into(),
        email: "demo@localhost".into(),
        username: "demo".into(),
        credential: CredentialSource::Password(Secret::new(password.as_bytes())),
        server: "127.0.0.1".into(),
        port,
        security: Security::None,
        ca_file: None,
        auth: AuthChoice::Auto,
        keep: Keep::Delete,
        destination: Destination::Maildir(maildir.clone()),
        store: Default::default(),
        max_message_size: None,
        timeout: Duration::from_secs(10),
        poll: None,
    };
    let options = FetchOptions::new(work.join("state"));
    let out = report::Reporter::new(false, false);
    let started = Instant::now();
    let mut bar = out.progress("demo");
    let result = job::fetch_account(&account, &options, &mut |p| bar.update(p));
    bar.finish();
    match result {
        Ok(summary) => {
            out.summary(&summary);
            println!(
                "popwire demo: done in {:.0?}; messages are in {}",
                started.elapsed(),
                maildir.join("new").display()
            );
            if let Ok(entries) = std::fs::read_dir(maildir.join("new")) {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for name in names.iter().take(3) {
                    println!("  {name}");
                }
                if names.len() > 3 {
                    println!("  ... and {} more", names.len() - 3);
                }
            }
            println!(
                "Next: write ~/.config/popwire/config.toml for your account and run `popwire fetch` (see README.md)."
            );
            exit::OK
        }
        Err(e) => {
            out.error(Some("demo"), &e.to_string());
            e.exit_code()
        }
    }
}

fn tempdir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "popwire-demo-{}-{}",
        std::process::id(),
        serve::random_token().get(..8).unwrap_or("x")
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
