//! The per-user cost report: `GET /v1/organizations/analytics/user_cost_report`.
//!
//! Shapes from the official `anthropic` SDK: each row a `BetaAnalyticsCostUsersItem`
//! (an `actor` of type `user_actor`, `amount` and `list_amount` as decimal strings
//! in fractional cents, `currency`, the bucket's `starting_at`/`ending_at`, and
//! `product`/`model` when grouped by them), each page a `SyncReportPageCursor`
//! (`data`, `has_more`, `next_page`, `data_refreshed_at`). Parameters as the SDK
//! sends them: `starting_at` (required), `ending_at`, `bucket_width` (`1d` here),
//! `group_by[]`, `limit` (1–1000, default 20) and the `page` cursor. A range is at
//! most 31 days and needs `ending_at` when bucketed, as the SDK documents.
//!
//! Rows come ranked by amount, largest first, as the vendor ranks them, so a
//! client that expects them in time order is caught. `POST /_fake/costs` seeds
//! costs (one entry per user, UTC day, product and model).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Shared, error, first, gate, lock, page_size, pairs};

/// Decimal places the fake keeps in amounts (fractional cents).
const SCALE: u32 = 12;
/// The longest range one call may ask for.
const MAX_RANGE_DAYS: i64 = 31;

/// A report row's identity: bucket start, user id, product and model (when grouped by them).
type RowKey = (i64, String, Option<String>, Option<String>);

/// Seeded cost of one user on one UTC day, for one product and model.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Cost {
    /// The member's email: the member must exist.
    #[serde(default)]
    email: Option<String>,
    /// Or a user id directly (a deleted user, no longer a member).
    #[serde(default)]
    user_id: Option<String>,
    date: NaiveDate,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// Fractional cents, decimal text.
    amount: String,
}

/// A stored cost, its amount scaled to [`SCALE`] decimals.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    user_id: String,
    email: Option<String>,
    name: Option<String>,
    deleted: bool,
    day: i64,
    product: Option<String>,
    model: Option<String>,
    amount: i128,
}

fn parse_amount(text: &str) -> Option<i128> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || frac.len() > SCALE as usize
        || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let frac: i128 = if frac.is_empty() { 0 } else { format!("{frac:0<12}").parse().ok()? };
    whole.checked_mul(10i128.pow(SCALE))?.checked_add(frac)
}

