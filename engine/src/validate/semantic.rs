//! Stage 3: the meaning of the policies across documents.
//!
//! Exactly one workspace with a real time zone, unique names per kind, overrides
//! that are well formed in time (`add` or `limit`, `expires` after `starts`, no
//! longer than `overrides.max_days`, a reason when one is required, no two at once
//! for one user), caps that fit inside their total. An override that has expired is
//! a warning, never an error: it no longer applies, and the warning is a reminder
//! to remove it. This stage does not read CEL ([`super::cel`]) or evaluate
//! guardrails ([`super::guardrail`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::Credits;
use crate::diag::{Code, Diagnostic, Location, Report, did_you_mean};
use crate::load::{Loaded, PolicySet, Source};
use crate::model::{Limit, Override, Workspace};

/// Every semantic check; findings go to `report`.
pub(crate) fn check(policies: &PolicySet, now: DateTime<Utc>, report: &mut Report) {
    check_workspaces(policies, report);
    check_names(policies, report);
    let workspace = policies.workspace();
    let tz = workspace.and_then(|w| timezone(&w.doc)).unwrap_or(Tz::UTC);
    if let Some(ws) = workspace {
        check_timezone(ws, report);
        check_caps(ws, "/default", &ws.doc.default, report);
        check_rate(ws, "/default", &ws.doc.default, report);
    }
    for o in &policies.overrides {
        if let Some(limit) = &o.doc.limit {
            check_rate(o, "/limit", limit, report);
        }
        if let Some(add) = o.doc.add.as_ref().and_then(|a| a.per_hour) {
            rate_positive(o, "/add", add, report);
        }
    }
    for group in &policies.groups {
        check_caps(group, "/limit", &group.doc.limit, report);
        check_rate(group, "/limit", &group.doc.limit, report);
        for (i, email) in group.doc.exclude.iter().enumerate() {
            if let Some(j) = group.doc.members.iter().position(|m| m == email) {
                report.push(
                    Diagnostic::warning(
                        Code::GroupMemberExcluded,
                        format!("`{email}` is both a member and excluded in group `{}`", group.doc.name),
                    )
                    .at(group.loc(&format!("/exclude/{i}")))
                    .with_label("this exclusion has no effect")
                    .with_secondary(
                        group.loc(&format!("/members/{j}")),
                        "listed members are always in the group",
                    )
                    .with_help(
                        "`exclude` only removes users the selector picks: remove one of the two entries",
                    ),
                );
            }
        }
    }
    check_identities(policies, report);
    let timed: Vec<Timed<'_>> = policies.overrides.iter().map(|o| Timed::new(o, &tz)).collect();
    for t in &timed {
        check_override(t, workspace, now, &tz, report);
    }
    check_overlaps(&timed, now, &tz, report);
}

/// Every key naming a person (an override's `user`, a group's `members` and
/// `exclude`) as written in the YAML: a hidden character is an error (the key can
/// match nobody), a key not in canonical form a warning (it matches, as its canonical
/// form, but a reviewer reading the file should see the address the tools compare).
fn check_identities(policies: &PolicySet, report: &mut Report) {
    let mut check =
        |loaded_loc: Location, written: &str, what: &str| match crate::identity::canonical(written) {
            Err(e @ crate::identity::IdentityError::Hidden { .. }) => report.push(
                Diagnostic::error(Code::IdentityHiddenCharacter, format!("{what} {e}"))
                    .at(loaded_loc)
                    .with_label("matches nobody")
                    .with_help("copy the address from the directory"),
            ),
            Ok(canonical) if *canonical != *written => report.push(
                Diagnostic::warning(
                    Code::IdentityNotCanonical,
                    format!(
                        "{what} `{}` is not in canonical form: {}",
                        crate::identity::show(written),
                        crate::identity::differences(written).join(", ")
                    ),
                )
                .at(loaded_loc)
                .with_label(format!("compared as `{canonical}`"))
                .with_help(format!(
                    "write `{canonical}`: emails are compared trimmed, in Unicode NFC and lowercase"
                )),
            ),
            _ => {}
        };
    for o in &policies.overrides {
        if let Some(written) = o.node.pointer("/user").and_then(|n| n.as_str()) {
            check(o.loc("/user"), written, &format!("override `{}`: `user`", o.doc.name));
        }
    }
    for g in &policies.groups {
        for field in ["members", "exclude"] {
            let Some(crate::load::yaml::Value::Seq(items)) = g.node.get(field).map(|n| &n.value) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                if let Some(written) = item.as_str() {
                    let what = format!("group `{}`: `{field}` entry", g.doc.name);
                    check(g.loc(&format!("/{field}/{i}")), written, &what);
                }
            }
        }
    }
}

