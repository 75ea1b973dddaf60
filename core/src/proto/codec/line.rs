//! Finding CRLF-terminated lines under a length cap.

/// A complete line found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Length of the line's content, without CRLF (or a bare LF, which is tolerated).
    pub content_len: usize,
    /// Octets to consume, terminator included.
    pub consumed: usize,
}

/// Finds the first line in `buf`, or `Ok(None)` when more input is needed.
///
/// `max` caps the line including its terminator; a longer line is `Err(())`, so a peer can never
/// make us buffer without bound.
#[allow(clippy::result_unit_err)]
pub fn find_line(buf: &[u8], max: usize) -> Result<Option<Line>, ()> {
    let window = buf.get(..max.min(buf.len())).unwrap_or(buf);
    match memchr::memchr(b'\n', window) {
        Some(lf) => {
            let content_len = if lf > 0 && buf.get(lf - 1) == Some(&b'\r') {
                lf - 1
            } else {
                lf
            };
            Ok(Some(Line {
                content_len,
                consumed: lf + 1,
            }))
        }
        None if buf.len() >= max => Err(()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_crlf_and_bare_lf_lines() {
        assert_eq!(
            find_line(b"+OK hi\r\nrest", 512),
            Ok(Some(Line {
                content_len: 6,
                consumed: 8
            }))
        );
        assert_eq!(
            find_line(b"+OK\nrest", 512),
            Ok(Some(Line {
                content_len: 3,
                consumed: 4
            }))
        );
        assert_eq!(find_line(b"+OK hi\r", 512), Ok(None));
    }

    #[test]
    fn enforces_the_cap_including_crlf() {
        let exact = [b'a'; 510];
        let mut line = exact.to_vec();
        line.extend_from_slice(b"\r\n");
        assert!(find_line(&line, 512).is_ok_and(|l| l.is_some()));
        line.insert(0, b'a');
        assert_eq!(find_line(&line, 512), Err(()));
        assert_eq!(find_line(&[b'a'; 600], 512), Err(()));
    }
}
