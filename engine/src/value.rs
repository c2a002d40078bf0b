//! Where credits go and what they produce: usage per context value (repository,
//! ticket, workflow), per team within each, and credits per outcome.
//!
//! Usage rows carry an optional context ([`crate::usage_table::ContextKey`]); rows
//! without the key asked for are counted under "none" (`key: null`), so the rows of a
//! report always add up to the period's usage. Outcomes ([`crate::input::Outcome`])
//! are counted per team and per repository, and each team's (repository's) usage
//! divided by them: credits per outcome, exact to the micro-credit (rounded down).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::Serialize;

use crate::Credits;
use crate::input::Outcome;
use crate::usage_table::{ContextKey, UsageTable};

/// Usage per value of one context key, and credits per outcome when outcomes are given.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ValueReport {
    /// What usage is broken down by: `context.repo`, `context.ticket` or `context.workflow`.
    pub by: String,
    /// The period's usage (every row, with or without the key).
    pub used: Credits,
    /// One per value, largest first; `key: null` holds the usage without the key.
    pub rows: Vec<ValueRow>,
    /// Credits per outcome, when an outcomes file was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<OutcomeReport>,
}

/// Usage of one context value.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ValueRow {
    /// The value (`acme/api`); null for usage without the key.
    pub key: Option<String>,
    /// Used this period.
    pub used: Credits,
    /// Share of the period's usage, in percent.
    pub share: Option<f64>,
    /// Per team (group), largest first; `team: null` for people in no group.
    pub teams: Vec<TeamUsed>,
}

/// A team's part of a value's usage.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TeamUsed {
    /// The group; null for people in none.
    pub team: Option<String>,
    /// Used this period.
    pub used: Credits,
}

/// Outcomes of the period and the credits each cost.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OutcomeReport {
    /// Outcomes in the period.
    pub outcomes: u64,
    /// Outcomes per kind (`pull_request`, `ticket`).
    pub kinds: BTreeMap<String, u64>,
    /// Per team: the team's whole usage over its outcomes, largest usage first.
    pub teams: Vec<PerOutcome>,
    /// Per repository: usage with that `context.repo` over the outcomes naming it.
    pub repos: Vec<PerOutcome>,
}

/// Usage over outcomes for one team or repository.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PerOutcome {
    /// The team or repository; null for no team (no repository).
    pub key: Option<String>,
    /// Used this period.
    pub used: Credits,
    /// Outcomes credited to it.
    pub outcomes: u64,
    /// `used / outcomes`, rounded down to a micro-credit; null without outcomes.
    pub credits_per_outcome: Option<Credits>,
}

/// `used / outcomes`, rounded down to a micro-credit; `None` for no outcome.
pub fn credits_per_outcome(used: Credits, outcomes: u64) -> Option<Credits> {
    let n = i64::try_from(outcomes).ok().filter(|&n| n > 0)?;
    Some(Credits::from_micros(used.micros() / n))
}

/// An outcome with the team it is credited to.
#[derive(Debug, Clone, Copy)]
pub struct Credited<'a> {
    /// The outcome.
    pub outcome: &'a Outcome,
    /// Its `team`, else its user's group.
    pub team: Option<&'a str>,
}

/// The value report of the rows of `table` dated in `days`: usage per value of `key`,
/// per team within each (`team_of[user id]`), and, with `outcomes` (those of the
/// period), credits per outcome per team and per repository.
pub fn value_report(
    table: &UsageTable,
    key: ContextKey,
    days: Range<i32>,
    team_of: &[Option<&str>],
    outcomes: Option<&[Credited<'_>]>,
) -> ValueReport {
    let in_period = |row: usize| table.day.get(row).is_some_and(|d| days.contains(d));
    let team = |row: usize| table.user.get(row).and_then(|&u| team_of.get(u as usize).copied().flatten());
    // every team's usage: the base of the "none" row and of credits per outcome
    let mut team_used: HashMap<Option<&str>, i64> = HashMap::new();
    let mut used = 0i64;
    for row in 0..table.len() {
        if in_period(row) {
            let m = table.micros[row];
            used = used.saturating_add(m);
            let t = team_used.entry(team(row)).or_default();
            *t = t.saturating_add(m);
        }
    }
    let mut values: HashMap<&str, (i64, HashMap<Option<&str>, i64>)> = HashMap::new();
    let mut repo_used: HashMap<&str, i64> = HashMap::new();
    for (row, value) in table.context_rows(key) {
        if in_period(row) {
            let m = table.micros[row];
            let (total, teams) = values.entry(value).or_default();
            *total = total.saturating_add(m);
            let t = teams.entry(team(row)).or_default();
            *t = t.saturating_add(m);
        }
    }
    if outcomes.is_some() {
        for (row, repo) in table.context_rows(ContextKey::Repo) {
            if in_period(row) {
                let r = repo_used.entry(repo).or_default();
                *r = r.saturating_add(table.micros[row]);
            }
        }
    }
    // the usage without the key: every team's usage less what it spent with one
    let mut none_teams = team_used.clone();
    for (_, teams) in values.values() {
        for (t, m) in teams {
            if let Some(left) = none_teams.get_mut(t) {
                *left = left.saturating_sub(*m);
            }
        }
    }
    let none_used: i64 = none_teams.values().fold(0, |s, m| s.saturating_add(*m));
    let total = Credits::from_micros(used);
    let teams_of = |teams: HashMap<Option<&str>, i64>| {
        let mut out: Vec<TeamUsed> = teams
            .into_iter()
            .filter(|(_, m)| *m != 0)
            .map(|(t, m)| TeamUsed { team: t.map(str::to_string), used: Credits::from_micros(m) })
            .collect();
        out.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.team.cmp(&b.team)));
        out
    };
    let mut rows: Vec<ValueRow> = values
        .into_iter()
        .map(|(k, (m, teams))| ValueRow {
            key: Some(k.to_string()),
            used: Credits::from_micros(m),
            share: Credits::from_micros(m).percent_of(total),
            teams: teams_of(teams),
        })
        .collect();
    if none_used != 0 {
        rows.push(ValueRow {
            key: None,
            used: Credits::from_micros(none_used),
            share: Credits::from_micros(none_used).percent_of(total),
            teams: teams_of(none_teams),
        });
    }
    rows.sort_by(|a, b| {
        b.used
            .cmp(&a.used)
            .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
            .then_with(|| a.key.cmp(&b.key))
    });
    let outcomes = outcomes.map(|list| {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        let mut per_team: HashMap<Option<&str>, u64> = HashMap::new();
        let mut per_repo: HashMap<Option<&str>, u64> = HashMap::new();
        for c in list {
            *kinds.entry(c.outcome.kind.clone()).or_default() += 1;
            *per_team.entry(c.team).or_default() += 1;
            *per_repo.entry(c.outcome.repo.as_deref()).or_default() += 1;
        }
        let mut teams: Vec<PerOutcome> = team_used
            .keys()
            .chain(per_team.keys())
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|t| per(t, team_used.get(&t).copied().unwrap_or(0), per_team.get(&t).copied().unwrap_or(0)))
            .collect();
        let mut repos: Vec<PerOutcome> = repo_used
            .keys()
            .copied()
            .map(Some)
            .chain(per_repo.keys().copied().filter(Option::is_some))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|r| {
                per(
                    r,
                    r.and_then(|r| repo_used.get(r)).copied().unwrap_or(0),
                    per_repo.get(&r).copied().unwrap_or(0),
                )
            })
            .collect();
        for list in [&mut teams, &mut repos] {
            list.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
        }
        OutcomeReport { outcomes: list.len() as u64, kinds, teams, repos }
    });
    ValueReport { by: format!("context.{}", key.as_str()), used: total, rows, outcomes }
}

