//! How a plan looks: a terminal table, a GitHub pull-request comment, JSON.
//!
//! Kept beside the plan (not in the CLI) because the comment's size budget is a
//! property worth testing: GitHub refuses comments over 65,536 characters, so long
//! lists are truncated with "and N more" until the whole comment fits.

use std::fmt::Write as _;

use super::{
    CapChange, CapKind, CapSummary, DocStatus, GroupChange, Plan, PoolChange, PoolStanding, SOON_DAYS,
    Upcoming, UserChange,
};
use crate::Credits;
use crate::model::Limit;
use crate::standing::BlockedBy;

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The plan in its stable JSON shape (`schemas/plan-output.schema.json`), pretty-printed.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}

fn signed(c: Credits) -> String {
    if c > Credits::ZERO { format!("+{c}") } else { c.to_string() }
}

fn limit_text(l: &Limit) -> String {
    let mut out = l.credits.to_string();
    let mut caps: Vec<String> =
        l.products.iter().chain(l.models.iter()).map(|(k, v)| format!("{k} {v}")).collect();
    if let Some(rate) = l.per_hour {
        caps.push(format!("{rate}/hour"));
    }
    if !caps.is_empty() {
        let _ = write!(out, " ({})", caps.join(", "));
    }
    out
}

fn opt_limit(l: Option<&Limit>) -> String {
    l.map_or_else(|| String::from("—"), limit_text)
}

