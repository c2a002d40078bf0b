//! Console sign-in sessions: random ids minted at sign-in, kept hashed, with idle and absolute expiry.
//!
//! Signing in with a token mints a new random session id; only the id goes into
//! the browser's cookie, never the token. The service keeps the id's SHA-256 in
//! the `sessions` table and in memory, with the principal it stands for, when it
//! was minted and when it was last used. A session ends when it has been idle for
//! longer than the idle timeout, when it is older than the absolute lifetime, when
//! it is signed out, when its user's tokens are revoked, or (for admin sessions)
//! when the admin token is rotated. Expiry is decided against an injected clock so
//! that tests can move time instead of waiting for it.
//!
//! This module owns the session rules and their SQL; it does not read cookies
//! (that is [`crate::auth`]) or answer HTTP (that is the console's `ui` module).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction};

use crate::auth::{Principal, TokenHash, hash, hex, same};
use crate::error::{ApiError, ApiResult};

/// The service's notion of now; tests pass a clock they move by hand.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The prefix of a session id (so a leaked cookie value is recognisable as one).
pub const SESSION_PREFIX: &str = "bgs_";

/// A session ends after this long without a request, by default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60 * 60);
/// A session ends this long after sign-in, used or not, by default.
pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);

/// How often, at most, a session's last use is written back to the database: a
/// restart then loses at most this much of a session's idle time, and a busy page
/// does not cost a write per request.
const PERSIST_EVERY_SECS: i64 = 60;

/// How console sessions behave.
#[derive(Clone)]
pub struct SessionOptions {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in.
    pub absolute: Duration,
    /// Mark the cookie `Secure` (the service is reached over TLS, e.g. behind a proxy).
    pub cookie_secure: bool,
    /// Now.
    pub clock: Clock,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            idle: DEFAULT_IDLE,
            absolute: DEFAULT_ABSOLUTE,
            cookie_secure: false,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("cookie_secure", &self.cookie_secure)
            .finish_non_exhaustive()
    }
}

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// One live session.
#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    created_at: i64,
    last_seen: i64,
    /// The `last_seen` the database holds.
    persisted_seen: i64,
}

/// Writes a session's new `last_seen` to the database (set once the store is open).
type TouchSink = Box<dyn Fn(TokenHash, i64) + Send + Sync>;

/// The live sessions, by the SHA-256 of their id.
pub struct Sessions {
    live: Mutex<HashMap<TokenHash, Session>>,
    idle: i64,
    absolute: i64,
    clock: Clock,
    touch: OnceLock<TouchSink>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(&SessionOptions::default())
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("idle", &self.idle).field("absolute", &self.absolute).finish()
    }
}

/// Whole seconds of a duration, saturating (a configured hour is never negative).
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Sessions {
    /// Empty, with the options' expiry and clock.
    pub fn new(opts: &SessionOptions) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            idle: secs(opts.idle),
            absolute: secs(opts.absolute),
            clock: opts.clock.clone(),
            touch: OnceLock::new(),
        }
    }

    /// Now, in Unix seconds, by the injected clock.
    pub fn now(&self) -> i64 {
        (self.clock)().timestamp()
    }

    /// Sets where a session's last use is persisted.
    pub fn persist_touches_with(&self, sink: TouchSink) {
        let _ = self.touch.set(sink);
    }

    fn expired(&self, s: &Session, now: i64) -> bool {
        now.saturating_sub(s.last_seen) >= self.idle || now.saturating_sub(s.created_at) >= self.absolute
    }

    /// Restores a session read from the database (dropped when already expired).
    pub fn restore(&self, h: TokenHash, principal: Principal, created_at: i64, last_seen: i64) {
        let s = Session { principal, created_at, last_seen, persisted_seen: last_seen };
        if !self.expired(&s, self.now())
            && let Ok(mut live) = self.live.lock()
        {
            live.insert(h, s);
        }
    }

    /// Adds a session minted at `now`.
    pub fn insert(&self, h: TokenHash, principal: Principal, now: i64) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(h, Session { principal, created_at: now, last_seen: now, persisted_seen: now });
        }
    }

    /// Who a session id stands for, counting this as a use; an expired session is forgotten.
    pub fn principal(&self, id: &str) -> Result<Principal, ApiError> {
        let h = hash(id);
        let now = self.now();
        let mut live = self.live.lock().map_err(|_| ApiError::unauthorized())?;
        let Some((stored, s)) = live.get_key_value(&h) else {
            return Err(ApiError::unauthorized());
        };
        if !same(stored, &h) {
            return Err(ApiError::unauthorized());
        }
        if self.expired(s, now) {
            live.remove(&h);
            return Err(session_expired());
        }
        let Some(s) = live.get_mut(&h) else { return Err(ApiError::unauthorized()) };
        s.last_seen = s.last_seen.max(now);
        if s.last_seen - s.persisted_seen >= PERSIST_EVERY_SECS
            && let Some(sink) = self.touch.get()
        {
            s.persisted_seen = s.last_seen;
            sink(h, s.last_seen);
        }
        Ok(s.principal.clone())
    }

    /// Forgets one session; true when it was live.
    pub fn remove(&self, h: &TokenHash) -> bool {
        self.live.lock().is_ok_and(|mut live| live.remove(h).is_some())
    }

    /// Forgets every session of a principal; returns how many.
    pub fn revoke(&self, principal: &Principal) -> usize {
        self.live.lock().map_or(0, |mut live| {
            let before = live.len();
            live.retain(|_, s| s.principal != *principal);
            before - live.len()
        })
    }

    /// How many sessions are live (expired ones not yet looked at included).
    pub fn len(&self) -> usize {
        self.live.lock().map_or(0, |live| live.len())
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer to an expired session: a 401 that says why.
pub fn session_expired() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "auth/session-expired",
        "the session has expired; sign in again",
    )
}

