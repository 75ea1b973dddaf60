//! The server's command parser: never panics, and decode → encode → decode is the identity.
//!
//! Whatever `Command::parse` accepts and `Command::encode` agrees to write must parse back to
//! the same command, and the encoded line must be a single CRLF-terminated line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popwire::proto::codec::Command;

fuzz_target!(|line: &[u8]| {
    let Ok(command) = Command::parse(line) else {
        return;
    };
    let _ = command.name();
    let mut wire = Vec::new();
    if command.encode(&mut wire).is_err() {
        assert!(wire.is_empty(), "a refused command left bytes behind");
        return;
    }
    let body = wire
        .strip_suffix(b"\r\n")
        .expect("an encoded command ends with CRLF");
    assert!(
        !body.contains(&b'\n') && !body.contains(&b'\r'),
        "an encoded command spans lines"
    );
    assert_eq!(
        Command::parse(body),
        Ok(command),
        "decode -> encode -> decode changed the command"
    );
});
