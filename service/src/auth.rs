//! Bearer tokens: the admin token and per-user tokens, stored only as SHA-256 hashes.
//!
//! A presented token is hashed and compared against stored hashes in constant
//! time. The map from hash to user is looked up by hash: timing that depends on
//! a hash reveals nothing usable about a token. Tokens are never logged and never
//! echoed back, except once when issued.
//!
//! The console's pages sign in once with a token and get a session (see
//! [`crate::sessions`]): a random id in the `budgit_session` cookie (HttpOnly, so
//! page scripts never read it), never the token itself. A request presents the
//! `Authorization: Bearer` header or, without one, that cookie. A browser sends
//! cookies on cross-site requests too, so a cookie-authenticated request that
//! changes anything must also carry `X-Budgit-Console: 1`: another site cannot
//! add a custom header to a cross-site request without a CORS preflight, which
//! this service never grants.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::{HeaderMap, Method, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::sessions::{SessionOptions, Sessions};

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

    /// The user a read is filtered to: the one `asked` (in its canonical form), and for a
    /// user token always its own user (asking for another is refused).
    pub(crate) fn user_filter(&self, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        let asked = crate::api::canonical_filter(asked)?;
        match (self.scope(), asked) {
            (Some(own), Some(asked)) if own != asked => {
                Err(ApiError::forbidden("a user token sees only its own user's data"))
            }
            (Some(own), _) => Ok(Some(own.to_string())),
            (None, asked) => Ok(asked),
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

/// The token hashes the server accepts, and the console sessions minted from them.
#[derive(Debug, Default)]
pub struct Tokens {
    admin: RwLock<Option<TokenHash>>,
    users: RwLock<HashMap<TokenHash, String>>,
    /// Console sessions; the cookie holds a session id, never a token.
    pub sessions: Sessions,
}

impl Tokens {
    /// No tokens yet; sessions expire as `opts` says.
    pub fn new(opts: &SessionOptions) -> Tokens {
        Tokens { admin: RwLock::default(), users: RwLock::default(), sessions: Sessions::new(opts) }
    }

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

    /// Removes every token of a user, and the sessions they signed in; returns how many tokens.
    pub fn revoke_user(&self, user: &str) -> usize {
        self.sessions.revoke(&Principal::User(user.to_string()));
        self.users.write().map_or(0, |mut m| {
            let before = m.len();
            m.retain(|_, u| u != user);
            before - m.len()
        })
    }

    /// How the audit log and credit requests name `who`: a user by their email, the admin
    /// by the token they hold (`admin:` and the first 12 hex digits of its SHA-256; an
    /// admin session was signed in with that same token, since rotating it ends them).
    /// Several admins sharing one token share this name; a rotated token gets a new one.
    pub fn subject(&self, who: &Principal) -> String {
        match who {
            Principal::User(u) => u.clone(),
            Principal::Admin => match self.admin.read().ok().and_then(|a| *a) {
                Some(h) => format!("admin:{}", hex(h.get(..6).unwrap_or_default())),
                None => "admin".to_string(),
            },
        }
    }

    /// True when `h` is the admin token's hash.
    pub fn is_admin(&self, h: &TokenHash) -> bool {
        self.admin.read().ok().and_then(|a| *a).is_some_and(|a| same(&a, h))
    }

    /// Who a request's bearer token (or, without one, its session cookie) belongs to.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        self.authenticate_with_source(headers).map(|(p, _)| p)
    }

    /// Who a request belongs to, refusing cookie-authenticated writes without the console header.
    pub fn authenticate_request(&self, method: &Method, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let (principal, via) = self.authenticate_with_source(headers)?;
        if via == Via::Cookie && !is_safe(method) && !has_console_header(headers) {
            return Err(csrf_refused());
        }
        Ok(principal)
    }

    /// Who a token belongs to.
    pub fn principal(&self, token: &str) -> Result<Principal, ApiError> {
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

    /// The principal and where its token came from; a present but invalid header never
    /// falls back to the cookie.
    fn authenticate_with_source(&self, headers: &HeaderMap) -> Result<(Principal, Via), ApiError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .ok_or_else(ApiError::unauthorized)?;
            return Ok((self.principal(token)?, Via::Header));
        }
        let id = session_cookie(headers).ok_or_else(ApiError::unauthorized)?;
        Ok((self.sessions.principal(id)?, Via::Cookie))
    }
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Header,
    Cookie,
}

/// The name of the console's session cookie.
pub const SESSION_COOKIE: &str = "budgit_session";