/// A new random session id and its hash.
pub fn mint() -> Result<(String, TokenHash), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::store(&format!("no randomness: {e}")))?;
    let id = format!("{SESSION_PREFIX}{}", hex(&bytes));
    let h = hash(&id);
    Ok((id, h))
}

/// The `email` column of a principal: NULL for the admin.
fn email_of(principal: &Principal) -> Option<&str> {
    principal.scope()
}

/// Stores a new session, and drops the expired ones on the way (sign-ins are rare, the
/// table stays small without a background sweeper).
pub fn store_insert(
    tx: &Transaction<'_>,
    h: &TokenHash,
    principal: &Principal,
    now: i64,
    idle: Duration,
    absolute: Duration,
) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM sessions WHERE last_seen <= ?1 OR created_at <= ?2",
        (now.saturating_sub(secs(idle)), now.saturating_sub(secs(absolute))),
    )?;
    tx.execute(
        "INSERT INTO sessions (hash, email, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)",
        (h.as_slice(), email_of(principal), now),
    )?;
    Ok(())
}

/// Deletes one session.
pub fn store_delete(tx: &Transaction<'_>, h: &TokenHash) -> rusqlite::Result<usize> {
    tx.execute("DELETE FROM sessions WHERE hash = ?1", [h.as_slice()])
}

/// Deletes every session of a principal.
pub fn store_revoke(tx: &Transaction<'_>, principal: &Principal) -> rusqlite::Result<usize> {
    match email_of(principal) {
        None => tx.execute("DELETE FROM sessions WHERE email IS NULL", []),
        Some(email) => tx.execute("DELETE FROM sessions WHERE email = ?1", [email]),
    }
}

/// Records a session's last use.
pub fn store_touch(tx: &Transaction<'_>, h: &TokenHash, last_seen: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET last_seen = MAX(last_seen, ?2) WHERE hash = ?1",
        (h.as_slice(), last_seen),
    )?;
    Ok(())
}

