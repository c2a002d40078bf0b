//! Stage 3b, OpenAI: what an organisation reconciled with `--target openai` cannot express.
//!
//! The target is declared by `vendors.openai.reconcile` on the Workspace (a bare
//! `vendors.openai` only gives usage pulls their rate). OpenAI holds a monthly
//! spend limit and spend alerts for the organisation and for each project, in
//! US cents, and nothing per person: each group with a pool names its project,
//! the alert levels become alerts, and every amount written must be a whole
//! number of cents. Everything else is an error at the field that uses it, so
//! the reconciler never drops a rule without saying so.

use std::collections::BTreeMap;

use crate::Credits;
use crate::diag::{Code, Diagnostic, Location, Report};
use crate::load::PolicySet;
use crate::model::{Enforcement, Limit, Period, Vendor};
use crate::vendor::{CLAUDE_ENTERPRISE, Money, OPENAI, OPENAI_CURRENCY, percent_of};

const REMOVE: &str = "or remove `reconcile` from `vendors.openai`";

/// Every OpenAI target check; findings go to `report`.
pub(crate) fn check(policies: &PolicySet, report: &mut Report) {
    let Some(ws) = policies.workspace() else { return };
    if let Some(claude) = ws.doc.vendors.get(&Vendor::ClaudeEnterprise)
        && claude.reconcile.is_some()
    {
        report.push(
            Diagnostic::error(
                Code::VendorUnsupportedSetting,
                format!("`reconcile` settings are for `{OPENAI}`; `{CLAUDE_ENTERPRISE}` is a target as soon as it is declared"),
            )
            .at(ws.loc(&format!("/vendors/{CLAUDE_ENTERPRISE}/reconcile")))
            .with_label("not a setting of this target")
            .with_help("remove `reconcile` here"),
        );
    }
    let Some(declared) = ws.doc.vendors.get(&Vendor::OpenAi) else { return };
    let Some(target) = &declared.reconcile else { return };
    let base = format!("/vendors/{OPENAI}");
    let money = match Money::new(declared) {
        Ok(m) if m.currency == OPENAI_CURRENCY => Some(m),
        Ok(m) => {
            report.push(
                Diagnostic::error(
                    Code::VendorBadMoney,
                    format!("OpenAI writes spend limits in `usd`, not `{}`", m.currency.to_ascii_lowercase()),
                )
                .at(ws.loc(&format!("{base}/currency")))
                .with_label("not the organisation's currency")
                .with_help(format!(
                    "declare `currency: usd` and what a credit is worth in dollars, {REMOVE}"
                )),
            );
            None
        }
        // `validate::vendor` reports a bad rate once, for every target.
        Err(_) => None,
    };
    if ws.doc.period != Period::Month {
        report.push(
            Diagnostic::error(
                Code::VendorUnsupportedPeriod,
                format!(
                    "`{OPENAI}` has monthly spend limits only, and the workspace's period is not a month"
                ),
            )
            .at(ws.loc("/period"))
            .with_label("no such period at the vendor")
            .with_help(format!("use `period: month`, {REMOVE}")),
        );
    }
    if ws.doc.enforcement == Enforcement::Soft {
        report.push(
            Diagnostic::error(
                Code::VendorUnsupportedEnforcement,
                format!("`{OPENAI}` spend limits stop spending, and the workspace's enforcement is `soft`"),
            )
            .at(ws.loc("/enforcement"))
            .with_label("OpenAI enforces every spend limit")
            .with_help(format!("use `enforcement: hard`, {REMOVE}")),
        );
    }
    if !ws.doc.alerts.is_empty() && target.alert_recipients.is_empty() {
        report.push(
            Diagnostic::error(
                Code::VendorNoAlertRecipients,
                format!("the workspace has alert levels, and `{OPENAI}` sends spend alerts only by email to named recipients"),
            )
            .at(ws.loc(&format!("{base}/reconcile")))
            .with_label("no one to send the alerts to")
            .with_help("add `alert_recipients: [finance@example.com]`, or set `alerts: []`"),
        );
    }
    let levels = &ws.doc.alerts;
    if let Some(cap) = target.org_limit {
        amount(
            report,
            money.as_ref(),
            ws.loc(&format!("{base}/reconcile/org_limit")),
            cap,
            levels,
            "the organisation limit",
        );
    }
    caps(report, &|p| ws.loc(p), "/default", &ws.doc.default, "the default limit");
    let mut projects: BTreeMap<&str, &str> = BTreeMap::new();
    for g in &policies.groups {
        let whose = format!("group `{}`", g.doc.name);
        caps(report, &|p| g.loc(p), "/limit", &g.doc.limit, &whose);
        let project = g.doc.vendors.as_ref().and_then(|v| v.openai.as_ref()).map(|o| o.project.as_str());
        match (&g.doc.pool, project) {
            (Some(pool), Some(project)) => {
                amount(report, money.as_ref(), g.loc("/pool/credits"), pool.credits, levels, &whose);
                if let Some(first) = projects.insert(project, &g.doc.name) {
                    report.push(
                        Diagnostic::error(
                            Code::VendorDuplicateProject,
                            format!("{whose} and group `{first}` both map their pool to project `{project}`"),
                        )
                        .at(g.loc("/vendors/openai/project"))
                        .with_label("a project has one spend limit")
                        .with_help("give each group with a pool a project of its own"),
                    );
                }
            }
            (Some(_), None) => report.push(
                Diagnostic::error(
                    Code::VendorPoolWithoutProject,
                    format!("{whose} has a pool, and names no OpenAI project to hold it"),
                )
                .at(g.loc("/pool"))
                .with_label("OpenAI holds a shared budget only as a project's spend limit")
                .with_help(format!("add `vendors: {{ openai: {{ project: proj_… }} }}` to the group, remove the pool, {REMOVE}")),
            ),
            (None, Some(project)) => report.push(
                Diagnostic::error(
                    Code::VendorProjectWithoutPool,
                    format!("{whose} names project `{project}`, and has no pool to become its spend limit"),
                )
                .at(g.loc("/vendors/openai/project"))
                .with_label("nothing to write to the project")
                .with_help("add a `pool`, or remove the project"),
            ),
            (None, None) => {}
        }
    }
    for o in &policies.overrides {
        report.push(
            Diagnostic::error(
                Code::VendorUnsupportedOverride,
                format!(
                    "override `{}` sets one person's limit, and `{OPENAI}` has no per-person limit",
                    o.doc.name
                ),
            )
            .at(o.loc("/user"))
            .with_label("OpenAI limits organisations and projects, not people")
            .with_help(format!("raise the group's pool or the organisation limit instead, {REMOVE}")),
        );
    }
}

