//! Limits: a total with optional per-product and per-model caps.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Credits;

/// A credit limit per period: a total, and optional caps inside it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Total credits a user may spend per period.
    pub credits: Credits,
    /// Caps per product (`chatgpt`, `codex`, …) inside the total.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub products: BTreeMap<String, Credits>,
    /// Caps per model (`gpt-5-pro`, …) inside the total.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Credits>,
    /// The rate cap: the most a user may spend in any sliding hour, inside the total.
    /// Enforced by the workspace service's `/v1/check`; absent means no rate cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Credits>,
}

/// Credits added on top of the resolved limit; each field named is added, the rest left as is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitAdd {
    /// Credits added to the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    /// Credits added to product caps (a product without a cap keeps having none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub products: BTreeMap<String, Credits>,
    /// Credits added to model caps (a model without a cap keeps having none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Credits>,
    /// Credits added to the rate cap (a limit without a rate cap keeps having none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Credits>,
}

impl Limit {
    /// This limit with `add` added: the total and each named cap that exists.
    pub fn plus(&self, add: &LimitAdd) -> Limit {
        let mut out = self.clone();
        if let Some(c) = add.credits {
            out.credits += c;
        }
        for (name, extra) in &add.products {
            if let Some(cap) = out.products.get_mut(name) {
                *cap += *extra;
            }
        }
        for (name, extra) in &add.models {
            if let Some(cap) = out.models.get_mut(name) {
                *cap += *extra;
            }
        }
        if let (Some(cap), Some(extra)) = (out.per_hour.as_mut(), add.per_hour) {
            *cap += extra;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_raises_named_fields_only() {
        let base = Limit {
            credits: Credits::from_whole(2000),
            products: [("codex".to_string(), Credits::from_whole(1500))].into(),
            models: [("gpt-5-pro".to_string(), Credits::from_whole(200))].into(),
            per_hour: Some(Credits::from_whole(150)),
        };
        let add = LimitAdd {
            credits: Some(Credits::from_whole(5000)),
            products: [
                ("codex".to_string(), Credits::from_whole(100)),
                ("chatgpt".to_string(), Credits::from_whole(7)),
            ]
            .into(),
            models: BTreeMap::new(),
            per_hour: Some(Credits::from_whole(50)),
        };
        let out = base.plus(&add);
        assert_eq!(out.credits, Credits::from_whole(7000));
        assert_eq!(out.products["codex"], Credits::from_whole(1600));
        assert!(!out.products.contains_key("chatgpt"));
        assert_eq!(out.models["gpt-5-pro"], Credits::from_whole(200));
        assert_eq!(out.per_hour, Some(Credits::from_whole(200)));
        // a limit without a rate cap keeps having none
        let uncapped = Limit { per_hour: None, ..base };
        assert_eq!(uncapped.plus(&add).per_hour, None);
    }
}