/// Every stored session: hash, principal, created, last seen.
pub fn store_load(conn: &Connection) -> ApiResult<Vec<(TokenHash, Principal, i64, i64)>> {
    let mut stmt = conn.prepare("SELECT hash, email, created_at, last_seen FROM sessions")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (h, email, created, seen) = row?;
        if let Ok(h) = <TokenHash>::try_from(h.as_slice()) {
            out.push((h, email.map_or(Principal::Admin, Principal::User), created, seen));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A clock the test moves by hand, and sessions reading it.
    fn sessions(idle: u64, absolute: u64) -> (Sessions, Arc<AtomicI64>) {
        let t = Arc::new(AtomicI64::new(1_800_000_000));
        let read = t.clone();
        let clock: Clock =
            Arc::new(move || DateTime::from_timestamp(read.load(Ordering::SeqCst), 0).unwrap_or_default());
        let opts = SessionOptions {
            idle: Duration::from_secs(idle),
            absolute: Duration::from_secs(absolute),
            cookie_secure: false,
            clock,
        };
        (Sessions::new(&opts), t)
    }

    #[test]
    fn an_idle_session_expires_and_use_keeps_it_alive() {
        let (s, t) = sessions(600, 3600);
        let (id, h) = mint().unwrap();
        assert!(id.starts_with(SESSION_PREFIX) && id.len() == SESSION_PREFIX.len() + 64);
        s.insert(h, Principal::Admin, s.now());
        // used every 599 s: alive past the idle timeout many times over
        for _ in 0..5 {
            t.fetch_add(599, Ordering::SeqCst);
            assert_eq!(s.principal(&id).unwrap(), Principal::Admin);
        }
        t.fetch_add(600, Ordering::SeqCst);
        assert_eq!(s.principal(&id).unwrap_err().code, "auth/session-expired");
        // and it is gone, not just refused once
        assert!(s.is_empty());
        assert_eq!(s.principal(&id).unwrap_err().code, "auth/unauthorized");
    }

    #[test]
    fn a_used_session_still_ends_at_its_absolute_lifetime() {
        let (s, t) = sessions(600, 3600);
        let (id, h) = mint().unwrap();
        s.insert(h, Principal::User("a@x.com".into()), s.now());
        for _ in 0..11 {
            t.fetch_add(300, Ordering::SeqCst);
            assert!(s.principal(&id).is_ok());
        }
        // 3,300 s in; the next use at 3,600 s is refused though it was used 300 s ago
        t.fetch_add(300, Ordering::SeqCst);
        assert_eq!(s.principal(&id).unwrap_err().code, "auth/session-expired");
    }

    #[test]
    fn uses_are_persisted_at_most_once_a_minute() {
        let (s, t) = sessions(3600, 86_400);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let w = writes.clone();
        s.persist_touches_with(Box::new(move |_, seen| w.lock().unwrap().push(seen)));
        let (id, h) = mint().unwrap();
        let start = s.now();
        s.insert(h, Principal::Admin, start);
        for _ in 0..30 {
            t.fetch_add(10, Ordering::SeqCst);
            s.principal(&id).unwrap();
        }
        assert_eq!(*writes.lock().unwrap(), (1..=5).map(|k| start + 60 * k).collect::<Vec<_>>());
    }

    #[test]
    fn revoking_a_principal_ends_only_its_sessions() {
        let (s, _) = sessions(600, 3600);
        let (admin, ha) = mint().unwrap();
        let (user, hu) = mint().unwrap();
        s.insert(ha, Principal::Admin, s.now());
        s.insert(hu, Principal::User("a@x.com".into()), s.now());
        assert_eq!(s.revoke(&Principal::Admin), 1);
        assert_eq!(s.principal(&admin).unwrap_err().code, "auth/unauthorized");
        assert!(s.principal(&user).is_ok());
        assert!(s.remove(&hu));
        assert_eq!(s.principal(&user).unwrap_err().code, "auth/unauthorized");
        // a session restored already expired is not live
        s.restore(ha, Principal::Admin, s.now() - 4000, s.now() - 10);
        assert!(s.is_empty());
    }

    #[test]
    fn the_table_round_trips_and_sweeps_expired_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (hash BLOB PRIMARY KEY, email TEXT, created_at INTEGER NOT NULL,
             last_seen INTEGER NOT NULL)",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let (idle, absolute) = (Duration::from_secs(600), Duration::from_secs(3600));
        store_insert(&tx, &hash("old"), &Principal::Admin, 1000, idle, absolute).unwrap();
        store_insert(&tx, &hash("a"), &Principal::Admin, 5000, idle, absolute).unwrap();
        store_insert(&tx, &hash("u"), &Principal::User("a@x.com".into()), 5000, idle, absolute).unwrap();
        store_touch(&tx, &hash("u"), 5100).unwrap();
        tx.commit().unwrap();
        let rows = store_load(&conn).unwrap();
        // `old` was idle for 4,000 s when the others signed in: swept
        assert_eq!(rows.len(), 2);
        assert!(rows.contains(&(hash("u"), Principal::User("a@x.com".into()), 5000, 5100)));
        let tx = conn.transaction().unwrap();
        assert_eq!(store_revoke(&tx, &Principal::Admin).unwrap(), 1);
        assert_eq!(store_delete(&tx, &hash("u")).unwrap(), 1);
        tx.commit().unwrap();
        assert!(store_load(&conn).unwrap().is_empty());
    }
}
