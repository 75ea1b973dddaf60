//! A whole client session against an arbitrary server.
//!
//! The first bytes choose the client options, the login method, what to list and fetch, and the
//! read sizes; the rest is the server's byte stream. The driver reacts as the fetch job does
//! (log in, list, RETR/TOP, DELE, QUIT). Beyond not panicking, the session must not depend on
//! how the stream is cut into reads: its log, and what it wrote, must equal those of a run fed
//! one octet at a time (except with STLS, where bytes sharing a read with the `+OK` are an
//! attack by definition).
#![no_main]

use libfuzzer_sys::fuzz_target;
use popwire_fuzz::{Choices, MAX_READ, Plan, run};

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let plan = Plan::choose(&mut c);
    let sizes: Vec<usize> = (0..c.range(1, 4))
        .map(|_| {
            if c.flag() {
                c.range(1, 16)
            } else {
                c.range(1, MAX_READ)
            }
        })
        .collect();
    let stream = c.rest();
    let (log, written) = run(&plan, stream, &sizes);
    if !plan.split_sensitive() {
        let (reference, reference_written) = run(&plan, stream, &[1]);
        assert_eq!(
            log, reference,
            "the session depends on how the stream is cut into reads"
        );
        if log.last().is_some_and(|l| l.starts_with("fatal")) {
            // A fatal error drops what was not yet handed out, and bigger reads leave more of
            // it unsent: what was written is then a prefix of the octet-wise run's.
            let (short, long) = if written.len() <= reference_written.len() {
                (&written, &reference_written)
            } else {
                (&reference_written, &written)
            };
            assert!(
                long.starts_with(short),
                "the client wrote differently for other reads"
            );
        } else {
            assert_eq!(
                written, reference_written,
                "the client wrote differently for other reads"
            );
        }
    }
});
