//! Stage 3b: policies a declared vendor target cannot express.
//!
//! When the Workspace declares a target under `vendors`, every feature that
//! target has no object for is an error here, at the field that uses it, so
//! nothing is silently dropped when the reconciler writes to the vendor. The
//! rules and the money conversion belong to [`crate::vendor`]; this module only
//! locates the findings.

use crate::Credits;
use crate::diag::{Code, Diagnostic, Location, Report};
use crate::load::PolicySet;
use crate::model::{Limit, Vendor};
use crate::vendor::{CLAUDE_ENTERPRISE, Money, claude_period};

/// Every vendor check; findings go to `report`.
pub(crate) fn check(policies: &PolicySet, report: &mut Report) {
    let Some(ws) = policies.workspace() else { return };
    let Some(declared) = ws.doc.vendors.get(&Vendor::ClaudeEnterprise) else { return };
    let base = format!("/vendors/{CLAUDE_ENTERPRISE}");
    let money = match Money::new(declared) {
        Ok(m) => Some(m),
        Err(e) => {
            let field =
                if matches!(e, crate::vendor::MoneyError::BadCurrency(_)) { "currency" } else { "credit" };
            report.push(
                Diagnostic::error(Code::VendorBadMoney, e.to_string())
                    .at(ws.loc(&format!("{base}/{field}")))
                    .with_label("cannot convert credits")
                    .with_help("write a lowercase ISO 4217 code such as `usd` and what one credit is worth in it, such as `credit: \"0.01\"`"),
            );
            None
        }
    };
    if claude_period(ws.doc.period).is_none() {
        report.push(
            Diagnostic::error(
                Code::VendorUnsupportedPeriod,
                format!("`{CLAUDE_ENTERPRISE}` has daily, weekly and monthly limits, not quarterly ones"),
            )
            .at(ws.loc("/period"))
            .with_label("no such period at the vendor")
            .with_help("use `period: month` (or `day`, `week`), or remove the target from `vendors`"),
        );
    }
    check_limit(report, money.as_ref(), &|p| ws.loc(p), "/default", &ws.doc.default, "the default limit");
    for g in &policies.groups {
        let whose = format!("group `{}`", g.doc.name);
        check_limit(report, money.as_ref(), &|p| g.loc(p), "/limit", &g.doc.limit, &whose);
    }
    for o in &policies.overrides {
        let whose = format!("override `{}`", o.doc.name);
        if let Some(l) = &o.doc.limit {
            check_limit(report, money.as_ref(), &|p| o.loc(p), "/limit", l, &whose);
        }
        if let Some(add) = &o.doc.add {
            let caps = Limit {
                credits: Credits::ZERO,
                products: add.products.clone(),
                models: add.models.clone(),
                per_hour: add.per_hour,
            };
            check_limit(report, money.as_ref(), &|p| o.loc(p), "/add", &caps, &whose);
            if let Some(c) = add.credits {
                credits(report, money.as_ref(), o.loc("/add/credits"), c, &whose);
            }
        }
    }
    for g in &policies.groups {
        if g.doc.pool.is_some() {
            report.push(
                Diagnostic::error(
                    Code::VendorUnsupportedPool,
                    format!(
                        "group `{}` has a pool, and `{CLAUDE_ENTERPRISE}` has no shared team budget",
                        g.doc.name
                    ),
                )
                .at(g.loc("/pool"))
                .with_label("no pool at the vendor")
                .with_help("remove the pool, or remove the target from `vendors`"),
            );
        }
    }
}

fn credits(report: &mut Report, money: Option<&Money>, at: Location, c: Credits, whose: &str) {
    let Some(money) = money else { return };
    if let Err(e) = money.to_minor(c) {
        report.push(
            Diagnostic::error(Code::VendorNotRepresentable, format!("{whose}: {e}"))
                .at(at)
                .with_label("would need rounding")
                .with_help(format!(
                    "choose an amount that is a whole number of {} minor units at {} {} per credit",
                    money.currency, money.credit, money.currency
                )),
        );
    }
}

fn check_limit(
    report: &mut Report,
    money: Option<&Money>,
    doc_loc: &dyn Fn(&str) -> Location,
    at: &str,
    l: &Limit,
    whose: &str,
) {
    for (field, caps) in [("products", &l.products), ("models", &l.models)] {
        if let Some(name) = caps.keys().next() {
            report.push(
                Diagnostic::error(
                    Code::VendorUnsupportedCap,
                    format!(
                        "{whose} caps `{name}`, and `{CLAUDE_ENTERPRISE}` limits only a member's total spend"
                    ),
                )
                .at(doc_loc(&format!("{at}/{field}")))
                .with_label("the vendor has no per-product or per-model limit")
                .with_help("remove the caps, or remove the target from `vendors`"),
            );
        }
    }
    if l.per_hour.is_some() {
        report.push(rate_cap_warning(doc_loc(&format!("{at}/per_hour")), whose, CLAUDE_ENTERPRISE));
    }
    credits(report, money, doc_loc(&format!("{at}/credits")), l.credits, whose);
}