/// The workspace's time zone, when it names a real IANA zone.
pub(crate) fn timezone(workspace: &Workspace) -> Option<Tz> {
    if workspace.timezone.len() > MAX_TIMEZONE_CHARS {
        return None;
    }
    workspace.timezone.parse::<Tz>().ok()
}

/// Escapes a key for use in a JSON pointer.
pub(crate) fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check_workspaces(policies: &PolicySet, report: &mut Report) {
    match policies.workspaces.as_slice() {
        [] => {
            // A workspace that failed the schema is already reported; a second
            // finding saying it is missing would only confuse.
            if policies.sources.is_empty() || policies.sources.iter().any(declares_workspace) {
                return;
            }
            report.push(Diagnostic::error(Code::WorkspaceMissing, "no `Workspace` document").with_help(
                "add a file such as `workspace.yaml` with `apiVersion: budgit/v1`, `kind: Workspace`, \
                         a `name` and a `default` limit",
            ));
        }
        [_] => {}
        [first, rest @ ..] => {
            for other in rest {
                report.push(
                    Diagnostic::error(
                        Code::WorkspaceDuplicate,
                        format!("a second `Workspace` document, `{}`", other.doc.name),
                    )
                    .at(other.doc_loc())
                    .with_label("second workspace")
                    .with_secondary(
                        first.doc_loc(),
                        format!("workspace `{}` is declared here first", first.doc.name),
                    )
                    .with_help(
                        "a policy repository describes exactly one workspace: merge the two documents",
                    ),
                );
            }
        }
    }
}

/// True when a file has a document that says `kind: Workspace`, even one that did not load.
fn declares_workspace(source: &Source) -> bool {
    source.text.lines().any(|line| {
        let Some(rest) = line.trim_end().strip_prefix("kind:") else { return false };
        let value = rest.split(" #").next().unwrap_or("").trim();
        matches!(value, "Workspace" | "'Workspace'" | "\"Workspace\"")
    })
}

fn check_names(policies: &PolicySet, report: &mut Report) {
    duplicates("group", policies.groups.iter().map(|g| (g.doc.name.as_str(), g.loc("/name"))), report);
    duplicates("override", policies.overrides.iter().map(|o| (o.doc.name.as_str(), o.loc("/name"))), report);
    duplicates(
        "guardrail",
        policies.guardrails.iter().map(|g| (g.doc.name.as_str(), g.loc("/name"))),
        report,
    );
}

fn duplicates<'a>(kind: &str, names: impl Iterator<Item = (&'a str, Location)>, report: &mut Report) {
    let mut seen: HashMap<&str, Location> = HashMap::new();
    for (name, loc) in names {
        match seen.get(name) {
            Some(first) => report.push(
                Diagnostic::error(Code::NameDuplicate, format!("two {kind}s are named `{name}`"))
                    .at(loc)
                    .with_label("second use of the name")
                    .with_secondary(first.clone(), "first use of the name")
                    .with_help(format!(
                        "names identify documents in plans and audits: rename one of the {kind}s"
                    )),
            ),
            None => {
                seen.insert(name, loc);
            }
        }
    }
}

