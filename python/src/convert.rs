//! Small conversions between the engine's types and Python values.

use popwire::proto::{
    AuthMethod, Capabilities, Capability, Credential, Expire, Mechanism, Secret, Security,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// `"tls"`, `"starttls"` or `"none"`.
pub(crate) fn security(name: &str) -> PyResult<Security> {
    match name.to_ascii_lowercase().as_str() {
        "tls" => Ok(Security::Tls),
        "starttls" | "stls" => Ok(Security::StartTls),
        "none" => Ok(Security::None),
        _ => Err(PyValueError::new_err(format!(
            "security must be \"tls\", \"starttls\" or \"none\", not {name:?}"
        ))),
    }
}

/// A login method by name: `"auto"`, `"user"` (USER/PASS), `"apop"`, or a SASL mechanism.
pub(crate) fn auth_method(name: &str) -> PyResult<AuthMethod> {
    match name.to_ascii_lowercase().as_str() {
        "auto" => Ok(AuthMethod::Auto),
        "user" | "userpass" | "user/pass" => Ok(AuthMethod::UserPass),
        "apop" => Ok(AuthMethod::Apop),
        _ => Mechanism::from_name(name)
            .map(AuthMethod::Sasl)
            .ok_or_else(|| {
                let known: Vec<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
                PyValueError::new_err(format!(
                    "unknown mechanism {name:?}: use \"auto\", \"user\", \"apop\" or one of {}",
                    known.join(", ")
                ))
            }),
    }
}

/// Exactly one of `password` and `token`.
pub(crate) fn credential(password: Option<String>, token: Option<String>) -> PyResult<Credential> {
    match (password, token) {
        (Some(p), None) => Ok(Credential::Password(Secret::from(p))),
        (None, Some(t)) => Ok(Credential::Token(Secret::from(t))),
        _ => Err(PyValueError::new_err(
            "give exactly one of password and token",
        )),
    }
}

/// A capability as `(NAME, [args])`, the shape `poplib.POP3.capa()` uses.
pub(crate) fn capability(cap: &Capability) -> (String, Vec<String>) {
    let word = |s: &str| s.to_string();
    match cap {
        Capability::Top => (word("TOP"), Vec::new()),
        Capability::User => (word("USER"), Vec::new()),
        Capability::Sasl(m) => (word("SASL"), m.clone()),
        Capability::RespCodes => (word("RESP-CODES"), Vec::new()),
        Capability::LoginDelay(n) => (word("LOGIN-DELAY"), vec![n.to_string()]),
        Capability::Pipelining => (word("PIPELINING"), Vec::new()),
        Capability::Expire(Expire::Never) => (word("EXPIRE"), vec![word("NEVER")]),
        Capability::Expire(Expire::Days(d)) => (word("EXPIRE"), vec![d.to_string()]),
        Capability::Uidl => (word("UIDL"), Vec::new()),
        Capability::Implementation(t) => (
            word("IMPLEMENTATION"),
            t.split_whitespace().map(word).collect(),
        ),
        Capability::Stls => (word("STLS"), Vec::new()),
        Capability::AuthRespCode => (word("AUTH-RESP-CODE"), Vec::new()),
        Capability::Utf8 => (word("UTF8"), Vec::new()),
        Capability::Lang => (word("LANG"), Vec::new()),
        Capability::Other(n, args) => (n.clone(), args.clone()),
    }
}

/// Capabilities as an insertion-ordered `dict` of `NAME -> [args]`.
pub(crate) fn capabilities<'py>(
    py: Python<'py>,
    caps: &Capabilities,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for cap in &caps.list {
        let (name, args) = capability(cap);
        dict.set_item(name, PyList::new(py, args)?)?;
    }
    Ok(dict)
}

/// A fresh SCRAM client nonce: 24 random bytes in base64 (printable, no `,`).
pub(crate) fn fresh_nonce() -> PyResult<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        pyo3::exceptions::PyOSError::new_err(format!("reading the system random source: {e}"))
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}
