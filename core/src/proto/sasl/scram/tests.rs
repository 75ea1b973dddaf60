//! SCRAM tests: the RFC exchanges byte for byte, client/server round trips, and a hostile
//! server.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::proto::Secret;
use crate::proto::sasl::{SaslClient, SaslCredentials};

/// RFC 5802 §5 exchange.
mod rfc5802 {
    pub const NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
    pub const SERVER_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
    pub const SALT: &str = "QSXCR+Q6sek8bf92";
    pub const CLIENT_FIRST: &str = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    pub const SERVER_FIRST: &str =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    pub const CLIENT_FINAL: &str =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    pub const SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
}

/// RFC 7677 §3 exchange.
mod rfc7677 {
    pub const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    pub const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    pub const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    pub const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pub const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
}

fn client(mechanism: Mechanism, password: &str, nonce: &str) -> SaslClient {
    client_as(mechanism, "user", None, password, nonce)
}

fn client_as(
    mechanism: Mechanism,
    user: &str,
    authzid: Option<&str>,
    password: &str,
    nonce: &str,
) -> SaslClient {
    let secret = Secret::new(password);
    let creds = SaslCredentials {
        authcid: user,
        authzid,
        secret: &secret,
        host: None,
        port: None,
    };
    SaslClient::new(mechanism, &creds, nonce).unwrap()
}

fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap()
}

#[test]
fn rfc5802_client_exchange() {
    use rfc5802::*;
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    assert_eq!(text(&c.initial_response().unwrap()), CLIENT_FIRST);
    assert_eq!(
        text(&c.respond(SERVER_FIRST.as_bytes()).unwrap()),
        CLIENT_FINAL
    );
    assert_eq!(c.finish(), Err(SaslError::MissingServerSignature));
    assert_eq!(c.respond(SERVER_FINAL.as_bytes()).unwrap().as_slice(), b"");
    assert_eq!(c.finish(), Ok(()));
}

#[test]
fn rfc7677_client_exchange() {
    use rfc7677::*;
    let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
    assert_eq!(text(&c.initial_response().unwrap()), CLIENT_FIRST);
    assert_eq!(
        text(&c.respond(SERVER_FIRST.as_bytes()).unwrap()),
        CLIENT_FINAL
    );
    assert_eq!(c.respond(SERVER_FINAL.as_bytes()).unwrap().as_slice(), b"");
    assert_eq!(c.finish(), Ok(()));
    // Nothing more is expected, and a surplus challenge is not silently accepted.
    assert_eq!(c.respond(b"v=again"), Err(SaslError::UnexpectedChallenge));
    assert_eq!(c.finish(), Err(SaslError::MissingServerSignature));
}

#[test]
fn rfc_server_exchanges() {
    for (mechanism, nonce, salt, cf, sf, cfin, sfin) in [
        (
            Mechanism::ScramSha1,
            rfc5802::SERVER_NONCE,
            rfc5802::SALT,
            rfc5802::CLIENT_FIRST,
            rfc5802::SERVER_FIRST,
            rfc5802::CLIENT_FINAL,
            rfc5802::SERVER_FINAL,
        ),
        (
            Mechanism::ScramSha256,
            rfc7677::SERVER_NONCE,
            rfc7677::SALT,
            rfc7677::CLIENT_FIRST,
            rfc7677::SERVER_FIRST,
            rfc7677::CLIENT_FINAL,
            rfc7677::SERVER_FINAL,
        ),
    ] {
        let mut s = ScramServer::new(mechanism, nonce).unwrap();
        assert_eq!(s.client_first(cf.as_bytes()).unwrap(), "user");
        assert_eq!(s.authzid(), None);
        let salt = b64_decode(salt).unwrap();
        let server_first = s.server_first(&Secret::new("pencil"), &salt, 4096).unwrap();
        assert_eq!(text(&server_first), sf);
        assert_eq!(text(&s.client_final(cfin.as_bytes()).unwrap()), sfin);
        assert!(format!("{s:?}").contains("done"));
    }
}

