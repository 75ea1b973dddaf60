//! The mboxrd text: `From ` quoting that undoes exactly, and popwire's own `From ` line.

use std::time::{SystemTime, UNIX_EPOCH};

/// mboxrd `From ` quoting: adds one `>` to every line matching `^>*From `. Streaming: a line
/// start is held back while it still matches the pattern, as a count of `>` and a prefix of
/// `"From "`, so memory stays constant however long a `>>>>…` run is.
#[derive(Debug)]
pub(super) struct FromQuoter {
    state: QuoteState,
}

#[derive(Debug, Clone, Copy)]
enum QuoteState {
    /// Inside a line that can no longer match.
    Body,
    /// At a line start: `gts` `>` characters and `matched` bytes of `"From "` seen so far.
    LineStart { gts: usize, matched: usize },
}

const FROM: &[u8] = b"From ";

impl Default for FromQuoter {
    fn default() -> Self {
        Self {
            state: QuoteState::LineStart { gts: 0, matched: 0 },
        }
    }
}

impl FromQuoter {
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                QuoteState::Body => match rest.iter().position(|&b| b == b'\n') {
                    Some(at) => {
                        let (line_end, next) = rest.split_at(at + 1);
                        out.extend_from_slice(line_end);
                        rest = next;
                        self.state = QuoteState::LineStart { gts: 0, matched: 0 };
                    }
                    None => {
                        out.extend_from_slice(rest);
                        rest = &[];
                    }
                },
                QuoteState::LineStart { gts, matched } => {
                    let Some((&byte, next)) = rest.split_first() else {
                        break;
                    };
                    rest = next;
                    if matched == 0 && byte == b'>' {
                        self.state = QuoteState::LineStart {
                            gts: gts + 1,
                            matched,
                        };
                    } else if FROM.get(matched) == Some(&byte) {
                        if matched + 1 == FROM.len() {
                            out.push(b'>');
                            emit_held(gts, FROM.len(), out);
                            self.state = QuoteState::Body;
                        } else {
                            self.state = QuoteState::LineStart {
                                gts,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        emit_held(gts, matched, out);
                        out.push(byte);
                        self.state = if byte == b'\n' {
                            QuoteState::LineStart { gts: 0, matched: 0 }
                        } else {
                            QuoteState::Body
                        };
                    }
                }
            }
        }
    }

    /// Ends the input, writing out a held-back partial match.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) {
        if let QuoteState::LineStart { gts, matched } = self.state {
            emit_held(gts, matched, out);
        }
        self.state = QuoteState::default_start();
    }
}

impl QuoteState {
    fn default_start() -> Self {
        QuoteState::LineStart { gts: 0, matched: 0 }
    }
}

/// Writes `gts` `>` characters and the first `matched` bytes of `"From "`.
fn emit_held(gts: usize, matched: usize, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(b'>', gts));
    out.extend_from_slice(FROM.get(..matched).unwrap_or_default());
}

/// `From MAILER-DAEMON Thu Nov 27 08:39:00 2025\n`: the date in asctime(3) form, in UTC (local
/// time would need the C library's time zone code, and readers do not interpret this date).
pub(super) fn from_line(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!("From MAILER-DAEMON {}\n", asctime(secs))
}

pub(super) fn asctime(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let in_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday} {month_name} {day:>2} {:02}:{:02}:{:02} {year}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), after Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
