//! Named bearer tokens for the admin API, compared in constant time. The token's name (never
//! its value) is who an audit record says made a change.

use std::fmt;

use http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One configured token: a name and the SHA-256 of its value.
#[derive(Clone)]
pub struct Token {
    name: String,
    digest: [u8; 32],
}

impl Token {
    pub fn new(name: &str, value: &str) -> Self {
        Self { name: name.to_string(), digest: Sha256::digest(value.as_bytes()).into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}, [redacted])", self.name)
    }
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A token that matches none configured (or a malformed header).
    Invalid,
}

impl AuthError {
    /// Every variant, for metrics that exist at zero before the first refusal.
    pub const ALL: [AuthError; 2] = [AuthError::Missing, AuthError::Invalid];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid => "invalid",
        }
    }
}

/// The name of the token the request carries, if it is one of `tokens`.
///
/// Both sides are hashed first, so the comparison takes the same time whatever the length of
/// the presented token, and every configured token is compared (no early exit).
pub fn authenticate<'a>(tokens: &'a [Token], headers: &HeaderMap) -> Result<&'a str, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Err(AuthError::Missing) };
    let presented = value.to_str().ok().and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let Some(presented) = presented.filter(|t| !t.is_empty()) else { return Err(AuthError::Invalid) };
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        if bool::from(t.digest.ct_eq(&digest)) {
            found = Some(t.name.as_str());
        }
    }
    found.ok_or(AuthError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_matching_token_names_the_caller() {
        let tokens = [Token::new("alice", "alice-secret-token-1"), Token::new("bob", "bob-secret-token-22")];
        for (auth, expected) in [
            (Some("Bearer alice-secret-token-1"), Ok("alice")),
            (Some("bearer bob-secret-token-22"), Ok("bob")),
            (Some("Bearer  bob-secret-token-22 "), Ok("bob")),
            (None, Err(AuthError::Missing)),
            (Some("Bearer"), Err(AuthError::Invalid)),
            (Some("Bearer "), Err(AuthError::Invalid)),
            (Some("Basic YWxpY2U6eA=="), Err(AuthError::Invalid)),
            (Some("Bearer alice-secret-token-"), Err(AuthError::Invalid)),
            (Some("Bearer alice-secret-token-1x"), Err(AuthError::Invalid)),
        ] {
            assert_eq!(authenticate(&tokens, &headers(auth)), expected, "{auth:?}");
        }
        assert_eq!(authenticate(&[], &headers(Some("Bearer anything-at-all-1234"))), Err(AuthError::Invalid));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let t = Token::new("alice", "alice-secret-token-1");
        assert_eq!(format!("{t:?}"), "Token(alice, [redacted])");
    }
}