/// Runs a whole exchange; returns the client's `finish` result or the first error.
fn round_trip(
    mechanism: Mechanism,
    user: &str,
    authzid: Option<&str>,
    client_password: &str,
    server_password: &str,
) -> Result<(), SaslError> {
    let mut c = client_as(
        mechanism,
        user,
        authzid,
        client_password,
        "Client-Nonce-0123456789",
    );
    let mut s = ScramServer::new(mechanism, "Server-Nonce-ABCDEFGHIJ").unwrap();
    let name = s.client_first(&c.initial_response().unwrap())?;
    assert_eq!(name, user);
    assert_eq!(s.authzid(), authzid);
    let server_first = s.server_first(&Secret::new(server_password), b"NaCl and pepper", 4096)?;
    let client_final = c.respond(&server_first)?;
    let server_final = s.client_final(&client_final)?;
    assert_eq!(c.respond(&server_final)?.as_slice(), b"");
    c.finish()
}

#[test]
fn client_server_round_trips() {
    for m in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
        assert_eq!(round_trip(m, "user", None, "pencil", "pencil"), Ok(()));
        assert_eq!(
            round_trip(m, "we,ird=name", Some("ad,min"), "pässwörd", "pässwörd"),
            Ok(())
        );
        assert_eq!(
            round_trip(m, "user", None, "pencil", "crayon"),
            Err(SaslError::AuthenticationFailed)
        );
    }
}

#[test]
fn mismatched_hashes_fail() {
    let mut c = client(Mechanism::ScramSha1, "pencil", "Client-Nonce-0123456789");
    let mut s = ScramServer::new(Mechanism::ScramSha256, "Server-Nonce-ABCDEFGHIJ").unwrap();
    s.client_first(&c.initial_response().unwrap()).unwrap();
    let sf = s
        .server_first(&Secret::new("pencil"), b"salt", 4096)
        .unwrap();
    let cf = c.respond(&sf).unwrap();
    assert!(matches!(
        s.client_final(&cf),
        Err(SaslError::MalformedResponse(_))
    ));
}

#[test]
fn tampered_server_signature_is_refused() {
    use rfc5802::*;
    let mut tampered = String::from(SERVER_FINAL);
    tampered.replace_range(2..3, "s");
    for bad in [tampered.as_str(), "v=AAAA", "v=not base64!", "x=1"] {
        let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
        c.initial_response().unwrap();
        c.respond(SERVER_FIRST.as_bytes()).unwrap();
        let err = c.respond(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::ServerSignatureMismatch | SaslError::MalformedChallenge(_)
            ),
            "{bad}: {err:?}"
        );
        assert_eq!(c.finish(), Err(SaslError::MissingServerSignature));
    }
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    c.respond(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        c.respond(tampered.as_bytes()),
        Err(SaslError::ServerSignatureMismatch)
    );
}

#[test]
fn server_error_is_reported() {
    use rfc5802::*;
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    c.respond(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        c.respond(b"e=invalid-proof"),
        Err(SaslError::ServerReported("invalid-proof".into()))
    );
}

#[test]
fn server_nonce_must_extend_client_nonce() {
    use rfc5802::NONCE;
    for bad in [
        "r=someone-elses-nonce-entirely,s=QSXCR+Q6sek8bf92,i=4096",
        // Exactly our nonce: the server added nothing.
        "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",
        // Our nonce, but not as a prefix.
        "r=Xfyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",
    ] {
        let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
        c.initial_response().unwrap();
        assert_eq!(
            c.respond(bad.as_bytes()),
            Err(SaslError::NonceMismatch),
            "{bad}"
        );
    }
}