/// The longest time zone name read (the IANA database's longest is 32 characters).
pub(crate) const MAX_TIMEZONE_CHARS: usize = 64;

fn check_timezone(ws: &Loaded<Workspace>, report: &mut Report) {
    let written = ws.doc.timezone.as_str();
    let chars = written.chars().count();
    if chars > MAX_TIMEZONE_CHARS {
        report.push(
            Diagnostic::error(
                Code::WorkspaceBadTimezone,
                format!(
                    "the time zone is {chars} characters long; IANA names have at most {MAX_TIMEZONE_CHARS}"
                ),
            )
            .at(ws.loc("/timezone"))
            .with_label("not a time zone")
            .with_help(
                "write a zone of the IANA database, such as `America/New_York`, `Europe/Paris` or `UTC`",
            ),
        );
        return;
    }
    if timezone(&ws.doc).is_some() {
        return;
    }
    let mut d =
        Diagnostic::error(Code::WorkspaceBadTimezone, format!("`{written}` is not an IANA time zone"))
            .at(ws.loc("/timezone"))
            .with_label("unknown time zone");
    d = match suggest_timezone(written) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(
            "write a zone of the IANA database, such as `America/New_York`, `Europe/Paris` or `UTC`",
        ),
    };
    report.push(d);
}

/// The time zone a misspelt name most likely meant.
fn suggest_timezone(written: &str) -> Option<&'static str> {
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    if let Some(exact) = names().find(|n| n.eq_ignore_ascii_case(written)) {
        return Some(exact);
    }
    // `New_York` or `new york` for `America/New_York`.
    let city = written.replace(' ', "_");
    if let Some(n) = names().find(|n| n.rsplit('/').next().is_some_and(|c| c.eq_ignore_ascii_case(&city))) {
        return Some(n);
    }
    did_you_mean(written, names())
}

fn check_caps<T>(doc: &Loaded<T>, at: &str, limit: &Limit, report: &mut Report) {
    for (field, caps) in [("products", &limit.products), ("models", &limit.models)] {
        for (name, cap) in caps {
            if *cap > limit.credits {
                report.push(
                    Diagnostic::warning(
                        Code::LimitCapExceedsTotal,
                        format!("the cap of {cap} credits on `{name}` is larger than the total of {}", limit.credits),
                    )
                    .at(doc.loc(&format!("{at}/{field}/{}", pointer_key(name))))
                    .with_label("never reached")
                    .with_secondary(doc.loc(&format!("{at}/credits")), "the total")
                    .with_help("a cap limits one product or model inside the total: lower the cap or raise `credits`"),
                );
            }
        }
    }
}

/// A rate cap (`per_hour`) must be positive (a cap of zero would refuse every check:
/// that is `credits: 0`'s job) and at most the period's total: an hour cannot allow
/// more than the whole period, so a larger rate cap is a mistake, not a loose bound.
fn check_rate<T>(doc: &Loaded<T>, at: &str, limit: &Limit, report: &mut Report) {
    let Some(rate) = limit.per_hour else { return };
    if !rate_positive(doc, at, rate, report) {
        return;
    }
    if rate > limit.credits {
        report.push(
            Diagnostic::error(
                Code::LimitRateCapExceedsTotal,
                format!(
                    "the rate cap of {rate} credits per hour is larger than the period's total of {}",
                    limit.credits
                ),
            )
            .at(doc.loc(&format!("{at}/per_hour")))
            .with_label("more than the whole period")
            .with_secondary(doc.loc(&format!("{at}/credits")), "the total")
            .with_help(
                "`per_hour` bounds spend in any sliding hour inside the total: lower it or raise `credits`",
            ),
        );
    }
}

