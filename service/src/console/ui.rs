//! The admin console's pages and assets, embedded in the binary, and its browser sessions.
//!
//! Pages are static HTML: every number on them is fetched from the API by the
//! page's script with the session cookie, never rendered into the HTML. Which
//! page a visitor may open depends on the session: `/console/` is the admin
//! view (a user session goes to `/console/me`, no session to `/console/login`).
//! Assets carry an ETag and are revalidated on each load, so a new binary never
//! leaves a browser running old scripts. Scripts are ES modules served as written (no
//! build step): the admin view's entry `admin.js` imports one module per panel from
//! `admin/`, all of them import `common.js`; `assets/package.json` holds only their type
//! check (`tsc` over the JSDoc types), which is never part of the binary.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::App;
use crate::auth::{self, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sessions;

/// The console's content security policy: everything from this origin, nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The login page.
const LOGIN_HTML: &str = include_str!("assets/login.html");
/// The admin view.
const ADMIN_HTML: &str = include_str!("assets/admin.html");
/// The user view.
const ME_HTML: &str = include_str!("assets/me.html");

/// An embedded file under `/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Embeds each named file of `assets/` under its name, typed by its extension, so a
/// new file is one more name in the list below.
macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: content_type($name),
            body: include_bytes!(concat!("assets/", $name)),
        }),*]
    };
}

/// Every file served under `/assets/`.
const ASSETS: &[Asset] = assets![
    "console.css",
    "common.js",
    "chart.js",
    "login.js",
    "admin.js",
    "admin/overview.js",
    "admin/reconciler.js",
    "admin/trends.js",
    "admin/paged.js",
    "admin/users.js",
    "admin/breakdown.js",
    "admin/activity.js",
    "admin/teams.js",
    "admin/proposals.js",
    "admin/requests.js",
    "admin/links.js",
    "admin/mix.js",
    "admin/team.js",
    "admin/person.js",
    "admin/drill.js",
    "admin/overrides.js",
    "admin/defaults.js",
    "admin/runs.js",
    "admin/value.js",
    "admin/range.js",
    "me.js",
    "icon.svg",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/uPlot.LICENSE",
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";

/// An asset's content type from its name's extension; anything else (a licence) is
/// plain text, which `nosniff` keeps the browser from running.
const fn content_type(name: &str) -> &'static str {
    if ends_with(name, ".js") {
        JS
    } else if ends_with(name, ".css") {
        CSS
    } else if ends_with(name, ".svg") {
        SVG
    } else {
        TEXT
    }
}

/// `str::ends_with`, which is not `const`.
const fn ends_with(name: &str, suffix: &str) -> bool {
    let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
    if suffix.len() > name.len() {
        return false;
    }
    let start = name.len() - suffix.len();
    let mut i = 0;
    while i < suffix.len() {
        if name[start + i] != suffix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Each asset's strong ETag (a prefix of its SHA-256), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS.iter().map(|a| format!("\"{}\"", auth::hex(&Sha256::digest(a.body)[..12]))).collect()
});

/// The console's routes, merged into the API router.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(|| async { no_store(Redirect::to("/console/")) }))
        .route("/console", get(|| async { no_store(Redirect::to("/console/")) }))
        .route("/console/", get(admin_page))
        .route("/console/login", get(|| async { page(LOGIN_HTML) }))
        .route("/console/me", get(me_page))
        .route("/console/session", axum::routing::post(sign_in).delete(sign_out))
        .route("/assets/{*file}", get(asset))
}

