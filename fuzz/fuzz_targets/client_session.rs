//! A whole client session against an arbitrary server.
//!
//! The first bytes choose the client options, the login method, what to list and fetch, and the
//! read sizes; the rest is the server's byte stream. The driver reacts as the fetch job does
//! (log in, list, RETR/TOP, DELE, QUIT). Beyond not panicking, the session must not depend on
//! how the stream is cut into reads: its log must equal the log of a run fed one octet at a time
//! (except with STLS, where bytes sharing a read with the `+OK` are an attack by definition).
#![no_main]

use libfuzzer_sys::fuzz_target;
use popwire_fuzz::{Choices, MAX_READ, Plan, run};

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let plan = Plan::choose(&mut c);
    let sizes: Vec<usize> = (0..c.range(1, 4))
        .map(|_| if c.flag() { c.range(1, 16) } else { c.range(1, MAX_READ) })
        .collect();
    let stream = c.rest();
    let log = run(&plan, stream, &sizes);
    if !plan.split_sensitive() {
        let reference = run(&plan, stream, &[1]);
        assert_eq!(log, reference, "the session depends on how the stream is cut into reads");
    }
});
