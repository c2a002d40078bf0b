//! Credit requests as reviewable changes: draft an Override file, check it like CI would.
//!
//! Owns the requested Override's name, path and dates (its YAML is written by
//! [`crate::edit::write_override`]), the branch name and commit message, and the check of the would-be tree (the base's sources plus the
//! new file, through [`crate::validate::validate_sources`]). Writing the branch is
//! [`crate::load::git::GitRepo::commit_new_file`]; the CLI ties the two together so
//! that nothing invalid is ever committed.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::Credits;
use crate::diag::Diagnostic;
use crate::edit::{CapSort, NewOverride, OverrideField, cap_name_ok, write_override};
use crate::load::git::ref_component;
use crate::load::{PolicySet, Source};
use crate::validate::{ValidateOptions, Validated, validate_sources};

/// How much the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Credits added to the user's resolved limit (`add:`).
    Add(Credits),
    /// A total limit replacing the resolved one, caps included (`limit:`).
    Limit(Credits),
}

/// What the credits are needed for: the total, or one product or model inside it.
///
/// A person blocked on a product or model cap stays blocked when only the total is
/// raised: a request for `codex` raises the `codex` cap by the same amount.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Need {
    /// The total only.
    #[default]
    Total,
    /// The total and this product's cap.
    Product(String),
    /// The total and this model's cap.
    Model(String),
}

impl Need {
    /// The cap raised with the total, if any.
    pub fn cap(&self) -> Option<(CapSort, &str)> {
        match self {
            Need::Total => None,
            Need::Product(p) => Some((CapSort::Product, p)),
            Need::Model(m) => Some((CapSort::Model, m)),
        }
    }

    /// How a reviewer reads it: `the total`, `product codex`, `model gpt-5-pro`.
    pub fn describe(&self) -> String {
        match self {
            Need::Total => "the total".to_string(),
            Need::Product(p) => format!("product {p}"),
            Need::Model(m) => format!("model {m}"),
        }
    }
}

/// What a user asks for.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// The user's email.
    pub user: String,
    /// How much.
    pub amount: Amount,
    /// For how many days (the override expires `days` days after it starts).
    pub days: u32,
    /// Why.
    pub reason: String,
    /// The first day; today in the workspace time zone when absent.
    pub starts: Option<NaiveDate>,
    /// Who asked, when not the user.
    pub requested_by: Option<String>,
    /// What the credits are for: the total, or a product or model whose cap is raised too.
    pub need: Need,
    /// Context for reviewers (a comment in the file and a paragraph of the commit message).
    pub note: Option<String>,
}

/// A drafted Override file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drafted {
    /// The document's `name`.
    pub name: String,
    /// The file's path relative to the policy directory (`overrides/<name>.yaml`).
    pub path: String,
    /// The file's text.
    pub text: String,
    /// The first day.
    pub starts: NaiveDate,
    /// The day it stops applying (exclusive).
    pub expires: NaiveDate,
}

/// Why a request cannot even be drafted (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Zero days.
    #[error("`--days` must be at least 1")]
    NoDays,
    /// The user is not an email address, or has a character that cannot be seen.
    #[error("{0}")]
    User(crate::identity::IdentityError),
    /// An empty reason.
    #[error("a request needs a reason: say what the credits are for")]
    NoReason,
    /// A date overflow.
    #[error("`{0}` days from the start date is out of range")]
    OutOfRange(u32),
    /// A product or model name the policy schema would refuse.
    #[error(
        "`{0}` is not a product or model name: use 1 to 128 letters, digits and `.` `_` `-` `:` `/` `@` `+`"
    )]
    BadCap(String),
}

fn local_part(user: &str) -> &str {
    user.split('@').next().unwrap_or(user)
}

/// The default branch for a request: `budgit/request/<user-local-part>-<date>`, the
/// local part made into a name git accepts (`a..b@` gives `a.b`).
pub fn default_branch(user: &str, starts: NaiveDate) -> String {
    format!("budgit/request/{}-{}", ref_component(local_part(user), 100, "user"), starts.format("%Y-%m-%d"))
}

/// Today's date in the workspace's time zone (UTC when it has none or an unknown one).
pub fn today(policies: &PolicySet, now: DateTime<Utc>) -> NaiveDate {
    policies
        .workspace()
        .and_then(|w| w.doc.timezone.parse::<chrono_tz::Tz>().ok())
        .map_or_else(|| now.date_naive(), |tz| now.with_timezone(&tz).date_naive())
}

