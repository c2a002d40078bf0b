//! The stable JSON shape of `resolve --format json`; its schema,
//! `schemas/resolve-output.schema.json`, is generated from these types.
//!
//! Borrowed views over a [`Resolution`]: building one copies no limit. Fields may
//! be added, never renamed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Provenance, Resolution, Resolved};
use crate::Credits;
use crate::directory::Directory;
use crate::load::PolicySet;
use crate::model::Period;
use crate::period::PeriodRange;

/// `{"now", "period", "users": [...]}`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ResolveOutput<'a> {
    /// The instant resolved at.
    pub now: DateTime<Utc>,
    /// The period containing `now`.
    pub period: PeriodOutput,
    /// One entry per user, in directory order.
    pub users: Vec<UserOutput<'a>>,
}

/// The period: `start` and `end` instants, plus its kind, zone and local dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PeriodOutput {
    /// The first instant.
    pub start: DateTime<Utc>,
    /// The first instant after the period.
    pub end: DateTime<Utc>,
    /// `day`, `week`, `month` or `quarter`.
    pub kind: Period,
    /// The workspace time zone.
    pub timezone: String,
    /// The first local day.
    pub start_date: NaiveDate,
    /// The first local day after the period.
    pub end_date: NaiveDate,
}

impl PeriodOutput {
    /// The output shape of a period.
    pub fn new(range: &PeriodRange, kind: Period, tz: chrono_tz::Tz) -> Self {
        PeriodOutput {
            start: range.start,
            end: range.end,
            kind,
            timezone: tz.name().to_owned(),
            start_date: range.start_date,
            end_date: range.end_date,
        }
    }
}

/// One user's limit: `{"user", "credits", "products", "models", "source", "group"}`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserOutput<'a> {
    /// The user's email.
    pub user: &'a str,
    /// The total.
    pub credits: Credits,
    /// Per-product caps (empty when none).
    pub products: &'a BTreeMap<String, Credits>,
    /// Per-model caps (empty when none).
    pub models: &'a BTreeMap<String, Credits>,
    /// What decided the limit.
    pub source: &'a Provenance,
    /// The winning group (its pool applies), or null.
    pub group: Option<&'a str>,
    /// The rate cap: the most the user may spend in any sliding hour (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Credits>,
    /// What decided the rate cap, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour_source: Option<&'a Provenance>,
}

impl<'a> UserOutput<'a> {
    /// The output shape of one resolved user.
    pub fn new(r: &'a Resolved, policies: &'a PolicySet, dir: &'a Directory) -> Self {
        UserOutput {
            user: dir.users.get(r.user).map_or("", |u| u.email.as_str()),
            credits: r.limit.credits,
            products: &r.limit.products,
            models: &r.limit.models,
            source: &r.source,
            group: r.group.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.as_str()),
            per_hour: r.limit.per_hour,
            per_hour_source: r.per_hour_source.as_ref(),
        }
    }
}

impl<'a> ResolveOutput<'a> {
    /// The output of a resolution; with `only`, just that directory position.
    pub fn new(
        resolution: &'a Resolution,
        policies: &'a PolicySet,
        dir: &'a Directory,
        only: Option<usize>,
    ) -> Self {
        let users = match only {
            Some(i) => resolution.user(i).map(|r| UserOutput::new(r, policies, dir)).into_iter().collect(),
            None => resolution.users.iter().map(|r| UserOutput::new(r, policies, dir)).collect(),
        };
        ResolveOutput {
            now: resolution.now,
            period: PeriodOutput::new(&resolution.period, resolution.period_kind, resolution.timezone),
            users,
        }
    }
}
