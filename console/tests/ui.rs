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
    fn get_with_cookie(&self, path: &str, token: &str) -> Response {
        self.req("GET", path, None, &[("Cookie", &format!("budgit_session={token}"))])
    }

    /// Signs in and returns the token the cookie holds, checking the cookie's flags.
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

#[test]
fn cookie_sign_in_opens_the_admin_view_and_the_api() {
    let s = start();
    let (r, cookie) = s.sign_in(ADMIN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "role": "admin", "user": null }));
    let cookie = cookie.expect("a session cookie");
    for flag in [&format!("budgit_session={ADMIN}") as &str, "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // the token is never echoed in the body
    assert!(!r.body.contains(ADMIN));

    let page = s.get_with_cookie("/console/", ADMIN);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("/assets/admin.js"));
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // the cookie authenticates API reads too
    let limits = s.get_with_cookie("/v1/limits", ADMIN);
    assert_eq!(limits.status, 200, "{}", limits.body);

    // sign out clears the cookie
    let out = s.req("DELETE", "/console/session", None, &[("X-Budgit-Console", "1")]);
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
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
    let (r, _) = s.sign_in(&user);
    assert_eq!(r.json(), json!({ "role": "user", "user": "ana@x.com" }));

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
    let user = s.user_token("bo@x.com");
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
}