/// Drafts the Override file for a request against the base policies.
///
/// The name is `<user-local-part>-<start date>`, with `-2`, `-3`… when the base
/// already has an override or file by that name, or `pending` (the override file
/// names on other branches, lowercased: requests waiting for review) has it, so two
/// requests never write the same file. Names are compared without case, as a
/// case-insensitive file system would. `dir` is the policy directory
/// inside the repository: the `$schema` header points from the new file to
/// `schemas/override.schema.json` at the repository root.
pub fn draft(
    spec: &RequestSpec,
    base: &PolicySet,
    pending: &[String],
    dir: &str,
    now: DateTime<Utc>,
) -> Result<Drafted, RequestError> {
    if spec.days == 0 {
        return Err(RequestError::NoDays);
    }
    // The override names the user in canonical form, the form resolution matches on.
    let user = crate::identity::canonical_email(&spec.user).map_err(RequestError::User)?;
    let user = &*user;
    if spec.reason.trim().is_empty() {
        return Err(RequestError::NoReason);
    }
    if let Some((_, name)) = spec.need.cap()
        && !cap_name_ok(name)
    {
        return Err(RequestError::BadCap(name.chars().take(128).collect()));
    }
    let starts = spec.starts.unwrap_or_else(|| today(base, now));
    let expires = starts
        .checked_add_days(Days::new(u64::from(spec.days)))
        .ok_or(RequestError::OutOfRange(spec.days))?;
    let stem = format!("{}-{}", ref_component(local_part(user), 100, "user"), starts.format("%Y-%m-%d"));
    let taken = |name: &str| {
        let file = format!("overrides/{name}.yaml");
        base.overrides.iter().any(|o| o.doc.name.eq_ignore_ascii_case(name))
            || base.sources.iter().any(|s| s.path.eq_ignore_ascii_case(&file))
            || pending.iter().any(|p| p.eq_ignore_ascii_case(name))
    };
    let mut name = stem.clone();
    let mut n = 2;
    while taken(&name) {
        name = format!("{stem}-{n}");
        n += 1;
    }
    let (field, credits) = match spec.amount {
        Amount::Add(c) => (OverrideField::Add, c),
        Amount::Limit(c) => (OverrideField::Limit, c),
    };
    let text = write_override(&NewOverride {
        name: &name,
        user,
        field,
        credits,
        starts,
        expires,
        reason: spec.reason.trim(),
        requested_by: spec.requested_by.as_deref().map(str::trim),
        cap: spec.need.cap(),
        note: spec.note.as_deref(),
        dir,
    });
    Ok(Drafted { path: format!("overrides/{name}.yaml"), name, text, starts, expires })
}

/// The commit message: a subject a reviewer can scan, the reason in the body.
pub fn commit_message(spec: &RequestSpec, drafted: &Drafted) -> String {
    let what = amount_text(spec);
    let user = crate::identity::canonical(&spec.user).unwrap_or(std::borrow::Cow::Borrowed(spec.user.trim()));
    let note = spec
        .note
        .as_deref()
        .map(crate::edit::comment_line)
        .filter(|n| !n.is_empty())
        .map(|n| format!("Context: {n}\n\n"))
        .unwrap_or_default();
    format!(
        "Request {what} for {} until {}\n\n{}\n\n{note}Override `{}` from {} to {} (exclusive).\n",
        user,
        drafted.expires.format("%Y-%m-%d"),
        spec.reason.trim(),
        drafted.name,
        drafted.starts.format("%Y-%m-%d"),
        drafted.expires.format("%Y-%m-%d"),
    )
}

/// The amount as a reviewer reads it: `+1500 credits for codex`, `a limit of 8000 credits`.
pub fn amount_text(spec: &RequestSpec) -> String {
    let base = match spec.amount {
        Amount::Add(c) => format!("+{c} credits"),
        Amount::Limit(c) => format!("a limit of {c} credits"),
    };
    match (&spec.amount, &spec.need) {
        (_, Need::Total) => base,
        (Amount::Add(_), Need::Product(p) | Need::Model(p)) => format!("{base} for {p}"),
        // a replacing limit drops every cap: the product is bounded by the total alone
        (Amount::Limit(_), Need::Product(p) | Need::Model(p)) => format!("{base} (uncapped {p})"),
    }
}