#[test]
fn iteration_count_is_capped() {
    use rfc5802::NONCE;
    let server_first = |i: &str| format!("r={NONCE}srv,s=QSXCR+Q6sek8bf92,i={i}");
    let max = MAX_SCRAM_ITERATIONS;
    for (i, count) in [("0", 0), ("1000001", 1_000_001), ("4294967295", u32::MAX)] {
        let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
        assert_eq!(
            c.respond(server_first(i).as_bytes()),
            Err(SaslError::IterationCount { count, max })
        );
    }
    for i in ["4294967296", "-1", "+5", "", "1e6"] {
        let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
        assert!(
            matches!(
                c.respond(server_first(i).as_bytes()),
                Err(SaslError::MalformedChallenge(_))
            ),
            "{i}"
        );
    }
    let mut s = ScramServer::new(Mechanism::ScramSha1, rfc5802::SERVER_NONCE).unwrap();
    s.client_first(rfc5802::CLIENT_FIRST.as_bytes()).unwrap();
    assert_eq!(
        s.server_first(&Secret::new("pencil"), b"salt", max + 1),
        Err(SaslError::IterationCount {
            count: max + 1,
            max
        })
    );
}

#[test]
fn malformed_server_first_is_refused() {
    use rfc5802::NONCE;
    // (An empty first challenge is not here: it asks for the initial response again.)
    let cases = [
        String::from("garbage"),
        format!("m=ext,r={NONCE}srv,s=QSXCR+Q6sek8bf92,i=4096"),
        format!("r={NONCE}srv,i=4096,s=QSXCR+Q6sek8bf92"),
        format!("r={NONCE}srv,s=,i=4096"),
        format!("r={NONCE}srv,s=***,i=4096"),
        format!("r={NONCE}srv"),
        format!("r={NONCE}s\u{e9}rv,s=QSXCR+Q6sek8bf92,i=4096"),
    ];
    for bad in &cases {
        let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
        assert!(
            matches!(
                c.respond(bad.as_bytes()),
                Err(SaslError::MalformedChallenge(_))
            ),
            "{bad}"
        );
    }
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    assert!(matches!(
        c.respond(b"\xff\xfe"),
        Err(SaslError::MalformedChallenge(_))
    ));
    // Extensions after i= are ignored.
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    let extended = format!("{},x=future", rfc5802::SERVER_FIRST);
    assert!(c.respond(extended.as_bytes()).is_ok());
}

#[test]
fn hostile_input_never_panics() {
    // Every prefix and every single-byte corruption of a real exchange; one PBKDF2 round
    // keeps this fast in debug builds.
    const NONCE: &str = "Client-Nonce-0123456789";
    const SERVER_NONCE: &str = "Server-Nonce-ABCDEFGHIJ";
    let password = Secret::new("pencil");
    let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
    let mut s = ScramServer::new(Mechanism::ScramSha256, SERVER_NONCE).unwrap();
    let client_first = c.initial_response().unwrap();
    s.client_first(&client_first).unwrap();
    let server_first = s.server_first(&password, b"salt", 1).unwrap();
    let client_final = c.respond(&server_first).unwrap();
    let server_final = s.client_final(&client_final).unwrap();

    let mutations = |input: &[u8]| {
        let mut variants: Vec<Vec<u8>> = (0..=input.len()).map(|n| input[..n].to_vec()).collect();
        for at in 0..input.len() {
            for byte in [0u8, b',', b'=', b'9', 0xff] {
                let mut v = input.to_vec();
                v[at] = byte;
                variants.push(v);
            }
        }
        variants
    };
    for v in mutations(&server_first)
        .iter()
        .chain(&mutations(&server_final))
    {
        let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
        c.initial_response();
        let _ = c.respond(&server_first);
        let _ = c.respond(v);
        let _ = c.finish();
        let mut c = client(Mechanism::ScramSha256, "pencil", NONCE);
        let _ = c.respond(v);
        let _ = c.respond(v);
        let _ = c.finish();
    }
    for v in mutations(&client_first) {
        let mut s = ScramServer::new(Mechanism::ScramSha256, SERVER_NONCE).unwrap();
        let _ = s.client_first(&v);
        let _ = s.server_first(&password, b"salt", 1);
    }
    for v in mutations(&client_final) {
        let mut s = ScramServer::new(Mechanism::ScramSha256, SERVER_NONCE).unwrap();
        s.client_first(&client_first).unwrap();
        s.server_first(&password, b"salt", 1).unwrap();
        let result = s.client_final(&v);
        assert!(result.is_err() || v == client_final.as_slice());
    }
}

