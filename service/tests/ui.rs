//! The console's pages, assets and browser sessions against a real server on loopback.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::http::{Response, send, try_send};
use common::server::{ADMIN, Server, start};
use serde_json::json;

impl Server {
    /// A request with extra headers and no bearer token.
    fn req(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Response {
        try_send(self.addr, method, path, None, body, headers).unwrap()
    }

    /// A GET with a session cookie.
    fn get_with_cookie(&self, path: &str, session: &str) -> Response {
        self.req("GET", path, None, &[("Cookie", &format!("budgit_session={session}"))])
    }

    /// Signs in with a token and returns the session id the cookie holds.
    fn session(&self, token: &str) -> String {
        let (r, cookie) = self.sign_in(token);
        assert_eq!(r.status, 200, "{}", r.body);
        session_id(&cookie.expect("a session cookie"))
    }

    /// Signs out the session.
    fn sign_out(&self, session: &str) -> Response {
        let cookie = format!("budgit_session={session}");
        self.req("DELETE", "/console/session", None, &[("X-Budgit-Console", "1"), ("Cookie", &cookie)])
    }

    /// Signs in and returns the `Set-Cookie` header.
    fn sign_in(&self, token: &str) -> (Response, Option<String>) {
        let body = json!({ "token": token }).to_string();
        let r = self.req(
            "POST",
            "/console/session",
            Some(&body),
            &[("Content-Type", "application/json"), ("X-Budgit-Console", "1")],
        );
        let cookie = r.header("set-cookie").map(str::to_string);
        (r, cookie)
    }

    fn user_token(&self, email: &str) -> String {
        let csv = format!("email\n{email}\n");
        let r = send(self.addr, "POST", "/v1/users/import", Some(ADMIN), Some(&csv));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = send(self.addr, "POST", &format!("/v1/users/{email}/tokens"), Some(ADMIN), None);
        assert!(r.status < 300, "{}", r.body);
        r.json()["token"].as_str().unwrap().to_string()
    }
}

fn location(r: &Response) -> &str {
    r.header("location").unwrap_or("")
}

/// The session id in a `Set-Cookie` value.
fn session_id(set_cookie: &str) -> String {
    let value = set_cookie.strip_prefix("budgit_session=").unwrap();
    value.split(';').next().unwrap().to_string()
}

#[test]
fn cookie_sign_in_opens_the_admin_view_and_the_api() {
    let s = start();
    let (r, cookie) = s.sign_in(ADMIN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "role": "admin", "user": null }));
    let cookie = cookie.expect("a session cookie");
    for flag in ["budgit_session=bgs_", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    // the cookie holds a session id, never the token; nor is the token echoed in the body
    assert!(!cookie.contains(ADMIN) && !r.body.contains(ADMIN));
    let session = session_id(&cookie);

    let page = s.get_with_cookie("/console/", &session);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("/assets/admin.js"));
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // the cookie authenticates API reads too
    let limits = s.get_with_cookie("/v1/limits", &session);
    assert_eq!(limits.status, 200, "{}", limits.body);
    // the token itself is not a session
    assert_eq!(s.get_with_cookie("/v1/limits", ADMIN).status, 401);

    // sign out clears the cookie
    let out = s.sign_out(&session);
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[test]
fn a_signed_out_session_replayed_gets_401() {
    let s = start();
    let user = s.user_token("cy@x.com");
    for token in [ADMIN, user.as_str()] {
        let session = s.session(token);
        let other = s.session(token);
        assert_eq!(s.get_with_cookie("/v1/me", &session).status, 200);
        assert_eq!(s.sign_out(&session).status, 204);
        // a copy of the cookie kept from before the sign-out opens nothing, API or page
        let r = s.get_with_cookie("/v1/me", &session);
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("auth/unauthorized")));
        let page = s.get_with_cookie("/console/me", &session);
        assert_eq!((page.status, location(&page)), (303, "/console/login"));
        // another session of the same token is untouched
        assert_eq!(s.get_with_cookie("/v1/me", &other).status, 200);
    }
    // revoking a user's tokens ends their sessions too
    let session = s.session(&user);
    let r = send(s.addr, "DELETE", "/v1/users/cy@x.com/tokens", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get_with_cookie("/v1/me", &session).status, 401);
}