/// Adds `Cache-Control: no-store` (the answer depends on the session).
fn no_store(r: impl IntoResponse) -> Response {
    let mut r = r.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An HTML page with the console's security headers.
fn page(html: &'static str) -> Response {
    let mut r = no_store(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html));
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// What a page request's session is.
enum Session {
    /// No session cookie or header.
    None,
    /// A cookie or header that no longer names a session or token (expired, signed out,
    /// revoked, or another server's).
    Stale,
    /// A valid session.
    Valid(Principal),
}

fn session(app: &App, headers: &HeaderMap) -> Session {
    match app.tokens.authenticate(headers) {
        Ok(p) => Session::Valid(p),
        Err(_) if auth::session_cookie(headers).is_none() && !headers.contains_key(header::AUTHORIZATION) => {
            Session::None
        }
        Err(_) => Session::Stale,
    }
}

/// True when the session cookie must be `Secure`: configured so, or the request came
/// through a TLS-terminating proxy that says so.
fn secure_cookie(app: &App, headers: &HeaderMap) -> bool {
    app.session_options.cookie_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// To the login page, dropping a stale cookie on the way.
fn to_login(stale: bool, secure: bool) -> Response {
    let mut r = no_store(Redirect::to("/console/login"));
    if stale && let Ok(v) = HeaderValue::from_str(&auth::session_clear_cookie(secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /console/`: the admin view, for an admin session only.
async fn admin_page(State(app): State<App>, headers: HeaderMap) -> Response {
    match session(&app, &headers) {
        Session::Valid(Principal::Admin) => page(ADMIN_HTML),
        Session::Valid(Principal::User(_)) => no_store(Redirect::to("/console/me")),
        Session::None => to_login(false, false),
        Session::Stale => to_login(true, secure_cookie(&app, &headers)),
    }
}

/// `GET /console/me`: the user view, for any session.
async fn me_page(State(app): State<App>, headers: HeaderMap) -> Response {
    match session(&app, &headers) {
        Session::Valid(_) => page(ME_HTML),
        Session::None => to_login(false, false),
        Session::Stale => to_login(true, secure_cookie(&app, &headers)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    token: String,
}

/// Refuses a session change without the console header: a cross-site form could
/// otherwise sign a visitor in with someone else's token.
fn require_console_header(headers: &HeaderMap) -> ApiResult<()> {
    if auth::has_console_header(headers) { Ok(()) } else { Err(auth::csrf_refused()) }
}

/// `POST /console/session`: checks a token and opens a session: a new random id in
/// the cookie (stored hashed), never the token itself.
async fn sign_in(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require_console_header(&headers)?;
    let req: SignIn = crate::api::json_body(body)?;
    let who = app.tokens.principal(req.token.trim())?;
    let (id, h) = sessions::mint()?;
    let opts = &app.session_options;
    let (idle, absolute) = (opts.idle, opts.absolute);
    let now = app.tokens.sessions.now();
    let (app2, principal) = (app.clone(), who.clone());
    app.store
        .write(move |tx| {
            sessions::store_insert(tx, &h, &principal, now, idle, absolute)?;
            let after: crate::store::After = Box::new(move |ok| {
                if ok {
                    app2.tokens.sessions.insert(h, principal, now);
                }
            });
            Ok(((), Some(after)))
        })
        .await?;
    let cookie = auth::session_set_cookie(&id, absolute.as_secs(), secure_cookie(&app, &headers));
    let cookie = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::store(&"the session cookie could not be set"))?;
    let body = match &who {
        Principal::Admin => serde_json::json!({ "role": "admin", "user": null }),
        Principal::User(u) => serde_json::json!({ "role": "user", "user": u }),
    };
    let mut r = no_store(axum::Json(body));
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `DELETE /console/session`: signs out: the session ends on the server (a copy of the
/// cookie opens nothing afterwards) and the cookie is cleared.
async fn sign_out(State(app): State<App>, headers: HeaderMap) -> ApiResult<Response> {
    require_console_header(&headers)?;
    if let Some(id) = auth::session_cookie(&headers) {
        let h = auth::hash(id);
        let app2 = app.clone();
        app.store
            .write(move |tx| {
                sessions::store_delete(tx, &h)?;
                let after: crate::store::After = Box::new(move |ok| {
                    if ok {
                        app2.tokens.sessions.remove(&h);
                    }
                });
                Ok(((), Some(after)))
            })
            .await?;
    }
    let mut r = no_store(StatusCode::NO_CONTENT);
    let cookie = HeaderValue::from_str(&auth::session_clear_cookie(secure_cookie(&app, &headers)))
        .map_err(|_| ApiError::store(&"the session cookie could not be cleared"))?;
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `GET /assets/{file}`: an embedded file, `304` when the browser's copy is current.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        return ApiError::not_found("console/no-asset", format!("no asset `{}`", crate::api::shorten(&file)))
            .into_response();
    };
    let (a, etag) = (&ASSETS[i], ETAGS.get(i).map_or("", String::as_str));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let mut r = if fresh { status.into_response() } else { (status, a.body).into_response() };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_with_a_type_and_a_distinct_etag() {
        let mut seen = std::collections::BTreeSet::new();
        for (a, etag) in ASSETS.iter().zip(ETAGS.iter()) {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(a.content_type.contains('/'), "{}", a.name);
            assert!(etag.len() == 26 && etag.starts_with('"'), "{etag}");
            assert!(seen.insert(etag.clone()), "{} shares an etag", a.name);
        }
        assert_eq!(seen.len(), ASSETS.len());
    }

    #[test]
    fn pages_load_their_scripts_and_nothing_from_elsewhere() {
        for (html, script) in [(LOGIN_HTML, "login.js"), (ADMIN_HTML, "admin.js"), (ME_HTML, "me.js")] {
            assert!(html.contains(&format!("/assets/{script}")), "{script}");
            assert!(!html.contains("http://") && !html.contains("https://"), "{script}: an outside URL");
            // every referenced asset exists
            for part in html.split("/assets/").skip(1) {
                let name: String = part.chars().take_while(|c| !matches!(c, '"' | '\'' | '?')).collect();
                assert!(ASSETS.iter().any(|a| a.name == name), "`{name}` is not embedded");
            }
        }
        assert!(ASSETS.iter().any(|a| a.name == "vendor/uPlot.LICENSE"));
    }

    /// The files under `assets/` that are not served: the type check's own (its npm
    /// manifest, lock, configuration and the declarations of the page's globals) and the
    /// vendored libraries' notes.
    const NOT_SERVED: &[&str] =
        &["package.json", "package-lock.json", "tsconfig.json", "globals.d.ts", "vendor/README.md"];

    /// Every file under `dir`, as a path relative to `root` with `/` separators;
    /// `node_modules` (the type check's install) is left out.
    fn files_under(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            if path.is_dir() {
                files_under(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(
                    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                );
            }
        }
    }

    #[test]
    fn every_file_of_the_assets_directory_is_embedded_or_known_not_to_be_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/assets");
        let mut files = Vec::new();
        files_under(&root, &root, &mut files);
        let pages = ["login.html", "admin.html", "me.html"];
        for file in &files {
            let known = ASSETS.iter().any(|a| a.name == file.as_str())
                || pages.contains(&file.as_str())
                || NOT_SERVED.contains(&file.as_str());
            assert!(known, "assets/{file} is neither embedded in ASSETS nor listed as not served");
        }
        for a in ASSETS {
            assert!(files.iter().any(|f| f == a.name), "{} is embedded but not in assets/", a.name);
        }
    }

    /// The module specifiers of a script's static imports (`from './x.js'`); JSDoc's
    /// `import('./x.js')` types are comments the browser never loads.
    fn imports(script: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for quote in ['\'', '"'] {
            for (i, _) in script.match_indices(&format!("from {quote}")) {
                let rest = &script[i + 6..];
                if let Some(end) = rest.find(quote) {
                    out.push(&rest[..end]);
                }
            }
        }
        out
    }

    /// `spec` (relative to the module `from`, both asset names) as an asset name.
    fn resolve(from: &str, spec: &str) -> Option<String> {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop()?;
                }
                s => parts.push(s),
            }
        }
        Some(parts.join("/"))
    }

    #[test]
    fn every_module_import_resolves_to_an_embedded_script() {
        let mut seen = 0;
        for a in ASSETS.iter().filter(|a| a.content_type == JS && !a.name.starts_with("vendor/")) {
            let script = std::str::from_utf8(a.body).unwrap();
            for spec in imports(script) {
                // the browser resolves only URLs: a bare name (`uplot`) would need a bundler
                assert!(
                    spec.starts_with("./") || spec.starts_with("../"),
                    "{}: bare import `{spec}`",
                    a.name
                );
                let target =
                    resolve(a.name, spec).unwrap_or_else(|| panic!("{}: `{spec}` leaves /assets/", a.name));
                assert!(
                    ASSETS.iter().any(|b| b.name == target && b.content_type == JS),
                    "{}: `{spec}` ({target}) is not an embedded script",
                    a.name
                );
                seen += 1;
            }
        }
        // the admin view is split into one module per panel, all imported by its entry
        let admin = ASSETS.iter().find(|a| a.name == "admin.js").unwrap();
        let panels = imports(std::str::from_utf8(admin.body).unwrap())
            .into_iter()
            .filter(|s| s.starts_with("./admin/"))
            .count();
        assert!(panels >= 8, "admin.js imports {panels} panel modules");
        assert!(seen > panels, "{seen} imports checked");
    }

    #[test]
    fn pages_preload_every_module_their_entry_imports() {
        // without the preloads the browser finds the modules one import level at a time
        for (html, entry) in [(ADMIN_HTML, "admin.js"), (ME_HTML, "me.js"), (LOGIN_HTML, "login.js")] {
            let mut graph = std::collections::BTreeSet::new();
            let mut todo = vec![entry.to_string()];
            while let Some(name) = todo.pop() {
                let a = ASSETS.iter().find(|a| a.name == name).unwrap();
                for spec in imports(std::str::from_utf8(a.body).unwrap()) {
                    let target = resolve(&name, spec).unwrap();
                    if graph.insert(target.clone()) {
                        todo.push(target);
                    }
                }
            }
            assert!(graph.contains("common.js"), "{entry}: {graph:?}");
            for module in &graph {
                let preload = format!("<link rel=\"modulepreload\" href=\"/assets/{module}\">");
                // the login page is one small module and common.js: no preload needed
                if entry != "login.js" {
                    assert!(html.contains(&preload), "{entry}: no `{preload}`");
                }
            }
            // and nothing preloaded that the page does not import
            for part in html.split("rel=\"modulepreload\" href=\"/assets/").skip(1) {
                let name: String = part.chars().take_while(|c| *c != '"').collect();
                assert!(graph.contains(&name), "{entry}: `{name}` is preloaded but never imported");
            }
        }
    }
}