#[test]
fn server_rejects_bad_client_messages() {
    use rfc5802::*;
    for bad in [
        "",
        "p=tls-unique,,n=user,r=abc",
        "x,,n=user,r=abc",
        "n,b=me,n=user,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=us=41er,r=abc",
        "n,,n=,r=abc",
        "n,,n=user",
        "n,,n=user,r=",
        "n,",
    ] {
        let mut s = ScramServer::new(Mechanism::ScramSha1, SERVER_NONCE).unwrap();
        assert!(
            matches!(
                s.client_first(bad.as_bytes()),
                Err(SaslError::MalformedResponse(_))
            ),
            "{bad}"
        );
        // A failed exchange stays failed.
        assert_eq!(
            s.client_first(CLIENT_FIRST.as_bytes()),
            Err(SaslError::OutOfOrder)
        );
    }

    let ready = || {
        let mut s = ScramServer::new(Mechanism::ScramSha1, SERVER_NONCE).unwrap();
        s.client_first(CLIENT_FIRST.as_bytes()).unwrap();
        s.server_first(&Secret::new("pencil"), &b64_decode(SALT).unwrap(), 4096)
            .unwrap();
        s
    };
    let wrong_nonce = "c=biws,r=fyko+d2lbbFgONRv9qkxdawLXXXX,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    assert_eq!(
        ready().client_final(wrong_nonce.as_bytes()),
        Err(SaslError::NonceMismatch)
    );
    for bad in [
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
        "c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA",
    ] {
        assert!(
            matches!(
                ready().client_final(bad.as_bytes()),
                Err(SaslError::MalformedResponse(_))
            ),
            "{bad}"
        );
    }
    let wrong_proof =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts";
    assert!(ready().client_final(wrong_proof.as_bytes()).is_err());
    let flipped =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v1X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    assert_eq!(
        ready().client_final(flipped.as_bytes()),
        Err(SaslError::AuthenticationFailed)
    );
}

#[test]
fn server_steps_in_order() {
    let mut s = ScramServer::new(Mechanism::ScramSha256, rfc7677::SERVER_NONCE).unwrap();
    assert_eq!(
        s.server_first(&Secret::new("p"), b"salt", 4096),
        Err(SaslError::OutOfOrder)
    );
    let mut s = ScramServer::new(Mechanism::ScramSha256, rfc7677::SERVER_NONCE).unwrap();
    assert_eq!(s.client_final(b"c=biws"), Err(SaslError::OutOfOrder));
    assert_eq!(
        ScramServer::new(Mechanism::Plain, rfc7677::SERVER_NONCE).err(),
        Some(SaslError::NotScram)
    );
    assert_eq!(
        ScramServer::new(Mechanism::ScramSha1, "short").err(),
        Some(SaslError::InvalidNonce)
    );
}

#[test]
fn gs2_authzid_and_escaped_user_name_on_the_wire() {
    let mut c = client_as(
        Mechanism::ScramSha1,
        "a,b=c",
        Some("adm=in"),
        "pw",
        "Client-Nonce-0123456789",
    );
    assert_eq!(
        text(&c.initial_response().unwrap()),
        "n,a=adm=3Din,n=a=2Cb=3Dc,r=Client-Nonce-0123456789"
    );
}

#[test]
fn finish_without_server_final_is_an_error() {
    use rfc5802::*;
    let mut c = client(Mechanism::ScramSha1, "pencil", NONCE);
    assert_eq!(c.finish(), Err(SaslError::MissingServerSignature));
    c.initial_response().unwrap();
    c.respond(SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(c.finish(), Err(SaslError::MissingServerSignature));
}
