//! Test mail: edge cases and deterministic bulk messages, and the form a POP3
//! client must store them in after `RETR` ([`wire_form`]).
//!
//! No generated message contains NUL bytes or bare CRs (CR not followed by
//! LF), whose handling differs between servers.

/// Headers (LF line endings) ending with the blank line.
fn headers(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "Return-Path: <sender@example.com>\n\
         From: Popwire Sender <sender@example.com>\n\
         To: Popwire Test <test@example.com>\n\
         Subject: {subject}\n\
         Date: Mon, 01 Jan 2024 12:00:00 +0000\n\
         Message-ID: <{id}@popwire.test>\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\
         \n"
    )
    .into_bytes()
}

fn with_body(id: &str, subject: &str, body: &[u8]) -> Vec<u8> {
    let mut m = headers(id, subject);
    m.extend_from_slice(body);
    m
}

fn to_crlf(msg: &[u8]) -> Vec<u8> {
    wire_form(msg)
}

/// Edge cases, in this order:
///
/// 0. lines starting with `.`: `.x`, `..`, `...`, a lone `.` mid-body;
/// 1. 8-bit bytes: UTF-8 and raw Latin-1 (invalid UTF-8) in header and body;
/// 2. stored with CRLF line endings, with dot lines;
/// 3. mixed LF and CRLF line endings;
/// 4. a single body line of 25,000 bytes (beyond any 998/1000 limit);
/// 5. an empty body (headers and the blank line only);
/// 6. no newline at the end of the last line;
/// 7. a body whose last line is a lone `.`;
/// 8. a body that starts with a dot line and ends with blank lines;
/// 9. a 1.2 MB message (many lines, some dot lines).
pub fn tricky_messages() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    v.push(with_body(
        "tricky-0",
        "dot lines",
        b"first line\n.leading dot\n..two dots\n...\n.\nafter a lone dot\n. dot space\nend with dot.\nlast\n",
    ));
    let mut eight = b"Subject: 8-bit \xc3\xa9t\xc3\xa9 \xe9t\xe9\n".to_vec();
    eight.extend_from_slice(
        b"From: sender@example.com\n\nUTF-8: gr\xc3\xbc\xc3\x9fe \xe2\x86\x92 \xf0\x9f\x93\xa7\nLatin-1: \xe9\xe8\xfc\xff\n\x80\x81\xfe bytes\n",
    );
    v.push(eight);
    v.push(to_crlf(&with_body(
        "tricky-2",
        "stored with CRLF",
        b"crlf line\n.dot line\n.\n\nend\n",
    )));
    v.push(with_body(
        "tricky-3",
        "mixed endings",
        b"lf line\ncrlf line\r\n.dot crlf\r\n.dot lf\n\r\nend\n",
    ));
    let mut long = b"before\n".to_vec();
    long.extend(
        b"abcdefghijklmnopqrstuvwxyz0123456789"
            .iter()
            .cycle()
            .take(25_000),
    );
    long.extend_from_slice(b"\nafter\n");
    v.push(with_body("tricky-4", "a 25 KB line", &long));
    v.push(with_body("tricky-5", "empty body", b""));
    v.push(with_body(
        "tricky-6",
        "no final newline",
        b"line one\nlast line without newline",
    ));
    v.push(with_body("tricky-7", "ends with a lone dot", b"text\n.\n"));
    v.push(with_body(
        "tricky-8",
        "dot first, blank lines last",
        b".starts with a dot\nbody\n\n\n",
    ));
    let mut big = Vec::with_capacity(1_300_000);
    let mut rng = Rng::new(0x706f_7077);
    let mut i = 0u32;
    while big.len() < 1_200_000 {
        match i % 97 {
            0 => big.extend_from_slice(b".\n"),
            1 => big.extend_from_slice(b"..dot-stuffed on the wire\n"),
            _ => {
                for _ in 0..72 {
                    big.push(ALNUM.get(rng.below(ALNUM.len())).copied().unwrap_or(b'x'));
                }
                big.push(b'\n');
            }
        }
        i += 1;
    }
    v.push(with_body("tricky-9", "a 1.2 MB message", &big));
    v
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const WORDS: &[&str] = &[
    "the",
    "mail",
    "server",
    "client",
    "message",
    "retrieve",
    "delete",
    "pipeline",
    "octets",
    "unique",
    "identifier",
    "mailbox",
    "session",
    "quit",
    "update",
    "state",
    "transaction",
    "authorization",
    "greeting",
    "capability",
    "response",
    "line",
    "multi",
    "terminated",
    "byte",
    "stuffed",
    "period",
    "network",
];