/// A rate cap on a limit written to a vendor that has none: a warning, not an error,
/// because the rest of the limit is still written and the rate cap still holds for
/// spend that goes through the service's `/v1/check`; only the vendor's own limit
/// does not enforce it.
pub(crate) fn rate_cap_warning(at: Location, whose: &str, vendor: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::VendorUnsupportedRateCap,
        format!("{whose} has a rate cap (`per_hour`), and `{vendor}` has no limit per hour"),
    )
    .at(at)
    .with_label("not written to the vendor")
    .with_help("the rate cap holds only for spend checked with the workspace service's `/v1/check`; remove it if the vendor is the only enforcement")
}

#[cfg(test)]
mod tests {
    use crate::diag::Code;
    use crate::validate::test_support::{run, summary};

    const NOW: &str = "2026-11-10T12:00:00Z";

    fn workspace(period: &str, default: &str, vendors: bool) -> String {
        let mut ws = format!(
            "apiVersion: budgit/v1\nkind: Workspace\nname: acme\nperiod: {period}\ndefault:\n{default}"
        );
        if vendors {
            ws.push_str("vendors:\n  claude-enterprise:\n    currency: usd\n    credit: \"0.01\"\n");
        }
        ws
    }

    const GROUP: &str = "apiVersion: budgit/v1
kind: Group
name: eng
members: [a@x.com]
limit:
  credits: 500
  products: { codex: 100 }
  per_hour: 50
pool:
  credits: 5000
";

    const OVERRIDE: &str = "apiVersion: budgit/v1
kind: Override
name: a-boost
user: a@x.com
add: { credits: 0.5 }
expires: 2026-11-20
reason: a launch
";

    #[test]
    fn what_the_target_cannot_express_is_an_error_at_its_place() {
        let ws = workspace("quarter", "  credits: 100\n", true);
        let report = run(&[("ws.yaml", &ws), ("eng.yaml", GROUP), ("o.yaml", OVERRIDE)], NOW);
        let vendor: Vec<String> = summary(&report).into_iter().filter(|s| s.starts_with("vendor/")).collect();
        assert_eq!(
            vendor,
            [
                "vendor/unsupported-cap eng.yaml:7:13",
                "vendor/unsupported-rate-cap eng.yaml:8:13",
                "vendor/unsupported-pool eng.yaml:10:3",
                "vendor/not-representable o.yaml:5:17",
                "vendor/unsupported-period ws.yaml:4:9",
            ]
        );
        let rate = report.diagnostics.iter().find(|d| d.code == Code::VendorUnsupportedRateCap).unwrap();
        assert_eq!(rate.severity, crate::diag::Severity::Warning);
        let d = report.diagnostics.iter().find(|d| d.code == Code::VendorNotRepresentable).unwrap();
        assert_eq!(
            d.message,
            "override `a-boost`: 0.5 credits are 0.005 USD, not a whole number of USD minor units"
        );
        assert!(report.has_errors());
    }

    #[test]
    fn without_the_target_declared_the_same_policies_have_no_vendor_finding() {
        let ws = workspace("quarter", "  credits: 100\n", false);
        let report = run(&[("ws.yaml", &ws), ("eng.yaml", GROUP), ("o.yaml", OVERRIDE)], NOW);
        assert!(summary(&report).iter().all(|s| !s.starts_with("vendor/")), "{:?}", summary(&report));
    }

    #[test]
    fn a_bad_currency_or_a_worthless_credit_is_refused() {
        let ws = workspace("month", "  credits: 100\n", true).replace("usd", "dollars");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert!(
            summary(&report)
                .iter()
                .any(|s| s.starts_with(Code::VendorBadMoney.as_str()) || s.starts_with("schema/")),
            "{:?}",
            summary(&report)
        );
        let ws = workspace("month", "  credits: 100\n", true).replace("credit: \"0.01\"", "credit: \"0\"");
        let report = run(&[("ws.yaml", &ws)], NOW);
        assert_eq!(summary(&report), ["vendor/bad-money ws.yaml:10:13"]);
    }
}
