//! Credit requests as reviewable changes: draft an Override file, check it like CI would.
//!
//! Owns the text of the requested Override (name, path, YAML), the branch name and
//! commit message, and the check of the would-be tree (the base's sources plus the
//! new file, through [`crate::validate::validate_sources`]). Writing the branch is
//! [`crate::load::git::GitRepo::commit_new_file`]; the CLI ties the two together so
//! that nothing invalid is ever committed.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::Credits;
use crate::diag::Diagnostic;
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
}

/// The user's local part, made into a document name fragment (`alice.nguyen` → `alice.nguyen`).
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut s: String = trimmed.chars().take(100).collect();
    if s.is_empty() {
        s.push_str("user");
    }
    s
}

fn local_part(user: &str) -> &str {
    user.split('@').next().unwrap_or(user)
}

/// The default branch for a request: `budgit/request/<user-local-part>-<date>`.
pub fn default_branch(user: &str, starts: NaiveDate) -> String {
    format!("budgit/request/{}-{}", slug(local_part(user)), starts.format("%Y-%m-%d"))
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
/// already has an override or file by that name. `dir` is the policy directory
/// inside the repository: the `$schema` header points from the new file to
/// `schemas/override.schema.json` at the repository root.
pub fn draft(
    spec: &RequestSpec,
    base: &PolicySet,
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
    let starts = spec.starts.unwrap_or_else(|| today(base, now));
    let expires = starts
        .checked_add_days(Days::new(u64::from(spec.days)))
        .ok_or(RequestError::OutOfRange(spec.days))?;
    let stem = format!("{}-{}", slug(local_part(user)), starts.format("%Y-%m-%d"));
    let taken = |name: &str| {
        base.overrides.iter().any(|o| o.doc.name == name)
            || base.sources.iter().any(|s| *s.path == *format!("overrides/{name}.yaml"))
    };
    let mut name = stem.clone();
    let mut n = 2;
    while taken(&name) {
        name = format!("{stem}-{n}");
        n += 1;
    }
    let depth = dir.split('/').filter(|p| !p.is_empty()).count() + 1;
    let up = "../".repeat(depth);
    let (field, credits) = match spec.amount {
        Amount::Add(c) => ("add", c),
        Amount::Limit(c) => ("limit", c),
    };
    let mut text = format!(
        "# yaml-language-server: $schema={up}schemas/override.schema.json\n\
         apiVersion: budgit/v1\n\
         kind: Override\n\
         name: {name}\n\
         user: {user}\n\
         {field}:\n  credits: {credits}\n\
         starts: {starts}\n\
         expires: {expires}\n\
         reason: {reason}\n",
        user = scalar(user),
        starts = starts.format("%Y-%m-%d"),
        expires = expires.format("%Y-%m-%d"),
        reason = quoted(spec.reason.trim()),
    );
    if let Some(by) = &spec.requested_by {
        text.push_str(&format!("requested_by: {}\n", scalar(by.trim())));
    }
    Ok(Drafted { path: format!("overrides/{name}.yaml"), name, text, starts, expires })
}

/// The commit message: a subject a reviewer can scan, the reason in the body.
pub fn commit_message(spec: &RequestSpec, drafted: &Drafted) -> String {
    let what = match spec.amount {
        Amount::Add(c) => format!("+{c} credits"),
        Amount::Limit(c) => format!("a limit of {c} credits"),
    };
    let user = crate::identity::canonical(&spec.user).unwrap_or(std::borrow::Cow::Borrowed(spec.user.trim()));
    format!(
        "Request {what} for {} until {}\n\n{}\n\nOverride `{}` from {} to {} (exclusive).\n",
        user,
        drafted.expires.format("%Y-%m-%d"),
        spec.reason.trim(),
        drafted.name,
        drafted.starts.format("%Y-%m-%d"),
        drafted.expires.format("%Y-%m-%d"),
    )
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

/// A plain YAML scalar when it is safe, a double-quoted one otherwise.
fn scalar(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-@".contains(c)) {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
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
        }
    }

    #[test]
    fn drafts_a_parseable_override_named_from_user_and_date() {
        let base = PolicySet::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 23, 0, 0).unwrap();
        let d = draft(&spec(), &base, "policies", now).unwrap();
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
        let first = draft(&spec(), &PolicySet::default(), "", now).unwrap();
        assert!(first.text.contains("$schema=../schemas/"));
        let (base, _) = load_sources(vec![Source {
            path: first.path.clone().into(),
            text: first.text.clone().into(),
            commit: None,
        }]);
        let second = draft(&spec(), &base, "", now).unwrap();
        assert_eq!(second.name, "alice.nguyen-2026-11-27-2");
        assert!(matches!(
            draft(&RequestSpec { days: 0, ..spec() }, &base, "", now),
            Err(RequestError::NoDays)
        ));
        assert!(matches!(
            draft(&RequestSpec { user: "alice".into(), ..spec() }, &base, "", now),
            Err(RequestError::User(crate::identity::IdentityError::NotAnEmail(_)))
        ));
        assert!(matches!(
            draft(&RequestSpec { user: "alice\u{200D}@acme.com".into(), ..spec() }, &base, "", now),
            Err(RequestError::User(crate::identity::IdentityError::Hidden { .. }))
        ));
        assert!(matches!(
            draft(&RequestSpec { reason: " ".into(), ..spec() }, &base, "", now),
            Err(RequestError::NoReason)
        ));
    }
}
