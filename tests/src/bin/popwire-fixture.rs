//! `popwire-fixture`: runs the test Dovecot for test suites in other
//! languages.
//!
//! ```text
//! popwire-fixture start --dir DIR   # start Dovecot detached, write DIR/env, print its path
//! popwire-fixture stop --dir DIR    # stop it and remove DIR/env
//! ```
//!
//! With `POPWIRE_DOVECOT_LISTEN=ADDR[,ADDR..]` set, Dovecot also listens on
//! those addresses (same ports), besides loopback.
//!
//! `DIR/env` is shell-sourceable (`. DIR/env`); with `POPWIRE_DOVECOT=DIR/env`
//! set, `Dovecot::shared()` in Rust tests uses that instance too. See
//! `tests/dovecot/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use popwire_tests::Dovecot;

const USAGE: &str = "usage: popwire-fixture start --dir DIR\n       popwire-fixture stop --dir DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, dir) = match args.as_slice() {
        [cmd, flag, dir] if flag == "--dir" => (cmd.as_str(), PathBuf::from(dir)),
        [cmd, dir_arg] if dir_arg.starts_with("--dir=") => (
            cmd.as_str(),
            PathBuf::from(dir_arg.trim_start_matches("--dir=")),
        ),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        "start" => Dovecot::start_detached(&dir).map(|d| {
            println!("{}", d.dir.join("env").display());
        }),
        "stop" => Dovecot::stop_dir(&dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popwire-fixture {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
