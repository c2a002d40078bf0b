//! What the demo's spend produces: the context of Codex work (a team's repositories,
//! its tickets, the automated workflows) and the outcomes that follow from it (merged
//! pull requests, resolved tickets), so the console's value view has a story.
//!
//! The story: Engineering's `acme/payments-service` burns credits in an agent workflow
//! that keeps retrying a migration, and merges few pull requests for them; Platform
//! Infrastructure merges many pull requests for little. Everything is drawn from the
//! seed.

use std::collections::BTreeMap;

use budgit_engine::r#gen::rng::Rng;
use chrono::Duration;
use serde_json::{Value, json};

use crate::activity::Org;

/// The repository that burns credits for few merged pull requests.
pub const BURNING_REPO: &str = "acme/payments-service";
/// The team that merges many pull requests for little.
pub const EFFICIENT_TEAM: &str = "platform-infra";

/// The repositories a team works in, its main one first.
pub fn repos(group: Option<&str>) -> &'static [&'static str] {
    match group {
        Some("engineering") => &[BURNING_REPO, "acme/checkout-web", "acme/mobile-app"],
        Some("platform-infra") => &["acme/platform-infra", "acme/identity", "acme/notifications"],
        Some("ml-platform") => &["acme/ml-eval", "acme/search"],
        Some("data-science") => &["acme/data-warehouse", "acme/ml-eval"],
        Some("product-design") => &["acme/design-system", "acme/checkout-web"],
        Some("security") => &["acme/identity", "acme/platform-infra"],
        Some("interns") => &["acme/design-system"],
        _ => &["acme/internal-tools"],
    }
}

/// The prefix of a team's tickets.
fn ticket_prefix(group: Option<&str>) -> &'static str {
    match group {
        Some("engineering") => "ENG",
        Some("platform-infra") => "PLAT",
        Some("ml-platform") => "ML",
        Some("data-science") => "DS",
        Some("product-design") => "DES",
        Some("security") => "SEC",
        Some("interns") => "INT",
        _ => "OPS",
    }
}

/// The context of a Codex task by a member of `group`: a repository of the team, one of
/// its tickets and, for automated work, the workflow (`extra` keys are kept as they are).
pub fn codex_context(group: Option<&str>, rng: &mut Rng, mut extra: serde_json::Map<String, Value>) -> Value {
    let team = repos(group);
    let repo = team[rng.index(team.len())];
    let ticket = format!("{}-{}", ticket_prefix(group), 100 + rng.below(24));
    let workflow = if repo == BURNING_REPO && rng.chance(0.6) {
        Some("migration-retry")
    } else if rng.chance(0.2) {
        Some("ci-review")
    } else if rng.chance(0.08) {
        Some("nightly-refactor")
    } else {
        None
    };
    extra.insert("repo".into(), json!(repo));
    extra.insert("ticket".into(), json!(ticket));
    if let Some(w) = workflow {
        extra.insert("workflow".into(), json!(w));
    }
    Value::Object(extra)
}

/// Codex spend per team and repository, and the tickets worked on, as the backfill goes.
#[derive(Debug, Default)]
pub struct Tally {
    /// (team, repo) → (micro-credits, the members who spent there).
    repos: BTreeMap<(Option<String>, String), (i64, Vec<usize>)>,
    /// ticket → (team, the first member who worked on it).
    tickets: BTreeMap<String, (Option<String>, usize)>,
}

impl Tally {
    /// Counts one backfill event of subject `i`.
    pub fn add(&mut self, org: &Org, i: usize, event: &Value) {
        let Some(s) = org.subjects.get(i) else { return };
        let context = &event["context"];
        let micros = event["credits"]
            .as_str()
            .and_then(|c| c.parse::<budgit_engine::Credits>().ok())
            .map_or(0, budgit_engine::Credits::micros);
        if let Some(repo) = context["repo"].as_str() {
            let (m, users) = self.repos.entry((s.group.clone(), repo.to_string())).or_default();
            *m += micros;
            if !users.contains(&i) {
                users.push(i);
            }
        }
        if let Some(ticket) = context["ticket"].as_str() {
            self.tickets.entry(ticket.to_string()).or_insert((s.group.clone(), i));
        }
    }

    /// The outcomes of the backfill as JSON Lines: merged pull requests per team and
    /// repository in proportion to its spend (few in the burning repository, many in the
    /// efficient team), and most tickets worked on resolved.
    pub fn outcomes(&self, org: &Org, seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed ^ 0xde30_0009, 0);
        let span = (org.now - org.period.start).num_seconds().max(1);
        let mut out = Vec::new();
        let mut line = |rng: &mut Rng,
                        kind: &str,
                        id: String,
                        repo: Option<&str>,
                        team: &Option<String>,
                        user: usize| {
            // within the period so far, never after now
            let at = org.period.start + Duration::seconds(rng.range(0, span - 1));
            let email = org.subjects.get(user).map(|s| s.email.as_str());
            let row = json!({ "time": at.timestamp(), "kind": kind, "id": id, "repo": repo, "user": email, "team": team });
            out.extend_from_slice(row.to_string().as_bytes());
            out.push(b'\n');
        };
        let mut next_pr: BTreeMap<&str, u64> = BTreeMap::new();
        for ((team, repo), (micros, users)) in &self.repos {
            // credits per merged pull request: the agent loop's repository merges next
            // to nothing, the efficient team merges three times the usual
            let credits_per_pr = if repo == BURNING_REPO {
                4000.0
            } else if team.as_deref() == Some(EFFICIENT_TEAM) {
                100.0
            } else {
                300.0
            };
            let prs = ((*micros as f64 / 1e6) / credits_per_pr).round().clamp(1.0, 400.0) as u64;
            for _ in 0..prs {
                let n = next_pr.entry(repo.as_str()).or_insert(1000);
                *n += 1;
                let user = users[rng.index(users.len())];
                line(&mut rng, "pull_request", format!("{repo}#{n}"), Some(repo), team, user);
            }
        }
        for (ticket, (team, user)) in &self.tickets {
            if rng.chance(0.7) {
                line(&mut rng, "ticket", ticket.clone(), None, team, *user);
            }
        }
        out
    }
}
