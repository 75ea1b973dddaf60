//! Human-written durations (`"30d"`, `"1h30m"`) and sizes (`"10M"`) as they appear in the config.
//!
//! ```
//! use std::time::Duration;
//! use popwire::fetch::duration::{parse_duration, parse_size};
//! assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
//! assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
//! assert_eq!(parse_size("10M"), Ok(10 * 1024 * 1024));
//! ```

use std::time::Duration;

use thiserror::Error;

/// Why a duration or size string was rejected. The config layer turns it into a message with a fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The string was empty or only whitespace.
    #[error("empty value")]
    Empty,
    /// A number was expected where something else was found.
    #[error("expected a number at {found:?}")]
    ExpectedNumber {
        /// The rest of the input, from the offending character.
        found: String,
    },
    /// A duration number had no unit after it.
    #[error("missing unit after {number}")]
    MissingUnit {
        /// The number that had no unit.
        number: u64,
    },
    /// The unit is not one this parser knows.
    #[error("unknown unit {unit:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// The value does not fit in 64 bits.
    #[error("value too large")]
    Overflow,
}

/// Seconds per duration unit. Months and years are left out on purpose: their length varies, and
/// a mail-retention setting should mean exactly what it says.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("s", 1),
    ("m", 60),
    ("h", 3_600),
    ("d", 86_400),
    ("w", 7 * 86_400),
];

/// Parses a duration such as `"45s"`, `"90m"`, `"12h"`, `"30d"`, `"2w"`, or a sum of them written
/// together (`"1d12h"`). Units are case-insensitive; a bare number is rejected because `keep = "30"`
/// could mean days or seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (number, after_number) = leading_number(rest)?;
        let after_number = after_number.trim_start();
        let unit_len = after_number
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(ParseError::MissingUnit { number });
        }
        let seconds_per = DURATION_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, secs)| secs)
            .ok_or_else(|| ParseError::UnknownUnit {
                unit: unit.to_owned(),
            })?;
        total = number
            .checked_mul(seconds_per)
            .and_then(|secs| total.checked_add(secs))
            .ok_or(ParseError::Overflow)?;
        rest = after_unit.trim_start();
    }
    Ok(Duration::from_secs(total))
}

/// Parses a byte size: a bare number of bytes, or a number with a binary suffix `K`, `M`, `G`, `T`
/// (powers of 1024, optionally followed by `B` or `iB`, case-insensitive): `"512K"`, `"10MB"`, `"1GiB"`.
///
/// Binary multiples are used because that is what `ls -lh` and `du -h` show for message files.
pub fn parse_size(text: &str) -> Result<u64, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let (number, suffix) = leading_number(text)?;
    let suffix = suffix.trim_start();
    let lower = suffix.to_ascii_lowercase();
    let multiplier: u64 = match lower.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(ParseError::UnknownUnit {
                unit: suffix.to_owned(),
            });
        }
    };
    number.checked_mul(multiplier).ok_or(ParseError::Overflow)
}

/// Splits the leading run of ASCII digits off `text` and parses it.
fn leading_number(text: &str) -> Result<(u64, &str), ParseError> {
    let digits_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_len);
    if digits.is_empty() {
        return Err(ParseError::ExpectedNumber {
            found: text.to_owned(),
        });
    }
    let number = digits.parse::<u64>().map_err(|_| ParseError::Overflow)?;
    Ok((number, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("90m"), Ok(5_400));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("30d"), Ok(2_592_000));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert_eq!(secs(" 1d 12H "), Ok(129_600));
        assert_eq!(secs("0s"), Ok(0));
    }

    #[test]
    fn duration_errors() {
        assert_eq!(parse_duration(""), Err(ParseError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(ParseError::MissingUnit { number: 30 })
        );
        assert_eq!(
            parse_duration("3 months"),
            Err(ParseError::UnknownUnit {
                unit: "months".into()
            })
        );
        assert_eq!(
            parse_duration("d"),
            Err(ParseError::ExpectedNumber { found: "d".into() })
        );
        assert_eq!(
            parse_duration("-1d"),
            Err(ParseError::ExpectedNumber {
                found: "-1d".into()
            })
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999999w"),
            Err(ParseError::Overflow)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("10M"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("10 mb"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(
            parse_size("10X"),
            Err(ParseError::UnknownUnit { unit: "X".into() })
        );
        assert_eq!(parse_size(""), Err(ParseError::Empty));
        assert_eq!(parse_size("99999999999T"), Err(ParseError::Overflow));
        assert_eq!(
            parse_size("M"),
            Err(ParseError::ExpectedNumber { found: "M".into() })
        );
    }
}
