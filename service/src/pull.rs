//! The scheduled usage pull: `budgit serve` reads a vendor's Costs API on an interval
//! and stores what it finds as usage events, so the console shows real usage.
//!
//! Each round pulls the closed daily buckets (those that ended before the current
//! UTC day) with the engine's [`budgit_engine::pull::pull`], the same client and
//! rules as `budgit usage pull`, and stores every row through the one ingest path of
//! `POST /v1/usage/events`, with the row's stable id as the event id. A bucket is
//! only ingested once closed, so its amount never changes after it is stored, and a
//! re-pull (a restart begins again at `since`) finds every id already there.

use std::time::Duration;

use budgit_engine::pull::http::{HttpFetch, RetryPolicy};
use budgit_engine::pull::{self, PullOptions, Rate, Source};
use chrono::{DateTime, NaiveDate};
use serde_json::json;

use crate::App;

/// Seconds in a daily bucket.
const DAY: i64 = 86_400;
/// Events stored per transaction.
const CHUNK: usize = 1000;

/// What `budgit serve` pulls, from where, how often.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// The source.
    pub source: Source,
    /// The API's base URL.
    pub url: String,
    /// The environment variable holding the key, read at every round (so a rotated
    /// key is picked up without a restart).
    pub key_env: String,
    /// Time between rounds.
    pub interval: Duration,
    /// The first day pulled after a start.
    pub since: NaiveDate,
    /// Money to credits (the Workspace's declared rate).
    pub rate: Rate,
    /// The workspace time zone.
    pub tz: chrono_tz::Tz,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Events newly stored.
    pub created: usize,
    /// Events already stored (by id).
    pub duplicates: usize,
    /// Rows left out because their user is no person (unmapped ids, `unattributed`).
    pub skipped: usize,
}

/// Runs rounds forever: the first at once, then one every `interval`.
pub(crate) async fn run(app: App, config: PullConfig) {
    let mut start = config.since.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp());
    loop {
        match round(&app, &config, start).await {
            Ok((round, next)) => {
                if round != Round::default() {
                    eprintln!(
                        "usage pull from {}: {} new events, {} already stored, {} rows without a person",
                        config.source.name(),
                        round.created,
                        round.duplicates,
                        round.skipped
                    );
                }
                start = next;
            }
            Err(e) => eprintln!("usage pull from {}: {e}", config.source.name()),
        }
        tokio::time::sleep(config.interval).await;
    }
}

/// One round from `start`: the closed buckets up to today's UTC midnight. Returns what
/// it stored and where the next round starts.
async fn round(app: &App, config: &PullConfig, start: i64) -> Result<(Round, i64), String> {
    let end = crate::unix_now().div_euclid(DAY) * DAY;
    if start >= end {
        return Ok((Round::default(), start));
    }
    let key = std::env::var(&config.key_env).ok().filter(|k| !k.trim().is_empty());
    let Some(key) = key else { return Err(format!("no key: set `{}`", config.key_env)) };
    let opts = PullOptions {
        source: config.source,
        start,
        end,
        tz: config.tz,
        rate: config.rate.clone(),
        page_size: 31,
    };
    let url = config.url.clone();
    let pulled = tokio::task::spawn_blocking(move || {
        let mut fetch =
            HttpFetch::new(&url, key.trim().to_string(), Duration::from_secs(30), RetryPolicy::default())
                .for_source(opts.source);
        pull::pull(&mut fetch, &opts, |_| {})
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let mut round = Round::default();
    let mut events = Vec::new();
    for row in pulled.rows.iter().filter(|r| r.bucket + DAY <= end) {
        let time = DateTime::from_timestamp(row.bucket, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
        let event = json!({
            "id": row.id,
            "time": time,
            "user": row.user,
            "product": row.product,
            "model": row.model,
            "credits": row.credits,
        });
        // the rows of no person (a vendor id, `unattributed`) are not events: the
        // service's usage belongs to people
        match crate::api::events::parse_events(event) {
            Ok(mut one) => events.append(&mut one),
            Err(_) => round.skipped += 1,
        }
    }
    for chunk in events.chunks(CHUNK) {
        let results =
            crate::api::events::store_events(app, chunk.to_vec()).await.map_err(|e| e.message.clone())?;
        let duplicates = results.iter().filter(|r| r.status == crate::api::events::Stored::Duplicate).count();
        round.duplicates += duplicates;
        round.created += results.len() - duplicates;
    }
    Ok((round, end))
}