/// Reports a rate cap that is not positive; true when it is.
fn rate_positive<T>(doc: &Loaded<T>, at: &str, rate: Credits, report: &mut Report) -> bool {
    if rate > Credits::ZERO {
        return true;
    }
    report.push(
        Diagnostic::error(Code::LimitRateCapNotPositive, format!("the rate cap is {rate} credits per hour"))
            .at(doc.loc(&format!("{at}/per_hour")))
            .with_label("must be more than 0")
            .with_help("write a positive number of credits per hour, or remove `per_hour` for no rate cap"),
    );
    false
}

/// An override with its dates read in the workspace time zone.
struct Timed<'a> {
    o: &'a Loaded<Override>,
    starts: Option<DateTime<Utc>>,
    expires: DateTime<Utc>,
}

impl<'a> Timed<'a> {
    fn new(o: &'a Loaded<Override>, tz: &Tz) -> Self {
        Timed { o, starts: o.doc.starts.map(|s| s.instant(tz)), expires: o.doc.expires.instant(tz) }
    }

    /// True when `expires` is after `starts` (or there is no `starts`).
    fn well_ordered(&self) -> bool {
        self.starts.is_none_or(|s| s < self.expires)
    }
}

fn check_override(
    t: &Timed<'_>,
    workspace: Option<&Loaded<Workspace>>,
    now: DateTime<Utc>,
    tz: &Tz,
    report: &mut Report,
) {
    let o = t.o;
    let name = &o.doc.name;
    match (&o.doc.add, &o.doc.limit) {
        (Some(_), Some(_)) => report.push(
            Diagnostic::error(
                Code::OverrideAddOrLimit,
                format!("override `{name}` has both `add` and `limit`"),
            )
            .at(o.key_loc("limit"))
            .with_label("`limit` replaces the resolved limit")
            .with_secondary(o.key_loc("add"), "`add` raises the resolved limit")
            .with_help("keep one: `add` to raise the user's limit, `limit` to replace it"),
        ),
        (None, None) => report.push(
            Diagnostic::error(
                Code::OverrideAddOrLimit,
                format!("override `{name}` has neither `add` nor `limit`"),
            )
            .at(o.loc("/name"))
            .with_label("this override changes nothing")
            .with_help("add `add: { credits: 1000 }` to raise the user's limit, or `limit:` to replace it"),
        ),
        _ => {}
    }
    if let Some(starts) = t.starts
        && !t.well_ordered()
    {
        report.push(
            Diagnostic::error(
                Code::OverrideExpiresBeforeStarts,
                format!(
                    "override `{name}` expires at {} but starts at {}",
                    show(t.expires, tz),
                    show(starts, tz)
                ),
            )
            .at(o.loc("/expires"))
            .with_label("`expires` must be after `starts`")
            .with_secondary(o.loc("/starts"), "starts here")
            .with_help("`starts` is inclusive and `expires` exclusive: a one-day override expires the day after it starts"),
        );
    }
    if t.expires <= now {
        report.push(
            Diagnostic::warning(
                Code::OverrideExpired,
                format!("override `{name}` expired at {}", show(t.expires, tz)),
            )
            .at(o.loc("/expires"))
            .with_label("in the past")
            .with_help("expired overrides no longer apply: remove the file to keep the repository current"),
        );
    }
    let Some(ws) = workspace else { return };
    let policy = &ws.doc.overrides;
    check_length(t, ws, now, tz, report);
    let has_reason = o.doc.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
    if policy.require_reason && !has_reason {
        let mut d =
            Diagnostic::error(Code::OverrideMissingReason, format!("override `{name}` has no `reason`"))
                .at(o.doc.reason.as_ref().map_or_else(|| o.loc("/name"), |_| o.loc("/reason")))
                .with_label("a reason is required")
                .with_help("add `reason:` saying why, with a ticket or project, for reviewers and auditors");
        if ws.node.pointer("/overrides/require_reason").is_some() {
            d = d.with_secondary(ws.loc("/overrides/require_reason"), "the workspace requires a reason");
        }
        report.push(d);
    }
}

