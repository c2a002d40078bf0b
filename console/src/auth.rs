//! Bearer tokens: the admin token and per-user tokens, stored only as SHA-256 hashes.
//!
//! A presented token is hashed and compared against stored hashes in constant
//! time. The map from hash to user is looked up by hash: timing that depends on
//! a hash reveals nothing usable about a token. Tokens are never logged and never
//! echoed back, except once when issued.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: everything.
    Admin,
    /// A user token: only this user's data.
    User(String),
}

impl Principal {
    /// The user whose data this principal may see, or `None` for the admin.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::User(u) => Some(u),
        }
    }

    /// Fails unless the caller is the admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::User(_) => Err(ApiError::forbidden("this endpoint needs the admin token")),
        }
    }

    /// Fails unless the caller is the admin or `user` themself.
    pub fn require_user(&self, user: &str) -> Result<(), ApiError> {
        match self {
            Principal::User(u) if u != user => {
                Err(ApiError::forbidden("a user token sees only its own user's data"))
            }
            _ => Ok(()),
        }
    }

    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "admin".to_string(),
            Principal::User(u) => u.clone(),
        }
    }
}

/// A token's SHA-256.
pub type TokenHash = [u8; 32];

/// Hashes a token.
pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits.
pub fn unhex(text: &str) -> Option<TokenHash> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compares two hashes without an early exit.
pub fn same(a: &TokenHash, b: &TokenHash) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token with a readable prefix (`bgt_admin_…`, `bgt_user_…`).
pub fn generate(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::store(&format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// A random id (hex) for reservations.
pub fn random_id(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::store(&format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// The token hashes the server accepts.
#[derive(Debug, Default)]
pub struct Tokens {
    admin: RwLock<Option<TokenHash>>,
    users: RwLock<HashMap<TokenHash, String>>,
}

impl Tokens {
    /// Sets the admin token's hash.
    pub fn set_admin(&self, h: TokenHash) {
        if let Ok(mut a) = self.admin.write() {
            *a = Some(h);
        }
    }

    /// Adds a user token's hash.
    pub fn add_user(&self, h: TokenHash, user: String) {
        if let Ok(mut m) = self.users.write() {
            m.insert(h, user);
        }
    }

    /// Removes every token of a user; returns how many.
    pub fn revoke_user(&self, user: &str) -> usize {
        self.users.write().map_or(0, |mut m| {
            let before = m.len();
            m.retain(|_, u| u != user);
            before - m.len()
        })
    }

    /// Who a request's bearer token belongs to.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let h = hash(token);
        let admin = self.admin.read().ok().and_then(|a| *a);
        if admin.is_some_and(|a| same(&a, &h)) {
            return Ok(Principal::Admin);
        }
        let users = self.users.read().map_err(|_| ApiError::unauthorized())?;
        match users.get_key_value(&h) {
            Some((stored, user)) if same(stored, &h) => Ok(Principal::User(user.clone())),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_principals() {
        let t = Tokens::default();
        t.set_admin(hash("adm"));
        t.add_user(hash("u1"), "a@x.com".into());
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer u1".parse().unwrap());
        assert_eq!(t.authenticate(&h).unwrap(), Principal::User("a@x.com".into()));
        h.insert("authorization", "Bearer adm".parse().unwrap());
        assert_eq!(t.authenticate(&h).unwrap(), Principal::Admin);
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(t.authenticate(&h).unwrap_err().code, "auth/unauthorized");
        assert_eq!(t.revoke_user("a@x.com"), 1);
        assert_eq!(unhex(&hex(&hash("x"))), Some(hash("x")));
    }
}