#[test]
fn a_bad_token_gets_401_and_no_cookie() {
    let s = start();
    let (r, cookie) = s.sign_in("not-a-token");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "auth/unauthorized");
    assert_eq!(cookie, None);
    // an unknown cookie opens nothing and is dropped on the way to the login page
    let page = s.get_with_cookie("/console/", "not-a-token");
    assert_eq!((page.status, location(&page)), (303, "/console/login"));
    assert!(page.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(s.get_with_cookie("/v1/limits", "not-a-token").status, 401);
    // signing in needs the console header (no cross-site sign-in with a planted token)
    let body = json!({ "token": ADMIN }).to_string();
    let r = s.req("POST", "/console/session", Some(&body), &[("Content-Type", "application/json")]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/csrf")));
}

#[test]
fn pages_redirect_by_role() {
    let s = start();
    let user = s.user_token("ana@x.com");
    let (r, cookie) = s.sign_in(&user);
    assert_eq!(r.json(), json!({ "role": "user", "user": "ana@x.com" }));
    let user = session_id(&cookie.unwrap());

    // a user session never gets the admin view
    let admin_view = s.get_with_cookie("/console/", &user);
    assert_eq!((admin_view.status, location(&admin_view)), (303, "/console/me"));
    assert!(!admin_view.body.contains("admin.js"));
    let me = s.get_with_cookie("/console/me", &user);
    assert_eq!(me.status, 200);
    assert!(me.body.contains("/assets/me.js"));
    // nor admin data through the API
    assert_eq!(s.get_with_cookie("/v1/audit", &user).status, 403);

    // no session: to the login page
    for path in ["/console/", "/console/me"] {
        let r = s.req("GET", path, None, &[]);
        assert_eq!((r.status, location(&r)), (303, "/console/login"), "{path}");
        assert_eq!(r.header("set-cookie"), None, "{path}");
    }
    let login = s.req("GET", "/console/login", None, &[]);
    assert_eq!(login.status, 200);
    assert!(login.body.contains("/assets/login.js"));
    for path in ["/", "/console"] {
        let r = s.req("GET", path, None, &[]);
        assert_eq!((r.status, location(&r)), (303, "/console/"), "{path}");
    }
}

#[test]
fn cookie_writes_without_the_console_header_are_refused() {
    let s = start();
    let user = s.session(&s.user_token("bo@x.com"));
    let cookie = format!("budgit_session={user}");
    let body = json!({ "credits": "50", "days": 3, "reason": "release week" }).to_string();
    let json = ("Content-Type", "application/json");
    let r = s.req("POST", "/v1/requests", Some(&body), &[("Cookie", &cookie), json]);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/csrf")));
    // nothing was stored
    let mine = s.get_with_cookie("/v1/requests", &user);
    assert_eq!(mine.json()["data"], json!([]));
    // the same write from the console's own script goes through
    let r =
        s.req("POST", "/v1/requests", Some(&body), &[("Cookie", &cookie), json, ("X-Budgit-Console", "1")]);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.get_with_cookie("/v1/requests", &user).json()["data"][0]["user"], "bo@x.com");
}