fn check_length(t: &Timed<'_>, ws: &Loaded<Workspace>, now: DateTime<Utc>, tz: &Tz, report: &mut Report) {
    let max_days = ws.doc.overrides.max_days;
    let (start, from_now) = match t.starts {
        Some(s) => (s, false),
        None => (now, true),
    };
    if start >= t.expires {
        return;
    }
    // Measured in local wall-clock time so a span across a DST change is still whole days.
    let local = |i: DateTime<Utc>| i.with_timezone(tz).naive_local();
    let length = local(t.expires) - local(start);
    if length <= chrono::Duration::days(i64::from(max_days)) {
        return;
    }
    let seconds = length.num_seconds();
    let days = seconds / 86_400 + i64::from(seconds % 86_400 != 0);
    let name = &t.o.doc.name;
    let message = if from_now {
        format!(
            "override `{name}` has no `starts` and runs {days} days from now, more than the {max_days} allowed"
        )
    } else {
        format!("override `{name}` lasts {days} days, more than the {max_days} allowed")
    };
    let mut d = Diagnostic::error(Code::OverrideTooLong, message)
        .at(t.o.loc("/expires"))
        .with_label(format!("more than {max_days} days after the start"))
        .with_help(
            "end it sooner and renew it with a new review if still needed, or raise `overrides.max_days` in the workspace",
        );
    if ws.node.pointer("/overrides/max_days").is_some() {
        d = d.with_secondary(ws.loc("/overrides/max_days"), "the longest override allowed");
    }
    report.push(d);
}

