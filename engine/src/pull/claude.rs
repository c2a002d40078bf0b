//! Usage pull from Claude Enterprise: the per-user cost report of the Anthropic Admin API.
//!
//! `GET /v1/organizations/analytics/user_cost_report` with `bucket_width=1d`,
//! `group_by[]=product` and `group_by[]=model`, every `next_page`, in ranges of
//! at most 31 days (the longest the API answers). Each row names its user by id
//! and email (`actor`), and its amount as decimal text in fractional minor units
//! of the organisation's currency (`"1234.5678"` cents), converted to credits at
//! the Workspace's `vendors.claude-enterprise` rate. Rows come ranked by amount,
//! not by time, so the pulled rows are sorted before they are written.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Decimal, Fetch, Progress, PullError, PullOptions, Pulled, Row, Source, inexact_conversion, row_id,
    value_text,
};
use crate::credits::{Credits, MAX_USAGE_AMOUNT};
use crate::diag::{Code, Diagnostic};

/// The report's path.
pub(super) const USER_COST_REPORT: &str = "/v1/organizations/analytics/user_cost_report";

/// The longest range one call may ask for, in seconds (31 days).
const MAX_RANGE: i64 = 31 * 86_400;

fn rfc3339(secs: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn time(row: &Value, key: &str) -> Option<DateTime<Utc>> {
    let text = row.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Pulls every page of every range from `opts.start` to `opts.end`.
pub(super) fn pull(
    fetch: &mut dyn Fetch,
    opts: &PullOptions,
    mut progress: impl FnMut(Progress),
) -> Result<Pulled, PullError> {
    let path = USER_COST_REPORT;
    let bad = |reason: &str| PullError::Protocol { url: path.to_string(), reason: reason.to_string() };
    let mut out = Pulled::default();
    let mut no_email: std::collections::BTreeMap<String, Credits> = std::collections::BTreeMap::new();
    let mut inexact = (0u64, None::<String>);
    let mut buckets = std::collections::BTreeSet::new();
    let mut from = opts.start;
    while from < opts.end {
        let to = opts.end.min(from.saturating_add(MAX_RANGE));
        let (Some(starting_at), Some(ending_at)) = (rfc3339(from), rfc3339(to)) else {
            return Err(bad("the range is out of range"));
        };
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("starting_at", starting_at.clone()),
                ("ending_at", ending_at.clone()),
                ("bucket_width", "1d".to_string()),
                ("group_by[]", "product".to_string()),
                ("group_by[]", "model".to_string()),
                ("limit", opts.page_size.to_string()),
            ];
            if let Some(p) = &page {
                query.push(("page", p.clone()));
            }
            let doc = fetch.get(path, &query)?;
            let data = doc
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("the answer is not a report page (no `data` array)"))?;
            out.pages += 1;
            let mut through = from;
            for row in data {
                let (Some(s), Some(e)) = (time(row, "starting_at"), time(row, "ending_at")) else {
                    return Err(bad("a row has no RFC 3339 `starting_at` and `ending_at`"));
                };
                let actor = row.get("actor").ok_or_else(|| bad("a row has no `actor`"))?;
                let user_id = actor
                    .get("user_id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| bad("a row's actor has no `user_id`"))?;
                let currency = row.get("currency").and_then(Value::as_str).unwrap_or_default();
                if !currency.eq_ignore_ascii_case(&opts.rate.currency) {
                    return Err(PullError::Money(format!(
                        "the organisation reports `{currency}`, the Workspace declares `{}` for `{}`",
                        opts.rate.currency,
                        opts.source.name()
                    )));
                }
                // A decimal string in the SDK's types; read as text, never through a float.
                let value = row
                    .get("amount")
                    .and_then(Value::as_str)
                    .and_then(Decimal::parse)
                    .ok_or_else(|| bad("a row's `amount` is not a non-negative decimal string"))?;
                let Some((credits, exact)) = opts.rate.convert(value) else {
                    return Err(bad("a row's amount is out of range"));
                };
                if credits > MAX_USAGE_AMOUNT {
                    return Err(bad("a row's amount is more than the largest usage amount"));
                }
                let (day, _) = crate::input::usage::bucket_day(s, Some(e), opts.tz);
                let date =
                    crate::usage_table::day_date(day).ok_or_else(|| bad("a bucket's day is out of range"))?;
                if !exact {
                    inexact.0 += 1;
                    inexact.1.get_or_insert_with(|| {
                        format!("{} {currency} minor units on {date}", value_text(value))
                    });
                }
                let email =
                    actor.get("email_address").and_then(Value::as_str).filter(|e| !e.trim().is_empty());
                let user = match email {
                    Some(email) => crate::identity::canonical_email(email)
                        .map_or_else(|_| email.trim().to_ascii_lowercase(), std::borrow::Cow::into_owned),
                    None => {
                        let total = no_email.entry(user_id.to_string()).or_default();
                        *total = total.saturating_add(credits);
                        user_id.to_string()
                    }
                };
                let (product, model) = crate::input::usage::costs_product_model(row).map_err(|e| bad(&e))?;
                let lossy = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
                let (product, model) = (product.map(|p| lossy(&p)).unwrap_or_default(), lossy(&model));
                let bucket = s.timestamp();
                buckets.insert(bucket);
                through = through.max(e.timestamp());
                out.rows.push(Row {
                    bucket,
                    date,
                    user,
                    id: row_id(Source::ClaudeEnterprise, bucket, user_id, "", &format!("{product}, {model}")),
                    product,
                    model,
                    credits,
                    project: String::new(),
                });
            }
            progress(Progress { pages: out.pages, rows: out.rows.len(), through });
            let more = doc.get("has_more").and_then(Value::as_bool);
            match doc.get("next_page").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                _ if more == Some(false) => break,
                Some(next) if page.as_deref() != Some(next) => page = Some(next.to_string()),
                Some(_) => return Err(bad("`next_page` repeats the cursor just read")),
                None if more == Some(true) => return Err(bad("`has_more` without a `next_page` cursor")),
                None => break,
            }
        }
        from = to;
    }
    out.buckets = buckets.len() as u64;
    // Ranked by amount on the wire; in time order (then by id) in the file.
    out.rows.sort_by(|a, b| (a.bucket, &a.id).cmp(&(b.bucket, &b.id)));
    for (id, credits) in no_email {
        out.findings.push(
            Diagnostic::warning(
                Code::PullUnmappedUser,
                format!("{} user `{id}` has no email address in the cost report ({credits} credits)", opts.source.name()),
            )
            .with_help("a deleted account has no email: the rows keep the vendor's user id; they count in workspace totals but against no one's limit"),
        );
    }
    if let (n, Some(first)) = inexact {
        out.findings.push(inexact_conversion(n, &first));
    }
    Ok(out)
}