fn per(key: Option<&str>, used: i64, outcomes: u64) -> PerOutcome {
    let used = Credits::from_micros(used);
    PerOutcome {
        key: key.map(str::to_string),
        used,
        outcomes,
        credits_per_outcome: credits_per_outcome(used, outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::usage_table::day_number;
    use chrono::NaiveDate;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn usage_per_repository_adds_up_and_credits_per_outcome_are_exact() {
        let dir = Directory::default();
        let mut t = UsageTable::new(&dir);
        let rows = [
            ("2026-11-02", "a@x.com", "10.5", Some("acme/api")),
            ("2026-11-02", "b@x.com", "4", Some("acme/api")),
            ("2026-11-03", "b@x.com", "7", Some("acme/web")),
            ("2026-11-03", "a@x.com", "1.25", None),
            ("2026-10-31", "a@x.com", "100", Some("acme/web")),
        ];
        for (d, u, c, repo) in rows {
            t.push(date(d), u, "codex", "gpt-5", c.parse().unwrap()).unwrap();
            t.push_context([repo.map(str::as_bytes), None, None]).unwrap();
        }
        let teams = [Some("platform"), Some("web")];
        let outcome = |id: &str, repo: Option<&str>| Outcome {
            time: chrono::Utc::now(),
            kind: "pull_request".into(),
            id: id.into(),
            repo: repo.map(str::to_string),
            user: None,
            team: None,
        };
        let (o1, o2, o3) =
            (outcome("1", Some("acme/api")), outcome("2", Some("acme/api")), outcome("3", None));
        let credited = [
            Credited { outcome: &o1, team: Some("platform") },
            Credited { outcome: &o2, team: Some("platform") },
            Credited { outcome: &o3, team: Some("web") },
        ];
        let days = day_number(date("2026-11-01"))..day_number(date("2026-12-01"));
        let r = value_report(&t, ContextKey::Repo, days, &teams, Some(&credited));
        assert_eq!(r.used.to_string(), "22.75");
        let shown: Vec<(Option<&str>, String)> =
            r.rows.iter().map(|v| (v.key.as_deref(), v.used.to_string())).collect();
        assert_eq!(
            shown,
            vec![(Some("acme/api"), "14.5".into()), (Some("acme/web"), "7".into()), (None, "1.25".into())]
        );
        assert_eq!(r.rows[0].teams.len(), 2);
        assert_eq!(r.rows[0].teams[0].team.as_deref(), Some("platform"));
        assert_eq!(r.rows[0].teams[0].used.to_string(), "10.5");
        let o = r.outcomes.unwrap();
        assert_eq!(o.outcomes, 3);
        // platform used 11.75 over 2 outcomes
        let platform = o.teams.iter().find(|p| p.key.as_deref() == Some("platform")).unwrap();
        assert_eq!(platform.credits_per_outcome.unwrap().to_string(), "5.875");
        let api = o.repos.iter().find(|p| p.key.as_deref() == Some("acme/api")).unwrap();
        assert_eq!((api.used.to_string(), api.outcomes), ("14.5".to_string(), 2));
        let web = o.repos.iter().find(|p| p.key.as_deref() == Some("acme/web")).unwrap();
        assert_eq!(web.credits_per_outcome, None);
        assert_eq!(credits_per_outcome(Credits::from_micros(10), 3), Some(Credits::from_micros(3)));
    }
}