#[test]
fn assets_are_embedded_with_types_etags_and_revalidation() {
    let s = start();
    for (path, ty) in [
        ("/assets/console.css", "text/css; charset=utf-8"),
        ("/assets/admin.js", "text/javascript; charset=utf-8"),
        // the admin view's panels, one module each, imported by admin.js
        ("/assets/admin/overview.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/reconciler.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/trends.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/paged.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/users.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/breakdown.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/activity.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/teams.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/proposals.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/requests.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/overrides.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/defaults.js", "text/javascript; charset=utf-8"),
        ("/assets/admin/runs.js", "text/javascript; charset=utf-8"),
        ("/assets/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("/assets/vendor/uPlot.min.css", "text/css; charset=utf-8"),
        ("/assets/vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let r = s.req("GET", path, None, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert!(!r.body.is_empty(), "{path}");
        let etag = r.header("etag").unwrap().to_string();
        let again = s.req("GET", path, None, &[("If-None-Match", &etag)]);
        assert_eq!((again.status, again.body.as_str()), (304, ""), "{path}");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
    }
    assert!(s.req("GET", "/assets/vendor/uPlot.LICENSE", None, &[]).body.contains("MIT License"));
    let missing = s.req("GET", "/assets/../Cargo.toml", None, &[]);
    assert_eq!(missing.status, 404);
    let missing = s.req("GET", "/assets/nope.js", None, &[]);
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (404, Some("console/no-asset")));
    // the type check's files live beside the scripts but are never served
    for path in
        ["/assets/package.json", "/assets/tsconfig.json", "/assets/globals.d.ts", "/assets/admin/../admin.js"]
    {
        let r = s.req("GET", path, None, &[]);
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("console/no-asset")), "{path}");
    }
}

/// A server whose sessions read a clock the test moves by hand (seconds), with a
/// 10-minute idle timeout and a 1-hour lifetime.
fn start_with_clock() -> (Server, std::sync::Arc<std::sync::atomic::AtomicI64>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let t = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp()));
    let read = t.clone();
    let (s, ()) = common::server::start_configured(|_, config| {
        config.sessions = budgit_service::sessions::SessionOptions {
            idle: std::time::Duration::from_secs(600),
            absolute: std::time::Duration::from_secs(3600),
            cookie_secure: false,
            clock: Arc::new(move || {
                chrono::DateTime::from_timestamp(read.load(Ordering::SeqCst), 0).unwrap()
            }),
        };
    });
    (s, t)
}

#[test]
fn sessions_expire_when_idle_and_at_their_lifetime() {
    use std::sync::atomic::Ordering;
    let (s, t) = start_with_clock();
    let idle = s.session(ADMIN);
    let busy = s.session(ADMIN);
    // ten minutes less a second later: both alive, and `busy` is used every 9 minutes
    t.fetch_add(599, Ordering::SeqCst);
    assert_eq!(s.get_with_cookie("/v1/limits", &busy).status, 200);
    t.fetch_add(1, Ordering::SeqCst);
    // `idle` was last used 600 s ago: ended, with a code that says why
    let r = s.get_with_cookie("/v1/limits", &idle);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("auth/session-expired")));
    let page = s.get_with_cookie("/console/", &idle);
    assert_eq!((page.status, location(&page)), (303, "/console/login"));
    assert!(page.header("set-cookie").unwrap().contains("Max-Age=0"));
    for _ in 0..5 {
        t.fetch_add(540, Ordering::SeqCst);
        assert_eq!(s.get_with_cookie("/v1/limits", &busy).status, 200);
    }
    // 59:59 after sign-in it still works; at one hour it ends however busy it is
    t.fetch_add(3599 - 600 - 5 * 540, Ordering::SeqCst);
    assert_eq!(s.get_with_cookie("/v1/limits", &busy).status, 200);
    t.fetch_add(1, Ordering::SeqCst);
    let r = s.get_with_cookie("/v1/limits", &busy);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("auth/session-expired")));
    // the token itself still signs in
    assert_eq!(s.get_with_cookie("/v1/limits", &s.session(ADMIN)).status, 200);
}