/// `before → after`, or the one value when it did not change.
fn limits(before: Option<&Limit>, after: Option<&Limit>) -> String {
    if before == after { opt_limit(after) } else { format!("{} → {}", opt_limit(before), opt_limit(after)) }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn group_line(g: &GroupChange) -> String {
    match g.status {
        DocStatus::Added => String::from("added"),
        DocStatus::Removed => String::from("removed"),
        DocStatus::Changed => format!("changed: {}", g.changes.join(", ")),
        DocStatus::Moved => format!(
            "moved from {} to {}",
            g.file_before.as_deref().unwrap_or("?"),
            g.file_after.as_deref().unwrap_or("?")
        ),
        DocStatus::Unchanged if g.joined + g.left > 0 => String::from("members changed"),
        DocStatus::Unchanged => String::from("unchanged; overrides of members"),
    }
}

/// The limit just before an event → from it on (the event's own effect).
fn upcoming_then(u: &Upcoming) -> String {
    match (&u.limit_before, &u.limit_after) {
        (Some(b), Some(a)) if b == a => format!("unchanged at {}", limit_text(a)),
        (Some(b), Some(a)) => format!("{} → {}", limit_text(b), limit_text(a)),
        _ => String::from("user not in the directory"),
    }
}

/// A cap's value, `none` when there is no cap.
fn cap_value(c: Option<Credits>) -> String {
    c.map_or_else(|| String::from("none"), |c| c.to_string())
}

fn cap_name(kind: CapKind, name: &str) -> String {
    match kind {
        CapKind::Rate => "rate cap (per hour)".to_owned(),
        _ => format!("{} `{name}`", kind.as_str()),
    }
}

/// `product `codex` 1500 → none, model `gpt-5-pro` 200 → none`.
fn cap_list(caps: &[CapChange]) -> String {
    caps.iter()
        .map(|c| format!("{} {} → {}", cap_name(c.kind, &c.name), cap_value(c.before), cap_value(c.after)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `removed for 19 users, raised for 2 users`: the users per kind of cap change, the non-zero ones.
fn cap_counts(plan: &Plan) -> String {
    let s = &plan.summary;
    [
        ("added", s.caps_added),
        ("removed", s.caps_removed),
        ("raised", s.caps_raised),
        ("lowered", s.caps_lowered),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} for {}", plural(*n, "user")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// `1 lowered`: the pools per kind of change, the non-zero ones.
fn pool_counts(plan: &Plan) -> String {
    let s = &plan.summary;
    [
        ("added", s.pools_added),
        ("removed", s.pools_removed),
        ("raised", s.pools_raised),
        ("lowered", s.pools_lowered),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn pool_value(c: Option<Credits>) -> String {
    c.map_or_else(|| String::from("no pool"), |c| c.to_string())
}

fn headline(plan: &Plan) -> String {
    let s = &plan.summary;
    if plan.is_empty() {
        return String::from("no effective change: no user's limit and no team pool changes");
    }
    let mut out = if plan.users.is_empty() {
        String::from("no user's limit changes")
    } else {
        format!(
            "{} user{} affected: {} raised, {} lowered{}{}",
            s.users_affected,
            if s.users_affected == 1 { "" } else { "s" },
            s.raised,
            s.lowered,
            if s.caps_changed > 0 { format!(", {} caps only", s.caps_changed) } else { String::new() },
            match plan.users.iter().filter(|u| !u.limit_changed()).count() {
                0 => String::new(),
                same => format!(", {same} blocked or unblocked by a team pool with the same limit"),
            },
        )
    };
    let caps = cap_counts(plan);
    if !caps.is_empty() {
        let _ = write!(out, "; caps {caps}");
    }
    if !plan.users.is_empty() {
        let _ = write!(
            out,
            "; exposure {} → {} ({})",
            s.exposure_before,
            s.exposure_after,
            signed(s.exposure_after - s.exposure_before)
        );
    }
    if !plan.pools.is_empty() {
        let _ = write!(
            out,
            "; team pools: {}; team exposure {} → {} ({})",
            pool_counts(plan),
            s.team_exposure_before,
            s.team_exposure_after,
            signed(s.team_exposure_after - s.team_exposure_before)
        );
    }
    out
}

fn pool_line(p: &PoolChange) -> String {
    format!(
        "{} {} → {}; members {} → {}; used {} → {}; team exposure {} → {} ({})",
        p.change.as_str(),
        pool_value(p.before),
        pool_value(p.after),
        p.members_before,
        p.members_after,
        p.used_before.map_or_else(|| String::from("—"), |c| c.to_string()),
        p.used_after.map_or_else(|| String::from("—"), |c| c.to_string()),
        p.team_exposure_before,
        p.team_exposure_after,
        signed(p.team_exposure_after - p.team_exposure_before),
    )
}

fn cap_line(c: &CapSummary) -> String {
    format!(
        "{} → {} ({}) for {}",
        cap_value(c.before),
        cap_value(c.after),
        c.change.as_str(),
        plural(c.users, "user")
    )
}

/// Why some events are not listed, and how to list them.
fn untouched_note(plan: &Plan) -> Option<String> {
    match plan.overrides.untouched_events {
        0 => None,
        n => Some(format!(
            "{} starting or expiring in the next {SOON_DAYS} days that this change does not touch (`budgit plan --all-events` lists {})",
            plural(n, "other override event"),
            if n == 1 { "it" } else { "them" }
        )),
    }
}

/// The plan for a terminal: counts first, then groups, overrides and users.
pub fn table(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut o = String::new();
    let _ = writeln!(o, "plan: {} → {}", plan.base.display(), plan.head.display());
    let _ = writeln!(o, "{}", headline(plan));
    let _ = writeln!(
        o,
        "newly blocked {}, newly unblocked {}{}, unchanged {}, same limit from another document {}",
        s.newly_blocked,
        s.newly_unblocked,
        on_caps(s),
        s.unchanged,
        s.source_changed
    );
    let _ = writeln!(
        o,
        "guardrails: {} checked, {} failed; validation: {} error{}, {} warning{}",
        s.guardrails,
        s.guardrails_failed,
        s.errors,
        if s.errors == 1 { "" } else { "s" },
        s.warnings,
        if s.warnings == 1 { "" } else { "s" },
    );
    if let Some(w) = &plan.workspace {
        let _ = writeln!(
            o,
            "\nworkspace: changed {}; default {} → {}; {} users, {}",
            w.changes.join(", "),
            opt_limit(w.default_before.as_ref()),
            opt_limit(w.default_after.as_ref()),
            w.users_affected,
            signed(w.delta)
        );
    }
    if !plan.groups.is_empty() {
        let _ = writeln!(o, "\ngroups:");
        for g in &plan.groups {
            let _ = writeln!(
                o,
                "  {:<24} {}; limit {}; members {} → {} (+{} −{}); {} affected, {}",
                g.group,
                group_line(g),
                limits(g.limit_before.as_ref(), g.limit_after.as_ref()),
                g.members_before,
                g.members_after,
                g.joined,
                g.left,
                plural(g.users_affected, "user"),
                signed(g.delta),
            );
        }
    }
    if !plan.pools.is_empty() {
        let _ = writeln!(o, "\nteam pools:");
        for p in &plan.pools {
            let _ = writeln!(o, "  {:<24} {}", p.group, pool_line(p));
        }
    }
    if !plan.caps.is_empty() {
        let _ = writeln!(o, "\ncaps:");
        for c in &plan.caps {
            let _ = writeln!(o, "  {:<32} {}", cap_name(c.kind, &c.name), cap_line(c));
        }
    }
    let ov = &plan.overrides;
    for (title, list) in [("added", &ov.added), ("removed", &ov.removed), ("changed", &ov.changed)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\noverrides {title}:");
        for c in list {
            let changes =
                if c.changes.is_empty() { String::new() } else { format!(" [{}]", c.changes.join(", ")) };
            let _ = writeln!(
                o,
                "  {:<32} {} {} from {} until {}{}{}",
                c.name,
                c.user,
                c.amount,
                c.starts.as_deref().unwrap_or("always"),
                c.expires,
                if c.active { " (active)" } else { "" },
                changes
            );
        }
    }
    for (title, list) in [("starting", &ov.starting_soon), ("expiring", &ov.expiring_soon)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\noverrides {title} in the next {SOON_DAYS} days:");
        for u in list {
            let _ = writeln!(o, "  {:<32} {} at {}: {}", u.name, u.user, u.at.to_rfc3339(), upcoming_then(u));
        }
    }
    if let Some(note) = untouched_note(plan) {
        let _ = writeln!(o, "\n{note}");
    }
    if !plan.users.is_empty() {
        let _ = writeln!(o, "\nusers ({}):", plan.users.len());
        let _ = writeln!(
            o,
            "  {:<32} {:>12} {:>12} {:>12} {:>12}  source",
            "user", "before", "after", "delta", "used"
        );
        for u in &plan.users {
            let _ = writeln!(
                o,
                "  {:<32} {:>12} {:>12} {:>12} {:>12}  {}{}",
                u.user,
                u.before.to_string(),
                u.after.to_string(),
                signed(u.delta),
                u.used.to_string(),
                source_change(u),
                blocked_mark(u),
            );
            if !u.caps.is_empty() {
                let _ = writeln!(o, "  {:<32} caps: {}", "", cap_list(&u.caps));
            }
        }
    }
    if !plan.diagnostics.is_empty() {
        let _ = writeln!(o, "\nhead findings:");
        for d in &plan.diagnostics {
            let at = match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("{f}:{l}:{}: ", d.column.unwrap_or(1)),
                _ => String::new(),
            };
            let _ = writeln!(o, "  {at}{}[{}]: {}", d.severity, d.code, d.message);
        }
    }
    let _ = writeln!(o, "\ndigest: {}", plan.digest);
    o
}

fn source_change(u: &UserChange) -> String {
    let b = format!("{} `{}`", u.source_before.kind.as_str(), u.source_before.name);
    let a = format!("{} `{}`", u.source_after.kind.as_str(), u.source_after.name);
    if a == b { a } else { format!("{b} → {a}") }
}

/// The users a product or model cap newly blocks or unblocks, when there are any.
fn on_caps(s: &super::Summary) -> String {
    if s.newly_blocked_on_caps == 0 && s.newly_unblocked_on_caps == 0 {
        return String::new();
    }
    format!(
        " (on a product or model cap: {} newly blocked, {} unblocked)",
        s.newly_blocked_on_caps, s.newly_unblocked_on_caps
    )
}

/// What a change does to the caps that block a user: ` — codex unblocked`, one per cap.
fn cap_marks(u: &UserChange) -> String {
    // A user their total or pool blocks at head is blocked on everything: that mark says it.
    if u.blocked_by_after.is_some() {
        return String::new();
    }
    u.cap_blocks
        .iter()
        .map(|c| format!(" — {} {}", c.name, if c.blocked_after { "newly blocked" } else { "unblocked" }))
        .collect()
}

/// What a change does to whether the user can spend: their total or pool, then each cap.
fn blocked_mark(u: &UserChange) -> String {
    format!("{}{}", total_mark(u), cap_marks(u))
}

fn total_mark(u: &UserChange) -> String {
    // Say so when the team pool, not the user's own limit, decides.
    let pool_decides = |pool: Option<&PoolStanding>, by: Option<BlockedBy>| {
        pool.filter(|_| by == Some(BlockedBy::Pool)).map(|p| p.group.clone())
    };
    if u.newly_blocked {
        match pool_decides(u.pool_after.as_ref(), u.blocked_by_after) {
            Some(group) => format!(" — newly blocked (team pool `{group}` used up)"),
            None => String::from(" — newly blocked"),
        }
    } else if u.newly_unblocked {
        match pool_decides(u.pool_before.as_ref(), u.blocked_by_before) {
            Some(group) => format!(" — unblocked (was held by team pool `{group}`)"),
            None => String::from(" — unblocked"),
        }
    } else {
        String::new()
    }
}

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The plan as a GitHub pull-request comment, under [`GITHUB_COMMENT_LIMIT`] characters.
pub fn markdown(plan: &Plan) -> String {
    // Shrink the longest lists until the comment fits.
    for rows in [500, 200, 100, 50, 20, 5, 0] {
        let text = markdown_with(plan, rows);
        if text.chars().count() < GITHUB_COMMENT_LIMIT {
            return text;
        }
    }
    let mut text = markdown_with(plan, 0);
    let cut = text.char_indices().nth(GITHUB_COMMENT_LIMIT - 200).map_or(text.len(), |(i, _)| i);
    text.truncate(cut);
    text.push_str("\n\n… truncated to fit a comment; run `budgit plan` for the whole plan\n");
    text
}

fn more(o: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(o, "\n…and {} more\n", total - shown);
    }
}

fn markdown_with(plan: &Plan, rows: usize) -> String {
    let s = &plan.summary;
    let mut o = String::new();
    let _ = writeln!(o, "<!-- budgit-plan -->");
    let _ = writeln!(o, "### budgit plan: `{}` → `{}`\n", plan.base.display(), plan.head.display());
    if s.errors > 0 {
        let _ = writeln!(
            o,
            "> [!CAUTION]\n> The head has {} validation error{}: it cannot be applied.\n",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
    }
    if plan.is_empty() {
        let _ = writeln!(o, "**No effective change**: no user's limit and no team pool changes.\n");
    } else {
        let _ = writeln!(o, "**{}**\n", headline(plan));
    }
    let _ = writeln!(o, "| | |\n|---|---:|");
    let _ = writeln!(o, "| users affected | {} of {} |", s.users_affected, s.users);
    let _ =
        writeln!(o, "| raised / lowered / caps only | {} / {} / {} |", s.raised, s.lowered, s.caps_changed);
    let _ = writeln!(
        o,
        "| exposure per period | {} → {} ({}) |",
        s.exposure_before,
        s.exposure_after,
        signed(s.exposure_after - s.exposure_before)
    );
    let _ = writeln!(
        o,
        "| users with caps added / removed / raised / lowered | {} / {} / {} / {} |",
        s.caps_added, s.caps_removed, s.caps_raised, s.caps_lowered
    );
    let _ = writeln!(
        o,
        "| team pools added / removed / raised / lowered | {} / {} / {} / {} |",
        s.pools_added, s.pools_removed, s.pools_raised, s.pools_lowered
    );
    let _ = writeln!(
        o,
        "| team exposure per period (pools bound their teams) | {} → {} ({}) |",
        s.team_exposure_before,
        s.team_exposure_after,
        signed(s.team_exposure_after - s.team_exposure_before)
    );
    let _ = writeln!(
        o,
        "| newly blocked / unblocked at current usage | {} / {}{} |",
        s.newly_blocked,
        s.newly_unblocked,
        on_caps(s)
    );
    let _ = writeln!(o, "| same limit, another document | {} |", s.source_changed);
    let _ = writeln!(o, "| guardrails | {} checked, {} failed |", s.guardrails, s.guardrails_failed);
    let _ = writeln!(o, "| validation | {}, {} |", plural(s.errors, "error"), plural(s.warnings, "warning"));
    let _ = writeln!(o);

    if let Some(w) = &plan.workspace {
        let _ = writeln!(o, "#### Workspace\n");
        let _ = writeln!(
            o,
            "Changed {}; default {} → {}; {} users, {} credits in total.\n",
            w.changes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            opt_limit(w.default_before.as_ref()),
            opt_limit(w.default_after.as_ref()),
            w.users_affected,
            signed(w.delta)
        );
    }
    if !plan.groups.is_empty() {
        let _ = writeln!(o, "#### Groups\n");
        let _ = writeln!(
            o,
            "| group | change | limit | members | users affected | credits |\n|---|---|---|---|---:|---:|"
        );
        let shown = plan.groups.len().min(rows.max(20));
        for g in &plan.groups[..shown] {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} → {} (+{} −{}) | {} | {} |",
                cell(&g.group),
                cell(&group_line(g)),
                limits(g.limit_before.as_ref(), g.limit_after.as_ref()),
                g.members_before,
                g.members_after,
                g.joined,
                g.left,
                g.users_affected,
                signed(g.delta)
            );
        }
        more(&mut o, plan.groups.len(), shown);
        let _ = writeln!(o);
    }
    if !plan.pools.is_empty() {
        let _ = writeln!(o, "#### Team pools\n");
        let _ = writeln!(
            o,
            "| group | change | pool | members | used this period | team exposure |\n|---|---|---:|---|---|---|"
        );
        let shown = plan.pools.len().min(rows.max(20));
        for p in &plan.pools[..shown] {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} → {} | {} → {} | {} → {} | {} → {} ({}) |",
                cell(&p.group),
                p.change.as_str(),
                pool_value(p.before),
                pool_value(p.after),
                p.members_before,
                p.members_after,
                p.used_before.map_or_else(|| String::from("—"), |c| c.to_string()),
                p.used_after.map_or_else(|| String::from("—"), |c| c.to_string()),
                p.team_exposure_before,
                p.team_exposure_after,
                signed(p.team_exposure_after - p.team_exposure_before),
            );
        }
        more(&mut o, plan.pools.len(), shown);
        let _ = writeln!(o);
    }
    if !plan.caps.is_empty() {
        let _ = writeln!(o, "#### Caps\n");
        let _ = writeln!(o, "| cap | before | after | change | users |\n|---|---:|---:|---|---:|");
        let shown = plan.caps.len().min(rows.max(20));
        for c in &plan.caps[..shown] {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                cell(&cap_name(c.kind, &c.name)),
                cap_value(c.before),
                cap_value(c.after),
                c.change.as_str(),
                c.users
            );
        }
        more(&mut o, plan.caps.len(), shown);
        let _ = writeln!(o);
    }
    let ov = &plan.overrides;
    if !(ov.added.is_empty() && ov.removed.is_empty() && ov.changed.is_empty()) {
        let _ = writeln!(o, "#### Overrides\n");
        let _ = writeln!(o, "| override | | user | amount | from | until |\n|---|---|---|---:|---|---|");
        let all: Vec<(&str, &super::OverrideChange)> = ov
            .added
            .iter()
            .map(|c| ("added", c))
            .chain(ov.removed.iter().map(|c| ("removed", c)))
            .chain(ov.changed.iter().map(|c| ("changed", c)))
            .collect();
        let shown = all.len().min(rows.max(10));
        for (what, c) in &all[..shown] {
            let what = if c.changes.is_empty() {
                (*what).to_owned()
            } else {
                format!("{what}: {}", c.changes.join(", "))
            };
            let _ = writeln!(
                o,
                "| `{}` | {}{} | {} | {} | {} | {} |",
                cell(&c.name),
                cell(&what),
                if c.active { " (active)" } else { "" },
                cell(&c.user),
                c.amount,
                c.starts.as_deref().unwrap_or("—"),
                c.expires
            );
        }
        more(&mut o, all.len(), shown);
        let _ = writeln!(o);
    }
    if !(ov.starting_soon.is_empty() && ov.expiring_soon.is_empty()) {
        let _ = writeln!(o, "#### Planned changes in the next {SOON_DAYS} days\n");
        let _ =
            writeln!(o, "| when | override | user | event | limit before → after |\n|---|---|---|---|---|");
        let mut all: Vec<(&str, &Upcoming)> = ov
            .starting_soon
            .iter()
            .map(|u| ("starts", u))
            .chain(ov.expiring_soon.iter().map(|u| ("expires", u)))
            .collect();
        all.sort_by_key(|(_, u)| (u.at, u.name.clone()));
        let shown = all.len().min(rows.max(10));
        for (event, u) in &all[..shown] {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {event} | {} |",
                u.at.format("%Y-%m-%d %H:%M UTC"),
                cell(&u.name),
                cell(&u.user),
                cell(&upcoming_then(u))
            );
        }
        more(&mut o, all.len(), shown);
        let _ = writeln!(o);
    }
    if let Some(note) = untouched_note(plan) {
        let _ = writeln!(o, "<sub>{note}</sub>\n");
    }
    let blocked: Vec<&UserChange> = plan.users.iter().filter(|u| u.newly_blocked).collect();
    if !blocked.is_empty() {
        let _ = writeln!(o, "#### Newly blocked at current usage ({})\n", blocked.len());
        let shown = blocked.len().min(rows.max(5));
        for u in &blocked[..shown] {
            match &u.pool_after {
                Some(p) if u.blocked_by_after == Some(BlockedBy::Pool) => {
                    let _ = writeln!(
                        o,
                        "- {}: team pool `{}` used up ({} of {}); used {} of a limit of {} (was {})",
                        cell(&u.user),
                        cell(&p.group),
                        p.used,
                        p.pool,
                        u.used,
                        u.after,
                        u.before
                    );
                }
                _ => {
                    let _ = writeln!(
                        o,
                        "- {}: used {} of a new limit of {} (was {})",
                        cell(&u.user),
                        u.used,
                        u.after,
                        u.before
                    );
                }
            }
        }
        more(&mut o, blocked.len(), shown);
        let _ = writeln!(o);
    }
    if !plan.users.is_empty() {
        let mut users: Vec<&UserChange> = plan.users.iter().collect();
        // Largest changes first: that is what a reviewer looks for.
        users.sort_by(|a, b| {
            b.delta
                .micros()
                .unsigned_abs()
                .cmp(&a.delta.micros().unsigned_abs())
                .then_with(|| a.user.cmp(&b.user))
        });
        let shown = users.len().min(rows);
        let _ = writeln!(
            o,
            "<details><summary>{} user{} whose limit {}</summary>\n",
            users.len(),
            if users.len() == 1 { "" } else { "s" },
            if users.iter().all(|u| u.limit_changed()) { "changes" } else { "or blocking changes" }
        );
        if shown > 0 {
            let _ = writeln!(
                o,
                "| user | before | after | change | used | decided by |\n|---|---:|---:|---:|---:|---|"
            );
            for u in &users[..shown] {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {}{} |",
                    cell(&u.user),
                    limit_text(&u.limit_before),
                    limit_text(&u.limit_after),
                    signed(u.delta),
                    u.used,
                    cell(&source_change(u)),
                    blocked_mark(u)
                );
            }
        }
        more(&mut o, users.len(), shown);
        let _ = writeln!(o, "\n</details>\n");
    }
    if !plan.diagnostics.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>{} finding{} at head</summary>\n",
            plan.diagnostics.len(),
            if plan.diagnostics.len() == 1 { "" } else { "s" }
        );
        let shown = plan.diagnostics.len().min(rows.max(20));
        for d in &plan.diagnostics[..shown] {
            let at = match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("`{f}:{l}` "),
                _ => String::new(),
            };
            let _ = writeln!(o, "- **{}** {at}`{}`: {}", d.severity, d.code, d.message.replace('\n', " "));
        }
        more(&mut o, plan.diagnostics.len(), shown);
        let _ = writeln!(o, "\n</details>\n");
    }
    let _ = writeln!(o, "<sub>plan digest `{}`</sub>", plan.digest);
    o
}
