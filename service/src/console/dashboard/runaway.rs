//! `GET /v1/dashboard/runaway`: people and models spending far above their own baseline.
//!
//! The rule is [`crate::runaway`]'s; the numbers are the ledger's in-memory sums
//! (the last hour per second, the period per user and per model), so a request is
//! one pass over the users who spent in the last hour, under the ledger's lock,
//! and never reads the events table.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use serde::Serialize;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::runaway::{FACTOR, FLOOR_MICROS, MIN_BASELINE_HOURS, MIN_SPENDS, Runaway};
use crate::{App, unix_now};

/// One runaway person or model.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "RunawayFinding")]
struct Finding {
    /// The person's email or the model's name.
    name: String,
    /// Credits spent in the last sliding hour.
    last_hour: Credits,
    /// Average credits per hour of the period before that hour.
    baseline: Credits,
}

impl From<Runaway> for Finding {
    fn from(r: Runaway) -> Self {
        Finding {
            name: r.name,
            last_hour: Credits::from_micros(r.last_hour),
            baseline: Credits::from_micros(r.baseline),
        }
    }
}

/// The rule's thresholds, so a reader sees what "runaway" meant for this answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "RunawayRule")]
struct Rule {
    /// The last hour must be at least this many times the baseline.
    factor: i64,
    /// The last hour must be at least this many credits.
    floor: Credits,
    /// The baseline needs at least this many hours of the period before the last hour.
    min_baseline_hours: i64,
    /// A person needs spend in at least this many separate seconds of the hour.
    min_spends: usize,
}

/// The runaway people and models.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardRunaway")]
pub struct RunawayOut {
    /// People, largest last hour first.
    people: Vec<Finding>,
    /// Models, largest last hour first.
    models: Vec<Finding>,
    rule: Rule,
}

/// `GET /v1/dashboard/runaway` (admin).
pub async fn runaway(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let (people, models) = app.ledger()?.runaways(unix_now());
    let out = RunawayOut {
        people: people.into_iter().map(Finding::from).collect(),
        models: models.into_iter().map(Finding::from).collect(),
        rule: Rule {
            factor: FACTOR,
            floor: Credits::from_micros(FLOOR_MICROS),
            min_baseline_hours: MIN_BASELINE_HOURS,
            min_spends: MIN_SPENDS,
        },
    };
    Ok(axum::Json(out).into_response())
}
