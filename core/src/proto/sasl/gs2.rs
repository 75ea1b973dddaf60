//! The GS2 header and `saslname` escaping (RFC 5801 §4), shared by SCRAM and OAUTHBEARER.

use alloc::string::String;

/// The GS2 header for a client without channel binding: `n,,` or `n,a=<authzid>,`.
pub(super) fn header(authzid: Option<&str>) -> String {
    match authzid {
        Some(a) => alloc::format!("n,a={},", escape(a)),
        None => String::from("n,,"),
    }
}

/// Escapes `,` as `=2C` and `=` as `=3D`, since both delimit GS2 and SCRAM attributes.
pub(super) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; `None` if a `=` starts anything but `=2C` or `=3D`, or a raw `,`
/// appears.
pub(super) fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find(['=', ',']) {
        let (plain, tail) = rest.split_at_checked(at)?;
        out.push_str(plain);
        if let Some(after) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = after;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips() {
        assert_eq!(escape("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape("ünïcode").as_deref(), Some("ünïcode"));
        assert_eq!(unescape("a=2"), None);
        assert_eq!(unescape("a=41"), None);
        assert_eq!(unescape("a,b"), None);
    }

    #[test]
    fn headers() {
        assert_eq!(header(None), "n,,");
        assert_eq!(header(Some("admin=x")), "n,a=admin=3Dx,");
    }
}