/// An amount written as a spend limit, and its alert thresholds, in whole cents.
fn amount(
    report: &mut Report,
    money: Option<&Money>,
    at: Location,
    credits: Credits,
    levels: &[u32],
    whose: &str,
) {
    let Some(money) = money else { return };
    let help = format!(
        "choose an amount that is a whole number of cents at {} USD per credit, also at each alert level",
        money.credit
    );
    if let Err(e) = money.to_minor(credits) {
        report.push(
            Diagnostic::error(Code::VendorNotRepresentable, format!("{whose}: {e}"))
                .at(at)
                .with_label("would need rounding")
                .with_help(help),
        );
        return;
    }
    for &level in levels {
        let Some(threshold) = percent_of(credits, level) else {
            report.push(
                Diagnostic::error(
                    Code::VendorNotRepresentable,
                    format!("{whose}: the {level}% alert of {credits} credits is no exact number of credits"),
                )
                .at(at.clone())
                .with_label("would need rounding")
                .with_help(help.clone()),
            );
            return;
        };
        if let Err(e) = money.to_minor(threshold) {
            report.push(
                Diagnostic::error(Code::VendorNotRepresentable, format!("{whose}: the {level}% alert: {e}"))
                    .at(at.clone())
                    .with_label("would need rounding")
                    .with_help(help.clone()),
            );
            return;
        }
    }
}