#[test]
fn the_admin_token_rotates_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budgit.db");
    let (s, ()) = common::server::start_configured(|_, config| config.db = db.clone());
    let admin_session = s.session(ADMIN);
    let user_session = s.session(&s.user_token("di@x.com"));
    // a short chosen token is refused, and so is a user's rotation
    let weak = json!({ "token": "short" }).to_string();
    let r = send(s.addr, "POST", "/v1/admin/token", Some(ADMIN), Some(&weak));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("auth/weak-token")));
    let r = s.req(
        "POST",
        "/v1/admin/token",
        None,
        &[("Cookie", &format!("budgit_session={user_session}")), ("X-Budgit-Console", "1")],
    );
    assert_eq!(r.status, 403);

    let r = send(s.addr, "POST", "/v1/admin/token", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sessions_revoked"], 1);
    let new = r.json()["token"].as_str().unwrap().to_string();
    assert!(new.starts_with("bgt_admin_") && new.len() >= 32);
    // the old token and its session stop working at once; the user's session does not
    assert_eq!(send(s.addr, "GET", "/v1/limits", Some(ADMIN), None).status, 401);
    assert_eq!(s.get_with_cookie("/v1/limits", &admin_session).status, 401);
    assert_eq!(s.get_with_cookie("/v1/me", &user_session).status, 200);
    assert_eq!(send(s.addr, "GET", "/v1/limits", Some(&new), None).status, 200);
    assert_eq!(s.sign_in(ADMIN).0.status, 401);
    // a chosen token: the caller knows it, so it is not echoed
    let chosen = "chosen-admin-token-0123456789abcdef-xyz";
    let r =
        send(s.addr, "POST", "/v1/admin/token", Some(&new), Some(&json!({ "token": chosen }).to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json().get("token"), None);
    assert_eq!(send(s.addr, "GET", "/v1/limits", Some(chosen), None).status, 200);
    // an old token cannot be rotated back in
    let back = json!({ "token": ADMIN }).to_string();
    let r = send(s.addr, "POST", "/v1/admin/token", Some(chosen), Some(&back));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (409, Some("auth/token-reused")));
    drop(s);

    // a restart that still configures a rotated-out token refuses to start
    let mut config = common::server::config(dir.path());
    config.db = db.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let err = rt.block_on(budgit_service::start(config.clone())).err().expect("a retired token is refused");
    assert!(err.to_string().contains("rotated out"), "{err}");
    // without one, the stored (current) token is the admin
    config.admin_token = None;
    let running = rt.block_on(budgit_service::start(config)).unwrap();
    assert_eq!(send(running.addr, "GET", "/v1/limits", Some(chosen), None).status, 200);
    running.abort();
}

#[test]
fn a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::server::config(dir.path());
    config.admin_token = Some("x".repeat(31));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(budgit_service::start(config.clone())).err().expect("a weak token is refused");
    assert!(err.to_string().contains("31 characters long; it needs at least 32"), "{err}");
    config.admin_token = Some("x".repeat(32));
    rt.block_on(budgit_service::start(config)).unwrap().abort();
}

#[test]
fn the_cookie_is_secure_when_configured_or_behind_tls() {
    let (s, ()) = common::server::start_configured(|_, config| config.sessions.cookie_secure = true);
    let (_, cookie) = s.sign_in(ADMIN);
    assert!(cookie.unwrap().ends_with("; Secure"));
    let session = s.session(ADMIN);
    assert!(s.sign_out(&session).header("set-cookie").unwrap().ends_with("; Secure"));
    // not configured, but a TLS-terminating proxy says the browser used https
    let plain = start();
    let body = json!({ "token": ADMIN }).to_string();
    let headers =
        [("Content-Type", "application/json"), ("X-Budgit-Console", "1"), ("X-Forwarded-Proto", "https")];
    let r = plain.req("POST", "/console/session", Some(&body), &headers);
    assert!(r.header("set-cookie").unwrap().ends_with("; Secure"));
    assert!(!plain.sign_in(ADMIN).1.unwrap().contains("Secure"));
}
