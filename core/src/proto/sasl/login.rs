//! LOGIN (draft-murchison-sasl-login): the user name, then the password, each in answer to a
//! challenge.

use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

use super::SaslError;
use super::crypto::concat;
use crate::proto::Secret;

/// Client side of LOGIN.
///
/// The challenges are answered by position, not by text: servers word them `Username:`,
/// `User Name`, or localized, and the order is the only thing they agree on.
pub(super) struct LoginClient {
    user: String,
    password: Secret,
    step: Step,
}

#[derive(Clone, Copy)]
enum Step {
    User,
    Password,
    Done,
}

impl LoginClient {
    pub(super) fn new(user: &str, password: &Secret) -> Self {
        Self {
            user: user.into(),
            password: password.clone(),
            step: Step::User,
        }
    }

    pub(super) fn respond(&mut self, _challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
        match self.step {
            Step::User => {
                self.step = Step::Password;
                Ok(concat(&[self.user.as_bytes()]))
            }
            Step::Password => {
                self.step = Step::Done;
                Ok(concat(&[self.password.expose()]))
            }
            Step::Done => Err(SaslError::UnexpectedChallenge),
        }
    }

    pub(super) fn step(&self) -> &'static str {
        match self.step {
            Step::User => "awaiting user name challenge",
            Step::Password => "awaiting password challenge",
            Step::Done => "password sent",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_by_position() {
        let mut c = LoginClient::new("tim", &Secret::new("tanstaaf"));
        assert_eq!(c.respond(b"Password:").unwrap().as_slice(), b"tim");
        assert_eq!(c.respond(b"Username:").unwrap().as_slice(), b"tanstaaf");
        assert_eq!(
            c.respond(b"Anything else?"),
            Err(SaslError::UnexpectedChallenge)
        );
    }
}