const EIGHT_BIT: &[&[u8]] = &[
    b"caf\xc3\xa9",
    b"gr\xc3\xbc\xc3\x9fe",
    b"\xe2\x86\x92",
    b"na\xefve",
    b"\xe9t\xe9",
    b"\xff\xfe",
];

/// A small deterministic PRNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        let i = self.below(items.len());
        items
            .get(i)
            .copied()
            .unwrap_or_else(|| items.first().copied().unwrap_or_else(|| unreachable!()))
    }
}

fn words_line(rng: &mut Rng, target: usize) -> Vec<u8> {
    let mut line = Vec::new();
    while line.len() < target {
        if !line.is_empty() {
            line.push(b' ');
        }
        if rng.below(12) == 0 {
            line.extend_from_slice(rng.pick(EIGHT_BIT));
        } else {
            line.extend_from_slice(rng.pick(WORDS).as_bytes());
        }
    }
    line
}

/// `n` deterministic, realistic messages (headers and a text body, LF line
/// endings) of exactly `size` bytes each (when `size` is at least about
/// 400 bytes; smaller sizes give just the headers and one line). Bodies mix
/// word lines, lines starting with `.`, lone `.` lines, 8-bit bytes, blank
/// lines and a few long lines (1,000 to 3,000 bytes). The same
/// `(n, size, seed)` always gives the same messages.
pub fn sized(n: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let id = format!("sized-{seed}-{i}-{size}");
            let mut m = headers(
                &id,
                &format!("message {i} of {n} ({size} bytes, seed {seed})"),
            );
            if m.len() + 2 > size {
                m.extend_from_slice(b"short\n");
                return m;
            }
            loop {
                let line: Vec<u8> = match rng.below(200) {
                    0..=5 => {
                        let mut l = b".".to_vec();
                        let target = 20 + rng.below(40);
                        l.extend(words_line(&mut rng, target));
                        l
                    }
                    6..=7 => b".".to_vec(),
                    8 => b"..".to_vec(),
                    9 => {
                        let len = 1000 + rng.below(2000);
                        (0..len)
                            .map(|_| ALNUM.get(rng.below(ALNUM.len())).copied().unwrap_or(b'x'))
                            .collect()
                    }
                    10..=19 => Vec::new(),
                    _ => {
                        let target = 30 + rng.below(46);
                        words_line(&mut rng, target)
                    }
                };
                if m.len() + line.len() + 1 > size {
                    break;
                }
                m.extend_from_slice(&line);
                m.push(b'\n');
            }
            let rest = size - m.len();
            if rest > 0 {
                m.extend(std::iter::repeat_n(b'z', rest - 1));
                m.push(b'\n');
            }
            m
        })
        .collect()
}

/// What a POP3 client should store after `RETR` of `msg` from Dovecot: every
/// LF not preceded by CR becomes CRLF (Dovecot serves stored LF as CRLF),
/// and a final CRLF is added when the message does not end with a newline
/// (the server must end the last line before the terminating `.`). So an
/// empty (0-byte) message becomes `"\r\n"`: Dovecot serves it as one empty
/// line, the same as a message consisting of `"\n"`.
pub fn wire_form(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 30 + 2);
    let mut prev = 0u8;
    for &b in msg {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_is_exact_and_deterministic() {
        for size in [400, 1000, 5000, 100_000] {
            let a = sized(5, size, 7);
            assert_eq!(a, sized(5, size, 7));
            assert!(a.iter().all(|m| m.len() == size), "size {size}");
            assert!(
                a.iter()
                    .all(|m| m.ends_with(b"\n") && !m.contains(&b'\r') && !m.contains(&0))
            );
        }
        assert_ne!(sized(1, 5000, 1), sized(1, 5000, 2));
    }

    #[test]
    fn wire_form_rules() {
        assert_eq!(wire_form(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n");
        assert_eq!(wire_form(b""), b"\r\n");
        assert_eq!(wire_form(b"\n"), b"\r\n");
    }

    #[test]
    fn tricky_has_the_promised_shapes() {
        let t = tricky_messages();
        assert_eq!(t.len(), 10);
        assert!(t.iter().any(|m| m.windows(3).any(|w| w == b"\n.\n")));
        assert!(t.iter().any(|m| !m.ends_with(b"\n")));
        assert!(t.iter().any(|m| m.len() > 1_000_000));
        assert!(
            t.iter()
                .any(|m| m.split(|&b| b == b'\n').any(|l| l.len() > 20_000))
        );
        assert!(t.iter().all(|m| !m.contains(&0)));
    }
}