/// Validates the would-be tree: the base's sources plus the drafted file, as CI would.
pub fn check(
    base_sources: &[Source],
    base_findings: &[Diagnostic],
    drafted: &Drafted,
    commit: Option<Arc<str>>,
    options: &ValidateOptions,
) -> Validated {
    let mut sources = base_sources.to_vec();
    sources.push(Source { path: drafted.path.as_str().into(), text: drafted.text.as_str().into(), commit });
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    validate_sources(sources, base_findings.to_vec(), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_sources;
    use chrono::TimeZone;

    fn spec() -> RequestSpec {
        RequestSpec {
            user: "Alice.Nguyen@acme.com".into(),
            amount: Amount::Add(Credits::from_whole(500)),
            days: 14,
            reason: "Codex: migration \"phase 2\" (PAY-1)".into(),
            starts: None,
            requested_by: None,
            need: Need::Total,
            note: None,
        }
    }

    #[test]
    fn drafts_a_parseable_override_named_from_user_and_date() {
        let base = PolicySet::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 23, 0, 0).unwrap();
        let d = draft(&spec(), &base, &[], "policies", now).unwrap();
        assert_eq!(d.name, "alice.nguyen-2026-11-27");
        assert_eq!(d.path, "overrides/alice.nguyen-2026-11-27.yaml");
        assert_eq!(d.expires.to_string(), "2026-12-11");
        assert!(d.text.starts_with("# yaml-language-server: $schema=../../schemas/override.schema.json\n"));
        let (set, findings) = load_sources(vec![Source {
            path: d.path.clone().into(),
            text: d.text.clone().into(),
            commit: None,
        }]);
        assert!(findings.is_empty(), "{findings:?}\n{}", d.text);
        let o = &set.overrides[0].doc;
        assert_eq!(o.reason.as_deref(), Some("Codex: migration \"phase 2\" (PAY-1)"));
        assert_eq!(o.add.as_ref().and_then(|a| a.credits), Some(Credits::from_whole(500)));
        assert_eq!(default_branch(&o.user, d.starts), "budgit/request/alice.nguyen-2026-11-27");
        assert!(
            commit_message(&spec(), &d).starts_with("Request +500 credits for alice.nguyen@acme.com until")
        );
        // Asked for as `Alice.Nguyen@`, the file names the user as the directory does.
        assert!(d.text.contains("\nuser: alice.nguyen@acme.com\n"), "{}", d.text);
    }

    #[test]
    fn avoids_taken_names_and_rejects_nonsense() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let first = draft(&spec(), &PolicySet::default(), &[], "", now).unwrap();
        assert!(first.text.contains("$schema=../schemas/"));
        let (base, _) = load_sources(vec![Source {
            path: first.path.clone().into(),
            text: first.text.clone().into(),
            commit: None,
        }]);
        let second = draft(&spec(), &base, &[], "", now).unwrap();
        assert_eq!(second.name, "alice.nguyen-2026-11-27-2");
        assert!(matches!(
            draft(&RequestSpec { days: 0, ..spec() }, &base, &[], "", now),
            Err(RequestError::NoDays)
        ));
        assert!(matches!(
            draft(&RequestSpec { user: "alice".into(), ..spec() }, &base, &[], "", now),
            Err(RequestError::User(crate::identity::IdentityError::NotAnEmail(_)))
        ));
        assert!(matches!(
            draft(&RequestSpec { user: "alice\u{200D}@acme.com".into(), ..spec() }, &base, &[], "", now),
            Err(RequestError::User(crate::identity::IdentityError::Hidden { .. }))
        ));
        assert!(matches!(
            draft(&RequestSpec { reason: " ".into(), ..spec() }, &base, &[], "", now),
            Err(RequestError::NoReason)
        ));
    }

    #[test]
    fn line_breaks_yaml_treats_specially_are_escaped() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let reason = "launch\u{2028}user: evil@x.com\u{85}next\u{2029}para\u{feff}\r\nend\u{7}";
        let spec = RequestSpec { reason: reason.into(), ..spec() };
        let d = draft(&spec, &PolicySet::default(), &[], "", now).unwrap();
        for c in ['\u{2028}', '\u{2029}', '\u{85}', '\u{feff}', '\r', '\u{7}'] {
            assert!(!d.text.contains(c), "U+{:04X} written raw:\n{}", u32::from(c), d.text);
        }
        assert!(d.text.contains("\\u2028user: evil@x.com\\u0085next\\u2029"), "{}", d.text);
        let (set, findings) = load_sources(vec![Source {
            path: d.path.clone().into(),
            text: d.text.clone().into(),
            commit: None,
        }]);
        assert!(findings.is_empty(), "{findings:?}\n{}", d.text);
        let o = &set.overrides[0].doc;
        assert_eq!((o.reason.as_deref(), o.user.as_str()), (Some(reason), "alice.nguyen@acme.com"));
    }

    #[test]
    fn names_never_collide_with_pending_files_or_after_sanitising() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let base = PolicySet::default();
        // the same person twice while the first request waits on its branch
        let first = draft(&spec(), &base, &[], "", now).unwrap();
        let second = draft(&spec(), &base, std::slice::from_ref(&first.name), "", now).unwrap();
        assert_ne!(first.path, second.path);
        // three people whose local parts sanitise alike, each seeing the ones before
        let mut pending = vec![first.name.clone(), second.name.clone()];
        for user in
            ["alice+nguyen@acme.com", "Alice-Nguyen@other.com", "alice..nguyen@x.com", "ALICE-NGUYEN@y.com"]
        {
            let d = draft(&RequestSpec { user: user.into(), ..spec() }, &base, &pending, "", now).unwrap();
            assert!(!pending.iter().any(|p| p.eq_ignore_ascii_case(&d.name)), "{user}: {} reused", d.name);
            pending.push(d.name.to_lowercase());
        }
        assert_eq!(pending.len(), 6);
        // a base file differing only in case is taken too (a case-insensitive checkout)
        let (base, _) = load_sources(vec![Source {
            path: "overrides/Alice.Nguyen-2026-11-27.yaml".into(),
            text: "apiVersion: budgit/v1\nkind: Override\nname: other\nuser: x@y.z\nadd: {credits: 1}\nstarts: 2026-11-01\nexpires: 2026-11-30\nreason: r\n".into(),
            commit: None,
        }]);
        assert_eq!(draft(&spec(), &base, &[], "", now).unwrap().name, "alice.nguyen-2026-11-27-2");
        assert_eq!(default_branch("a..b@acme.com", first.starts), "budgit/request/a.b-2026-11-27");
    }

    #[test]
    fn a_product_request_raises_the_total_and_that_cap_and_carries_the_note() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let spec = RequestSpec {
            amount: Amount::Add(Credits::from_whole(1500)),
            need: Need::Product("codex".into()),
            note: Some("blocked on codex\nuser: evil@x.com\u{2028}since Monday".into()),
            ..spec()
        };
        let d = draft(&spec, &PolicySet::default(), &[], "policies", now).unwrap();
        let (set, findings) = load_sources(vec![Source {
            path: d.path.clone().into(),
            text: d.text.clone().into(),
            commit: None,
        }]);
        assert!(findings.is_empty(), "{findings:?}\n{}", d.text);
        let o = &set.overrides[0].doc;
        let add = o.add.as_ref().unwrap();
        assert_eq!(add.credits, Some(Credits::from_whole(1500)));
        assert_eq!(add.products.get("codex"), Some(&Credits::from_whole(1500)));
        assert!(add.models.is_empty());
        // the note is one comment line: nothing in it becomes a key
        assert_eq!(o.user, "alice.nguyen@acme.com");
        assert!(
            d.text.contains("\n# Context: blocked on codex user: evil@x.com since Monday\nreason: "),
            "{}",
            d.text
        );
        // a person at 1,500 of a 1,500 codex cap gets 3,000 of codex after the merge
        let base = crate::model::Limit {
            credits: Credits::from_whole(2000),
            products: [("codex".to_string(), Credits::from_whole(1500))].into(),
            models: std::collections::BTreeMap::new(),
            per_hour: None,
        };
        assert_eq!(base.plus(add).products["codex"], Credits::from_whole(3000));
        let message = commit_message(&spec, &d);
        assert!(
            message.starts_with("Request +1500 credits for codex for alice.nguyen@acme.com"),
            "{message}"
        );
        assert!(
            message.contains("\n\nContext: blocked on codex user: evil@x.com since Monday\n"),
            "{message}"
        );

        let model = RequestSpec { need: Need::Model("gpt-5-pro".into()), ..spec.clone() };
        let d = draft(&model, &PolicySet::default(), &[], "", now).unwrap();
        assert!(d.text.contains("add:\n  credits: 1500\n  models:\n    gpt-5-pro: 1500\n"), "{}", d.text);
        // a replacing limit drops every cap: it names none
        let limit = RequestSpec { amount: Amount::Limit(Credits::from_whole(9000)), ..spec.clone() };
        let d = draft(&limit, &PolicySet::default(), &[], "", now).unwrap();
        assert!(d.text.contains("limit:\n  credits: 9000\nstarts:"), "{}", d.text);
        assert!(matches!(
            draft(
                &RequestSpec { need: Need::Product("co dex".into()), ..spec },
                &PolicySet::default(),
                &[],
                "",
                now
            ),
            Err(RequestError::BadCap(_))
        ));
    }
}