fn caps(report: &mut Report, doc_loc: &dyn Fn(&str) -> Location, at: &str, l: &Limit, whose: &str) {
    if l.per_hour.is_some() {
        report.push(super::vendor::rate_cap_warning(doc_loc(&format!("{at}/per_hour")), whose, OPENAI));
    }
    for (field, caps) in [("products", &l.products), ("models", &l.models)] {
        if let Some(name) = caps.keys().next() {
            report.push(
                Diagnostic::error(
                    Code::VendorUnsupportedCap,
                    format!("{whose} caps `{name}`, and `{OPENAI}` limits only what an organisation or project spends"),
                )
                .at(doc_loc(&format!("{at}/{field}")))
                .with_label("the vendor has no per-product or per-model limit")
                .with_help(format!("remove the caps, {REMOVE}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Code;
    use crate::validate::test_support::{run, summary};

    const NOW: &str = "2026-11-10T12:00:00Z";

    const WS: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
period: week
enforcement: soft
default:
  credits: 100
  products: { codex: 50 }
vendors:
  openai:
    currency: usd
    credit: \"0.01\"
    reconcile:
      org_limit: 100.5
";

    const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: eng
members: [a@x.com]
limit:
  credits: 500
pool:
  credits: 5000
";

    const DATA: &str = "apiVersion: budgit/v1
kind: Group
name: data
members: [b@x.com]
limit:
  credits: 500
pool:
  credits: 333
vendors:
  openai:
    project: proj_data
";

    const OPS: &str = "apiVersion: budgit/v1
kind: Group
name: ops
members: [c@x.com]
limit:
  credits: 500
  per_hour: 20
vendors:
  openai:
    project: proj_ops
";

    const BOOST: &str = "apiVersion: budgit/v1
kind: Override
name: a-boost
user: a@x.com
add: { credits: 50 }
expires: 2026-11-20
reason: a launch
";

    #[test]
    fn what_openai_cannot_express_is_an_error_at_its_place() {
        let files =
            [("ws.yaml", WS), ("eng.yaml", ENG), ("data.yaml", DATA), ("ops.yaml", OPS), ("o.yaml", BOOST)];
        let report = run(&files, NOW);
        let vendor: Vec<String> = summary(&report).into_iter().filter(|s| s.starts_with("vendor/")).collect();
        assert_eq!(
            vendor,
            [
                "vendor/not-representable data.yaml:8:12",
                "vendor/pool-without-project eng.yaml:8:3",
                "vendor/unsupported-override o.yaml:4:7",
                "vendor/unsupported-rate-cap ops.yaml:7:13",
                "vendor/project-without-pool ops.yaml:10:14",
                "vendor/unsupported-period ws.yaml:4:9",
                "vendor/unsupported-enforcement ws.yaml:5:14",
                "vendor/unsupported-cap ws.yaml:8:13",
                "vendor/no-alert-recipients ws.yaml:14:7",
                "vendor/not-representable ws.yaml:14:18",
            ]
        );
        let d = report
            .diagnostics
            .iter()
            .find(|d| d.code == Code::VendorNotRepresentable && d.message.contains("data"))
            .unwrap();
        assert_eq!(
            d.message,
            "group `data`: the 50% alert: 166.5 credits are 1.665 USD, not a whole number of USD minor units"
        );
    }

    #[test]
    fn a_bare_openai_rate_is_no_target_and_a_shaped_policy_is_clean() {
        let bare = WS.replace("    reconcile:\n      org_limit: 100.5\n", "");
        let report = run(&[("ws.yaml", &bare), ("eng.yaml", ENG), ("o.yaml", BOOST)], NOW);
        assert!(summary(&report).iter().all(|s| !s.starts_with("vendor/")), "{:?}", summary(&report));
        let ws = "apiVersion: budgit/v1
kind: Workspace
name: acme
default:
  credits: 100
vendors:
  openai:
    currency: usd
    credit: \"0.01\"
    reconcile:
      org_limit: 9000
      alert_recipients: [finance@x.com]
";
        let data = DATA.replace("credits: 333", "credits: 400");
        let report = run(&[("ws.yaml", ws), ("data.yaml", &data)], NOW);
        assert!(!report.has_errors(), "{:?}", summary(&report));
    }

    #[test]
    fn two_groups_cannot_share_a_project() {
        let ws = "apiVersion: budgit/v1
kind: Workspace
name: acme
default:
  credits: 100
alerts: []
vendors:
  openai: { currency: usd, credit: \"1\", reconcile: {} }
";
        let other = DATA.replace("name: data", "name: other").replace("b@x.com", "c@x.com");
        let report = run(&[("ws.yaml", ws), ("data.yaml", DATA), ("other.yaml", &other)], NOW);
        assert_eq!(summary(&report), ["vendor/duplicate-project other.yaml:11:14"]);
    }
}
