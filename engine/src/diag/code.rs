//! The diagnostic codes: one variant per code, each with its stable text and default
//! severity.
//!
//! A code's text (`stage/kebab-case`) is what users see, search for and filter on: the
//! JSON `code` field, the SARIF `ruleId`, the title of a GitHub annotation, the heading
//! of its section in `docs/diagnostics.md`. Naming a variant instead of writing that
//! text at each finding makes a misspelt or undocumented code a compile error, and a
//! test holds the enum and the document to the same list.

use std::fmt;

use serde::{Serialize, Serializer};

use super::Severity;

/// Declares [`Code`] with its text and default severity, and [`Code::ALL`] in the
/// order of `docs/diagnostics.md`.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal, $severity:ident;)*) => {
        /// A diagnostic code. Its text is [`Code::as_str`]; its reference is the section
        /// of `docs/diagnostics.md` with that heading.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* #[doc = concat!("`", $text, "`")] $variant,)*
        }

        impl Code {
            /// Every code, in the order of `docs/diagnostics.md`.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The stable `stage/kebab-case` text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// The severity a finding of this code has unless something says otherwise
            /// (`validate --strict`, a guardrail's `severity`): the `Severity:` lead of
            /// its section in `docs/diagnostics.md`.
            pub const fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }
        }
    };
}

codes! {
    InputTooLarge = "input/too-large", Error;
    InputNotUtf8 = "input/not-utf8", Error;
    InputNotText = "input/not-text", Error;
    RepoEmpty = "repo/empty", Error;
    GitNoPolicyDir = "git/no-policy-dir", Error;
    YamlSyntax = "yaml/syntax", Error;
    YamlDuplicateKey = "yaml/duplicate-key", Error;
    YamlLimit = "yaml/limit", Error;
    SchemaNotADocument = "schema/not-a-document", Error;
    SchemaMissingKind = "schema/missing-kind", Error;
    SchemaUnknownKind = "schema/unknown-kind", Error;
    SchemaUnknownField = "schema/unknown-field", Error;
    SchemaMissingField = "schema/missing-field", Error;
    SchemaWrongType = "schema/wrong-type", Error;
    SchemaNull = "schema/null", Error;
    SchemaWrongValue = "schema/wrong-value", Error;
    SchemaOutOfRange = "schema/out-of-range", Error;
    SchemaInvalidValue = "schema/invalid-value", Error;
    SchemaInvalidDate = "schema/invalid-date", Error;
    SchemaBadCredits = "schema/bad-credits", Error;
    SchemaInvalid = "schema/invalid", Error;
    SchemaInternal = "schema/internal", Error;
    InternalWorker = "internal/worker", Error;
    WorkspaceMissing = "workspace/missing", Error;
    WorkspaceDuplicate = "workspace/duplicate", Error;
    WorkspaceBadTimezone = "workspace/bad-timezone", Error;
    NameDuplicate = "name/duplicate", Error;
    IdentityNotCanonical = "identity/not-canonical", Warning;
    IdentityHiddenCharacter = "identity/hidden-character", Error;
    GroupMemberExcluded = "group/member-excluded", Warning;
    GroupUnknownMember = "group/unknown-member", Warning;
    LimitCapExceedsTotal = "limit/cap-exceeds-total", Warning;
    LimitRateCapNotPositive = "limit/rate-cap-not-positive", Error;
    LimitRateCapExceedsTotal = "limit/rate-cap-exceeds-total", Error;
    OverrideUnknownUser = "override/unknown-user", Warning;
    OverrideAddOrLimit = "override/add-or-limit", Error;
    OverrideExpiresBeforeStarts = "override/expires-before-starts", Error;
    OverrideTooLong = "override/too-long", Error;
    OverrideMissingReason = "override/missing-reason", Error;
    OverrideOverlap = "override/overlap", Error;
    OverrideExpired = "override/expired", Warning;
    CelSyntax = "cel/syntax", Error;
    CelTooLong = "cel/too-long", Error;
    CelUnknownAttribute = "cel/unknown-attribute", Error;
    CelUnknownVariable = "cel/unknown-variable", Error;
    CelUnknownFunction = "cel/unknown-function", Error;
    CelUnknownField = "cel/unknown-field", Error;
    CelNotACondition = "cel/not-a-condition", Error;
    CelTypeMismatch = "cel/type-mismatch", Error;
    GuardrailFailed = "guardrail/failed", Error;
    GuardrailError = "guardrail/error", Error;
    VendorBadMoney = "vendor/bad-money", Error;
    VendorUnsupportedPeriod = "vendor/unsupported-period", Error;
    VendorUnsupportedCap = "vendor/unsupported-cap", Error;
    VendorUnsupportedRateCap = "vendor/unsupported-rate-cap", Warning;
    VendorUnsupportedPool = "vendor/unsupported-pool", Error;
    VendorPoolWithoutProject = "vendor/pool-without-project", Error;
    VendorProjectWithoutPool = "vendor/project-without-pool", Error;
    VendorDuplicateProject = "vendor/duplicate-project", Error;
    VendorUnsupportedOverride = "vendor/unsupported-override", Error;
    VendorUnsupportedEnforcement = "vendor/unsupported-enforcement", Error;
    VendorNoAlertRecipients = "vendor/no-alert-recipients", Error;
    VendorUnsupportedSetting = "vendor/unsupported-setting", Error;
    VendorNotRepresentable = "vendor/not-representable", Error;
    VendorNotAMember = "vendor/not-a-member", Error;
    DirectoryBadRow = "directory/bad-row", Error;
    DirectoryDuplicateUser = "directory/duplicate-user", Error;
    DirectoryMissingColumn = "directory/missing-column", Warning;
    DirectoryUnknownColumn = "directory/unknown-column", Warning;
    UsageBadRow = "usage/bad-row", Error;
    UsageBucketSpansDays = "usage/bucket-spans-days", Warning;
    UsageNoProduct = "usage/no-product", Warning;
    UsageOutsidePeriod = "usage/outside-period", Warning;
    UsageUnknownColumn = "usage/unknown-column", Error;
    UsageUnknownUser = "usage/unknown-user", Warning;
    OutcomesBadRow = "outcomes/bad-row", Error;
    PullUnmappedUser = "pull/unmapped-user", Warning;
    PullUnattributed = "pull/unattributed", Warning;
    PullInexactConversion = "pull/inexact-conversion", Warning;
}

impl Code {
    /// The code with this text, if there is one.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str() == text)
    }

    /// The stage: the part before the `/` (`schema` of `schema/unknown-field`).
    pub fn stage(self) -> &'static str {
        self.as_str().split_once('/').map_or(self.as_str(), |(stage, _)| stage)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes order by their text, so sorted findings and SARIF rules keep the order they had
/// when codes were strings.
impl Ord for Code {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Serialized as its text: the JSON `code` field reads as it always has.
impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn texts_are_distinct_namespaced_kebab_case_and_parse_back() {
        let mut seen = BTreeSet::new();
        for &code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "`{text}` is the text of two variants");
            let (stage, name) = text.split_once('/').unwrap();
            let word =
                |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            assert!(word(stage) && name.split('-').all(word), "`{text}`");
            assert_eq!(code.stage(), stage);
            assert_eq!(Code::parse(text), Some(code));
        }
        assert_eq!(Code::parse("yaml/nope"), None);
        assert_eq!(serde_json::to_string(&Code::YamlSyntax).unwrap(), "\"yaml/syntax\"");
        assert!(Code::CelSyntax < Code::YamlSyntax && Code::YamlSyntax > Code::UsageBadRow);
    }
}