fn check_overlaps(timed: &[Timed<'_>], now: DateTime<Utc>, tz: &Tz, report: &mut Report) {
    let mut by_user: BTreeMap<&str, Vec<&Timed<'_>>> = BTreeMap::new();
    for t in timed.iter().filter(|t| t.well_ordered()) {
        by_user.entry(t.o.doc.user.as_str()).or_default().push(t);
    }
    for (user, mut list) in by_user {
        // Earliest first, so the later one of a pair is the one reported.
        list.sort_by(|a, b| (a.starts, a.expires, &a.o.doc.name).cmp(&(b.starts, b.expires, &b.o.doc.name)));
        for (i, first) in list.iter().enumerate() {
            for second in &list[i + 1..] {
                let from = first.starts.max(second.starts);
                let until = first.expires.min(second.expires);
                if from.is_some_and(|f| f >= until) || until <= now {
                    // Disjoint, or the overlap is over and no longer matters.
                    continue;
                }
                let when = match from {
                    Some(f) => format!("from {} to {}", show(f, tz), show(until, tz)),
                    None => format!("until {}", show(until, tz)),
                };
                report.push(
                    Diagnostic::error(
                        Code::OverrideOverlap,
                        format!(
                            "overrides `{}` and `{}` for `{user}` overlap {when}",
                            first.o.doc.name, second.o.doc.name
                        ),
                    )
                    .at(second.o.loc("/starts"))
                    .with_label(format!("`{}` starts while `{}` applies", second.o.doc.name, first.o.doc.name))
                    .with_secondary(first.o.loc("/starts"), format!("`{}` applies from here", first.o.doc.name))
                    .with_help(
                        "a user has one override at a time: end the first before the second starts, or merge them",
                    ),
                );
            }
        }
    }
}

/// An instant as people wrote it: a date when it is midnight in the zone, else a timestamp.
fn show(instant: DateTime<Utc>, tz: &Tz) -> String {
    let local = instant.with_timezone(tz);
    if local.time() == chrono::NaiveTime::MIN {
        local.format("%Y-%m-%d").to_string()
    } else {
        local.to_rfc3339()
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::{Code, Severity};
    use crate::validate::test_support::{WORKSPACE, run, summary};

    const NOW: &str = "2026-11-20T12:00:00Z";

    fn override_doc(name: &str, user: &str, starts: &str, expires: &str) -> String {
        format!(
            "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {user}\nadd: {{ credits: 100 }}\n\
             starts: {starts}\nexpires: {expires}\nreason: testing\n"
        )
    }

    #[test]
    fn a_clean_repository_has_no_findings() {
        let o = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], NOW);
        assert!(report.diagnostics.is_empty(), "{:?}", summary(&report));
    }

    #[test]
    fn the_workspace_must_exist_once() {
        let o = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01");
        let report = run(&[("o.yaml", &o)], NOW);
        assert_eq!(summary(&report), [Code::WorkspaceMissing.as_str()]);

        let report = run(&[("a.yaml", WORKSPACE), ("b.yaml", WORKSPACE)], NOW);
        assert_eq!(summary(&report), ["workspace/duplicate b.yaml:2:1"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.labels.len(), 1);
        assert_eq!((&*d.labels[0].location.file, d.labels[0].location.line), ("a.yaml", 2));
    }

    #[test]
    fn a_workspace_that_failed_the_schema_is_not_also_missing() {
        let broken = WORKSPACE.replace("credits: 2000", "credit: 2000");
        let report = run(&[("ws.yaml", &broken)], NOW);
        let codes: Vec<_> = report.diagnostics.iter().map(|d| d.code).collect();
        assert!(codes.contains(&Code::SchemaUnknownField), "{codes:?}");
        assert!(!codes.contains(&Code::WorkspaceMissing), "{codes:?}");
    }

    #[test]
    fn names_are_unique_per_kind_and_both_places_are_shown() {
        let a = override_doc("same", "a@acme.com", "2026-11-10", "2026-12-01");
        let b = override_doc("same", "b@acme.com", "2026-11-10", "2026-12-01");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &a), ("b.yaml", &b)], NOW);
        assert_eq!(summary(&report), ["name/duplicate b.yaml:3:7"]);
        assert_eq!(report.diagnostics[0].labels[0].location.to_string(), "a.yaml:3:7");
    }

    #[test]
    fn a_megabyte_time_zone_is_refused_at_its_place_at_once() {
        let ws = WORKSPACE.replace("America/New_York", &"A".repeat(1_000_000));
        let started = std::time::Instant::now();
        let report = run(&[("ws.yaml", &ws)], NOW);
        let took = started.elapsed();
        assert_eq!(summary(&report), ["workspace/bad-timezone ws.yaml:4:11"]);
        assert_eq!(
            report.diagnostics[0].message,
            "the time zone is 1000000 characters long; IANA names have at most 64"
        );
        // it took minutes in a debug build before the cap
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_bad_time_zone_gets_a_suggestion() {
        for (written, suggestion) in [
            ("America/New_Yrok", "America/New_York"),
            ("europe/paris", "Europe/Paris"),
            ("New_York", "America/New_York"),
        ] {
            let ws = WORKSPACE.replace("America/New_York", written);
            let report = run(&[("ws.yaml", &ws)], NOW);
            assert_eq!(summary(&report), ["workspace/bad-timezone ws.yaml:4:11"], "{written}");
            assert_eq!(
                report.diagnostics[0].help.as_deref(),
                Some(&*format!("did you mean `{suggestion}`?"))
            );
        }
        let ws = WORKSPACE.replace("America/New_York", "Mars/Olympus_Mons");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert!(report.diagnostics[0].help.as_deref().unwrap().contains("IANA"));
    }

    #[test]
    fn an_override_has_add_or_limit() {
        let both = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01")
            .replace("reason:", "limit: { credits: 5 }\nreason:");
        let neither = override_doc("b", "b@acme.com", "2026-11-10", "2026-12-01")
            .replace("add: { credits: 100 }\n", "");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &both), ("b.yaml", &neither)], NOW);
        assert_eq!(
            summary(&report),
            ["override/add-or-limit a.yaml:8:1", "override/add-or-limit b.yaml:3:7"]
        );
        assert_eq!(report.diagnostics[0].labels[0].location.line, 5);
    }

    #[test]
    fn expires_must_follow_starts() {
        let o = override_doc("a", "a@acme.com", "2026-12-10", "2026-12-01");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], NOW);
        assert_eq!(summary(&report), ["override/expires-before-starts o.yaml:7:10"]);
        assert_eq!(report.diagnostics[0].labels[0].location.line, 6);
        let same = override_doc("a", "a@acme.com", "2026-12-01", "2026-12-01");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &same)], NOW);
        assert_eq!(summary(&report), ["override/expires-before-starts o.yaml:7:10"]);
    }

    #[test]
    fn overrides_are_at_most_max_days_in_the_workspace_zone() {
        // 90 days across the end of daylight saving time in New York: exactly the maximum.
        let ok = override_doc("a", "a@acme.com", "2026-10-01", "2026-12-30");
        let long = override_doc("b", "b@acme.com", "2026-10-01", "2026-12-31");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &ok), ("b.yaml", &long)], NOW);
        assert_eq!(summary(&report), ["override/too-long b.yaml:7:10"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "override `b` lasts 91 days, more than the 90 allowed");
        assert_eq!(d.labels[0].location.to_string(), "ws.yaml:11:13");
    }

    #[test]
    fn without_starts_the_length_counts_from_now() {
        let o = override_doc("a", "a@acme.com", "x", "2027-06-01").replace("starts: x\n", "");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], NOW);
        assert_eq!(summary(&report), ["override/too-long o.yaml:6:10"]);
        assert!(report.diagnostics[0].message.contains("from now"));
    }

    #[test]
    fn a_reason_is_required_when_the_workspace_says_so() {
        let o = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01").replace("reason: testing\n", "");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], NOW);
        assert_eq!(summary(&report), ["override/missing-reason o.yaml:3:7"]);
        let blank = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01").replace("testing", "'  '");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &blank)], NOW);
        assert_eq!(summary(&report), ["override/missing-reason o.yaml:8:9"]);
        let relaxed = WORKSPACE.replace("require_reason: true", "require_reason: false");
        let report = run(&[("ws.yaml", &relaxed), ("o.yaml", &o)], NOW);
        assert!(report.diagnostics.is_empty());
    }

    #[test]
    fn overlapping_overrides_for_one_user_are_errors_labelled_on_both() {
        let a = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01");
        let b = override_doc("b", "a@acme.com", "2026-11-30", "2026-12-15");
        let c = override_doc("c", "a@acme.com", "2026-12-01", "2026-12-02"); // touches `a`, overlaps `b`
        let other = override_doc("d", "d@acme.com", "2026-11-10", "2026-12-01");
        let report = run(
            &[("ws.yaml", WORKSPACE), ("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c), ("d.yaml", &other)],
            NOW,
        );
        assert_eq!(summary(&report), ["override/overlap b.yaml:6:9", "override/overlap c.yaml:6:9"]);
        let d = &report.diagnostics[0];
        assert_eq!(d.message, "overrides `a` and `b` for `a@acme.com` overlap from 2026-11-30 to 2026-12-01");
        assert_eq!(d.labels[0].location.to_string(), "a.yaml:6:9");
    }

    #[test]
    fn an_overlap_entirely_in_the_past_is_not_reported() {
        let a = override_doc("a", "a@acme.com", "2026-10-01", "2026-10-20");
        let b = override_doc("b", "a@acme.com", "2026-10-10", "2026-11-01");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &a), ("b.yaml", &b)], NOW);
        assert_eq!(summary(&report), ["override/expired a.yaml:7:10", "override/expired b.yaml:7:10"]);
    }

    #[test]
    fn an_expired_override_is_a_warning_only() {
        let o = override_doc("a", "a@acme.com", "2026-11-01", "2026-11-20");
        // Expiry is exclusive: midnight in New York is 05:00 UTC.
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], "2026-11-20T04:59:59Z");
        assert!(report.diagnostics.is_empty());
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], "2026-11-20T05:00:00Z");
        assert_eq!(summary(&report), ["override/expired o.yaml:7:10"]);
        assert_eq!(report.diagnostics[0].severity, Severity::Warning);
        assert!(!report.has_errors());
    }

    #[test]
    fn caps_above_the_total_are_warnings() {
        let ws = WORKSPACE
            .replace("credits: 2000\n", "credits: 2000\n  products: { codex: 2500, chatgpt: 2000 }\n");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert_eq!(summary(&report), ["limit/cap-exceeds-total ws.yaml:7:22"]);
        assert_eq!(report.diagnostics[0].severity, Severity::Warning);
    }

    #[test]
    fn a_rate_cap_is_positive_and_at_most_the_total() {
        let ws = WORKSPACE.replace("credits: 2000\n", "credits: 2000\n  per_hour: 150\n");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert!(report.diagnostics.is_empty(), "{:?}", summary(&report));

        let ws = WORKSPACE.replace("credits: 2000\n", "credits: 2000\n  per_hour: 2500\n");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert_eq!(summary(&report), ["limit/rate-cap-exceeds-total ws.yaml:7:13"]);
        assert!(report.has_errors());

        let ws = WORKSPACE.replace("credits: 2000\n", "credits: 2000\n  per_hour: 0\n");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert_eq!(summary(&report), ["limit/rate-cap-not-positive ws.yaml:7:13"]);

        // an override's `limit` is checked like the default; its `add` only for a positive amount
        let o = "apiVersion: budgit/v1\nkind: Override\nname: a\nuser: a@acme.com\n\
                 limit: { credits: 100, per_hour: 101 }\nexpires: 2026-12-01\nreason: testing\n";
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", o)], NOW);
        assert_eq!(summary(&report), ["limit/rate-cap-exceeds-total o.yaml:5:34"]);
        let o = o.replace("limit: { credits: 100, per_hour: 101 }", "add: { per_hour: 0 }");
        let report = run(&[("ws.yaml", WORKSPACE), ("o.yaml", &o)], NOW);
        assert_eq!(summary(&report), ["limit/rate-cap-not-positive o.yaml:5:18"]);
    }

    #[test]
    fn an_unknown_field_does_not_hide_the_checks_across_documents() {
        // `b` has a typo in a field name: its overlap with `a` and its length used to be
        // reported only once the typo was fixed.
        let a = override_doc("a", "a@acme.com", "2026-11-10", "2026-12-01");
        let b = override_doc("b", "a@acme.com", "2026-11-30", "2027-06-15")
            .replace("reason:", "reasn: x\nreason:");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &a), ("b.yaml", &b)], NOW);
        assert_eq!(
            summary(&report),
            [
                "override/overlap b.yaml:6:9",
                "override/too-long b.yaml:7:10",
                "schema/unknown-field b.yaml:8:1"
            ]
        );
        // Any other schema finding keeps the document out: its fields cannot be trusted.
        let c = b.replace("add: { credits: 100 }", "add: { credits: lots }");
        let report = run(&[("ws.yaml", WORKSPACE), ("a.yaml", &a), ("c.yaml", &c)], NOW);
        assert!(summary(&report).iter().all(|f| f.starts_with("schema/")), "{:?}", summary(&report));
    }

    #[test]
    fn a_member_who_is_also_excluded_is_a_warning() {
        let g = "apiVersion: budgit/v1\nkind: Group\nname: eng\nmembers: [a@acme.com]\nexclude: [b@acme.com, a@acme.com]\nlimit: { credits: 10 }\n";
        let report = run(&[("ws.yaml", WORKSPACE), ("g.yaml", g)], NOW);
        assert_eq!(summary(&report), ["group/member-excluded g.yaml:5:23"]);
    }
}
