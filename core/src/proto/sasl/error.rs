//! What can go wrong in a SASL exchange, worded so the caller knows what to do next.

use alloc::string::String;

/// A SASL failure.
///
/// - `MalformedChallenge`, `UnexpectedChallenge`, `NonceMismatch`, `IterationCount`,
///   `MissingServerSignature`: the server broke the mechanism. Report a server bug.
/// - `ServerSignatureMismatch`: the server could not prove it knows the password. Treat it as
///   an impostor (check the host and the TLS certificate) before anything else.
/// - `ServerReported`: the server gave a SCRAM error (`e=...`), e.g. `invalid-proof`: fix the
///   credentials.
/// - `InvalidCredential`, `InvalidNonce`, `NotScram`, `OutOfOrder`: the calling code or the
///   configuration is wrong. Fix it; retrying will not help.
/// - `MalformedResponse`, `AuthenticationFailed`: server role only, the client sent garbage or
///   the wrong password.
///
/// No message ever contains a password, token or derived key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server's challenge does not follow the mechanism's grammar; says which part.
    #[error("malformed SASL challenge from the server: {0}")]
    MalformedChallenge(&'static str),
    /// The server sent a challenge when the mechanism expected none.
    #[error("the server sent a SASL challenge the mechanism did not expect")]
    UnexpectedChallenge,
    /// SCRAM: the server's nonce does not extend ours, so the reply may be a replay.
    #[error("SCRAM: the server nonce does not extend the client nonce")]
    NonceMismatch,
    /// SCRAM: the server's signature is wrong: it does not know the password.
    #[error("SCRAM: the server signature does not match; the server may be an impostor")]
    ServerSignatureMismatch,
    /// SCRAM: the server accepted the login without sending its signature.
    #[error("SCRAM: the server accepted the login without proving it knows the password")]
    MissingServerSignature,
    /// SCRAM: the iteration count is zero or above the cap.
    #[error("SCRAM: iteration count {count} is outside 1..={max}")]
    IterationCount {
        /// The count the server asked for.
        count: u32,
        /// The largest count accepted ([`MAX_SCRAM_ITERATIONS`](crate::proto::MAX_SCRAM_ITERATIONS)).
        max: u32,
    },
    /// SCRAM: the server ended the exchange with `e=<reason>`. The text is the server's,
    /// unescaped: escape control characters before printing it.
    #[error("SCRAM: the server reported `{0}`")]
    ServerReported(String),
    /// The nonce given to the engine is shorter than 16 characters or not printable ASCII
    /// without `,`.
    #[error("the SCRAM nonce must be at least 16 printable ASCII characters other than ','")]
    InvalidNonce,
    /// A SCRAM-only operation was asked of another mechanism.
    #[error("the mechanism is not SCRAM")]
    NotScram,
    /// The credentials cannot be sent with this mechanism; says why (never the secret itself).
    #[error("invalid credential: {0}")]
    InvalidCredential(&'static str),
    /// Server role: a SCRAM step was called before the one it follows.
    #[error("SCRAM server steps called out of order")]
    OutOfOrder,
    /// Server role: the client's message does not follow the mechanism's grammar.
    #[error("malformed SASL response from the client: {0}")]
    MalformedResponse(&'static str),
    /// Server role: the client's proof is wrong (wrong password).
    #[error("authentication failed")]
    AuthenticationFailed,
}