/// The header a cookie-authenticated write must carry (value `1`).
pub const CONSOLE_HEADER: &str = "x-budgit-console";

/// The session id in the `budgit_session` cookie, when the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// True when the request carries `X-Budgit-Console: 1`.
pub fn has_console_header(headers: &HeaderMap) -> bool {
    headers.get(CONSOLE_HEADER).is_some_and(|v| v.as_bytes() == b"1")
}

/// The answer to a cookie-authenticated write without the console header.
pub fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "auth/csrf",
        "a console session needs the `X-Budgit-Console: 1` header to change anything",
    )
}

/// Methods that change nothing (no CSRF guard needed).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `Set-Cookie` value that stores a session id: the browser drops it at the
/// session's absolute lifetime, and sends it only over TLS when `secure`.
pub fn session_set_cookie(id: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

/// The `Set-Cookie` value that removes the session.
pub fn session_clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
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

    fn cookie_headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", cookie.parse().unwrap());
        h
    }

    /// A session for `principal`, as sign-in mints it; returns its id.
    fn signed_in(t: &Tokens, principal: Principal) -> String {
        let (id, h) = crate::sessions::mint().unwrap();
        t.sessions.insert(h, principal, t.sessions.now());
        id
    }

    #[test]
    fn the_session_cookie_authenticates_and_the_header_wins() {
        let t = Tokens::default();
        t.set_admin(hash("adm"));
        t.add_user(hash("u1"), "a@x.com".into());
        let id = signed_in(&t, Principal::User("a@x.com".into()));
        let mut h = cookie_headers(&format!("theme=dark; budgit_session={id}; other=x"));
        assert_eq!(t.authenticate(&h).unwrap(), Principal::User("a@x.com".into()));
        // a token is not a session: a cookie holding one opens nothing
        assert_eq!(
            t.authenticate(&cookie_headers("budgit_session=u1")).unwrap_err().code,
            "auth/unauthorized"
        );
        assert_eq!(
            t.authenticate(&cookie_headers("budgit_session=adm")).unwrap_err().code,
            "auth/unauthorized"
        );
        // an explicit header is what the caller meant, even when it is wrong
        h.insert("authorization", "Bearer adm".parse().unwrap());
        assert_eq!(t.authenticate(&h).unwrap(), Principal::Admin);
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(t.authenticate(&h).unwrap_err().code, "auth/unauthorized");
        assert_eq!(
            t.authenticate(&cookie_headers("budgit_session=nope")).unwrap_err().code,
            "auth/unauthorized"
        );
        assert_eq!(t.authenticate(&cookie_headers("budgit_session=")).unwrap_err().code, "auth/unauthorized");
        assert_eq!(t.authenticate(&HeaderMap::new()).unwrap_err().code, "auth/unauthorized");
        // revoking the user's tokens ends the sessions they signed in
        t.revoke_user("a@x.com");
        assert_eq!(
            t.authenticate(&cookie_headers(&format!("budgit_session={id}"))).unwrap_err().code,
            "auth/unauthorized"
        );
    }

    #[test]
    fn cookie_writes_need_the_console_header() {
        let t = Tokens::default();
        t.set_admin(hash("adm"));
        let id = signed_in(&t, Principal::Admin);
        let mut h = cookie_headers(&format!("budgit_session={id}"));
        assert_eq!(t.authenticate_request(&Method::GET, &h).unwrap(), Principal::Admin);
        assert_eq!(t.authenticate_request(&Method::POST, &h).unwrap_err().code, "auth/csrf");
        assert_eq!(t.authenticate_request(&Method::DELETE, &h).unwrap_err().code, "auth/csrf");
        h.insert("x-budgit-console", "1".parse().unwrap());
        assert_eq!(t.authenticate_request(&Method::POST, &h).unwrap(), Principal::Admin);
        // a bearer header is not sent by browsers on their own: no guard
        let mut b = HeaderMap::new();
        b.insert("authorization", "Bearer adm".parse().unwrap());
        assert_eq!(t.authenticate_request(&Method::POST, &b).unwrap(), Principal::Admin);
    }

    #[test]
    fn session_cookies_are_flagged() {
        let set = session_set_cookie("bgs_1", 3600, false);
        for flag in ["budgit_session=bgs_1", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(!set.contains("Secure"));
        assert!(session_set_cookie("bgs_1", 3600, true).ends_with("; Secure"));
        assert!(session_clear_cookie(false).contains("Max-Age=0"));
        assert!(session_clear_cookie(true).ends_with("; Secure"));
    }
}
