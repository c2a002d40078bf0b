//! The admin token's rotation: a new token takes effect at once, without a restart.
//!
//! The old token stops working and every console session signed in with it ends.
//! Its hash is kept in `admin_tokens_retired`, so a restart whose environment still
//! holds it refuses to start instead of quietly accepting it again.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, Principal, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::{App, MIN_ADMIN_TOKEN_CHARS, sessions, store};

/// True when `h` is the hash of an admin token that was rotated out.
pub(crate) fn is_retired(conn: &Connection, h: &TokenHash) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM admin_tokens_retired WHERE hash = ?1", [h.as_slice()], |_| Ok(()))
        .optional()?
        .is_some())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// The new token; generated when absent.
    token: Option<String>,
}

/// `POST /v1/admin/token`: replaces the admin token (shown once), revoking the old one
/// and its console sessions.
pub async fn rotate(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let req: Rotate = super::json_body_or_default(body)?;
    let (token, generated) = match req.token {
        Some(t) => (t, false),
        None => (auth::generate("bgt_admin_")?, true),
    };
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(ApiError::bad_request(
            "auth/weak-token",
            format!(
                "the new admin token is {chars} characters long; it needs at least {MIN_ADMIN_TOKEN_CHARS}"
            ),
        ));
    }
    let new = auth::hash(&token);
    if app.tokens.is_admin(&new) {
        return Err(ApiError::conflict("auth/token-reused", "the new admin token is the current one"));
    }
    let (app2, now) = (app.clone(), crate::unix_now());
    let revoked = app
        .store
        .write(move |tx| {
            if is_retired(tx, &new)? {
                return Err(ApiError::conflict(
                    "auth/token-reused",
                    "the new admin token was rotated out before; choose another",
                ));
            }
            if let Some(old) = store::meta_get(tx, "admin_token_sha256")?.as_deref().and_then(auth::unhex) {
                tx.execute(
                    "INSERT OR IGNORE INTO admin_tokens_retired (hash, retired_at) VALUES (?1, ?2)",
                    (old.as_slice(), now),
                )?;
            }
            store::meta_set(tx, "admin_token_sha256", &auth::hex(&new))?;
            let revoked = sessions::store_revoke(tx, &Principal::Admin)?;
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject, new) VALUES (?1, 'admin', 'admin_token.rotate', 'admin', ?2)",
                (now, json!({ "sessions_revoked": revoked }).to_string()),
            )?;
            // the swap happens in commit order: no request sees the new token before it is durable
            let after: store::After = Box::new(move |ok| {
                if ok {
                    app2.tokens.set_admin(new);
                    app2.tokens.sessions.revoke(&Principal::Admin);
                }
            });
            Ok((revoked, Some(after)))
        })
        .await?;
    let (token, note) =
        if generated { (Some(token), Some("shown once; only its hash is stored")) } else { (None, None) };
    Ok(axum::Json(Rotated { token, note, sessions_revoked: revoked }).into_response())
}

/// What a rotation answers.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "RotatedToken")]
pub(crate) struct Rotated {
    /// The generated token, shown once (absent when the caller chose it).
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    /// The console sessions the old token had, now ended.
    sessions_revoked: usize,
}