fn amount_text(scaled: i128) -> String {
    let unit = 10i128.pow(SCALE);
    let (whole, frac) = (scaled / unit, scaled % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:012}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `POST /_fake/costs`: adds costs (a JSON array of [`Cost`]).
pub(super) async fn add_costs(
    State(state): State<Shared>,
    axum::Json(new): axum::Json<Vec<Cost>>,
) -> Response {
    let mut org = lock(&state);
    let mut stored = Vec::with_capacity(new.len());
    for c in new {
        let Some(amount) = parse_amount(&c.amount) else {
            return (StatusCode::BAD_REQUEST, format!("bad amount {}", c.amount)).into_response();
        };
        let member =
            c.email.as_deref().and_then(|e| org.members.values().find(|m| m.email.eq_ignore_ascii_case(e)));
        let (user_id, email, name, deleted) = match (member, c.user_id) {
            (Some(m), _) => (m.id.clone(), Some(m.email.clone()), Some(m.name.clone()), false),
            (None, Some(id)) => (id, c.email.clone(), None, true),
            (None, None) => return (StatusCode::BAD_REQUEST, "no such member").into_response(),
        };
        let Some(midnight) = c.date.and_hms_opt(0, 0, 0) else {
            return (StatusCode::BAD_REQUEST, "bad date").into_response();
        };
        stored.push(Stored {
            user_id,
            email,
            name,
            deleted,
            day: midnight.and_utc().timestamp(),
            product: c.product,
            model: c.model,
            amount,
        });
    }
    org.costs.extend(stored);
    StatusCode::NO_CONTENT.into_response()
}

fn rfc3339(secs: i64) -> Value {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// `GET /v1/organizations/analytics/user_cost_report`.
pub(super) async fn user_cost_report(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let path = "/v1/organizations/analytics/user_cost_report";
    if let Some(r) = gate(&state, &method, path, q.as_deref().unwrap_or(""), &headers, b"").await {
        return r;
    }
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    let p = pairs(&q);
    let size = match page_size(&p) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let time = |key: &str| first(&p, key).map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.timestamp()));
    let start = match time("starting_at") {
        Some(Ok(t)) => t,
        Some(Err(_)) => return bad("starting_at must be an RFC 3339 timestamp"),
        None => return bad("starting_at is required"),
    };
    let bucketed = match first(&p, "bucket_width") {
        None => false,
        Some("1d") => true,
        Some(_) => return bad("this fake serves bucket_width=1d only"),
    };
    let end = match time("ending_at") {
        Some(Ok(t)) => t,
        Some(Err(_)) => return bad("ending_at must be an RFC 3339 timestamp"),
        None if bucketed => return bad("ending_at is required when bucket_width is set"),
        None => start + MAX_RANGE_DAYS * 86_400,
    };
    if end <= start || end - start > MAX_RANGE_DAYS * 86_400 {
        return bad("the range must be more than nothing and at most 31 days");
    }
    let groups: Vec<&str> = p.iter().filter(|(k, _)| k == "group_by").map(|(_, v)| v.as_str()).collect();
    let (by_product, by_model) = (groups.contains(&"product"), groups.contains(&"model"));
    let offset = match first(&p, "page") {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("page_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return bad("page is not a cursor this report gave"),
        },
    };

    let org = lock(&state);
    // (bucket start, user id, product, model) → (the stored row for the actor, amount, rows)
    let mut sums: BTreeMap<RowKey, (Stored, i128, u64)> = BTreeMap::new();
    for c in org.costs.iter().filter(|c| c.day + 86_400 > start && c.day < end) {
        let bucket = if bucketed { c.day } else { start };
        let product = by_product.then(|| c.product.clone()).flatten();
        let model = by_model.then(|| c.model.clone()).flatten();
        let entry = sums.entry((bucket, c.user_id.clone(), product, model)).or_insert((c.clone(), 0, 0));
        entry.1 += c.amount;
        entry.2 += 1;
    }
    let mut rows: Vec<_> = sums.into_iter().collect();
    rows.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
    let total = rows.len();
    let data: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(size)
        .map(|((bucket, user_id, product, model), (c, amount, requests))| {
            json!({
                "actor": {
                    "type": "user_actor",
                    "user_id": user_id,
                    "email_address": c.email,
                    "name": if c.deleted { Some("Deleted User".to_string()) } else { c.name },
                    "deleted": c.deleted,
                },
                "amount": amount_text(amount),
                "list_amount": amount_text(amount),
                "currency": "USD",
                "starting_at": if bucketed { rfc3339(bucket) } else { Value::Null },
                "ending_at": if bucketed { rfc3339(bucket + 86_400) } else { Value::Null },
                "product": product,
                "model": model,
                "cost_type": null,
                "requests": requests,
            })
        })
        .collect();
    let next = offset + size;
    let has_more = next < total;
    axum::Json(json!({
        "data": data,
        "has_more": has_more,
        "next_page": if has_more { Some(format!("page_{next}")) } else { None },
        "data_refreshed_at": rfc3339(Utc::now().timestamp()),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_digits() {
        assert_eq!(parse_amount("1234.5678").map(amount_text), Some("1234.5678".to_string()));
        assert_eq!(parse_amount("7").map(amount_text), Some("7".to_string()));
        assert_eq!(parse_amount("0.000000000001").map(amount_text), Some("0.000000000001".to_string()));
        assert_eq!(parse_amount("1.0000000000001"), None);
        assert_eq!(parse_amount("-1"), None);
    }
}
