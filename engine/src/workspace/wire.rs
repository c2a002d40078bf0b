//! The JSON of the workspace API's limits endpoints, one definition for both ends.
//!
//! `budgit serve` reads [`SetLimits`] and answers [`SetLimitsAnswer`] on `PUT /v1/limits`
//! and answers [`PoolRow`]s on `GET /v1/pools`; the client in [`super::http`] writes and
//! reads the same types, and the service's OpenAPI document takes their schemas from
//! them (`JsonSchema`). `GET /v1/limits` rows ([`LimitRow`]) are read by the client
//! only: the server passes the stored JSON texts of a row through unchanged, and a
//! console test keeps its answer readable as a [`LimitRow`]. This module holds shapes
//! only: no I/O and no checks beyond what serde does.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AppliedSource, Batch, ItemStatus, Settings};
use crate::Credits;

/// The longest short name the service accepts on the wire (a commit, a plan digest, an
/// actor, a group, a cap), in characters.
pub const MAX_NAME: usize = 200;
/// What a short name may hold: no control character (`char::is_control`).
pub const NAME_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// The body of `PUT /v1/limits`: limits, removals, pools and settings in one batch.
///
/// Field order is the order on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "LimitBatch")]
#[serde(deny_unknown_fields)]
pub struct SetLimits {
    /// The commit the values come from.
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub commit: String,
    /// The digest of the plan the values come from.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub plan_digest: Option<String>,
    /// Who writes, as the audit log labels it (`admin (<actor>)`).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub actor: Option<String>,
    /// Limits to set.
    #[serde(default)]
    pub limits: Vec<LimitItem>,
    /// Users whose limit to remove.
    #[serde(default)]
    #[schemars(inner(email, length(max = crate::identity::MAX_EMAIL_BYTES)))]
    pub remove: Vec<String>,
    /// Pools to set or remove.
    #[serde(default)]
    pub pools: Vec<PoolItem>,
    /// Workspace settings to set (`settings` is accepted as another name).
    #[serde(default, alias = "settings", skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Settings>,
}

/// One user's limit in a [`SetLimits`] batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitItem {
    /// The user's email.
    #[schemars(email, length(max = crate::identity::MAX_EMAIL_BYTES))]
    pub user: String,
    /// Total credits per period.
    pub credits: Credits,
    /// Caps per product (a cap's name is a short name: 1 to 200 characters, no control character).
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$" }))]
    pub products: BTreeMap<String, Credits>,
    /// Caps per model (named as products are).
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "minLength": 1, "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$" }))]
    pub models: BTreeMap<String, Credits>,
    /// The rate cap: the most the user may spend in any sliding hour (absent: none).
    /// Optional on the wire, so a client that predates it keeps working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Credits>,
    /// The group whose pool applies.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub group: Option<String>,
    /// The document that decided the limit.
    #[serde(default)]
    pub source: Option<AppliedSource>,
}

/// One group pool in a [`SetLimits`] batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolItem {
    /// The group.
    #[schemars(length(min = 1, max = MAX_NAME), pattern(NAME_PATTERN))]
    pub group: String,
    /// The pool; `null` removes it.
    pub credits: Option<Credits>,
}

impl From<&Batch> for SetLimits {
    fn from(batch: &Batch) -> SetLimits {
        SetLimits {
            commit: batch.commit.clone(),
            plan_digest: Some(batch.plan_digest.clone()),
            actor: Some(batch.actor.clone()),
            limits: batch
                .limits
                .iter()
                .map(|l| LimitItem {
                    user: l.user.clone(),
                    credits: l.limit.credits,
                    products: l.limit.products.clone(),
                    models: l.limit.models.clone(),
                    per_hour: l.limit.per_hour,
                    group: l.group.clone(),
                    source: l.source.clone(),
                })
                .collect(),
            remove: batch.remove.clone(),
            pools: batch
                .pools
                .iter()
                .map(|p| PoolItem { group: p.group.clone(), credits: p.credits })
                .collect(),
            workspace: batch.settings.clone(),
        }
    }
}

/// The answer to `PUT /v1/limits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "LimitBatchResult")]
pub struct SetLimitsAnswer {
    /// Limits, removals, pools and settings actually written.
    #[serde(default)]
    pub changed: u64,
    /// Items already at their value.
    #[serde(default)]
    pub unchanged: u64,
    /// Per user (limits, then removals), in batch order.
    #[serde(default)]
    pub results: Vec<ItemResult>,
    /// Per pool, in batch order.
    #[serde(default)]
    pub pools: Vec<ItemResult>,
}

/// What the server did with one item: `user` names a limit or removal, `group` a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ItemResult {
    /// The user, for a limit or a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group, for a pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What was done.
    pub status: ItemStatus,
}

/// A row of `GET /v1/limits`: an applied limit with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitRow {
    /// The user's email.
    pub user: String,
    /// Total credits per period.
    pub credits: Credits,
    /// Caps per product.
    #[serde(default)]
    pub products: BTreeMap<String, Credits>,
    /// Caps per model.
    #[serde(default)]
    pub models: BTreeMap<String, Credits>,
    /// The rate cap per sliding hour, when one is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Credits>,
    /// The group whose pool applies.
    #[serde(default)]
    pub group: Option<String>,
    /// The document that decided the limit, as the last writer sent it.
    #[serde(default)]
    pub source: Option<AppliedSource>,
    /// The commit of the last write.
    #[serde(default)]
    pub commit: Option<String>,
    /// The plan digest of the last write.
    #[serde(default)]
    pub plan_digest: Option<String>,
    /// When the limit was last written (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A row of `GET /v1/pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolRow {
    /// The group.
    pub group: String,
    /// The pool.
    pub credits: Credits,
    /// The commit of the last write.
    #[serde(default)]
    pub commit: Option<String>,
    /// The plan digest of the last write.
    #[serde(default)]
    pub plan_digest: Option<String>,
    /// When the pool was last written (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Enforcement, Limit, Period};
    use crate::workspace::{LimitSet, PoolSet};

    fn c(n: i64) -> Credits {
        Credits::from_micros(n * 1_000_000)
    }

    fn batch() -> Batch {
        let source = AppliedSource {
            kind: "group".into(),
            name: "eng".into(),
            file: "groups/eng.yaml".into(),
            line: 4,
            commit: None,
        };
        Batch {
            commit: "c1".into(),
            plan_digest: "d1".into(),
            actor: "reconciler".into(),
            limits: vec![
                LimitSet {
                    user: "a@x.com".into(),
                    limit: Limit {
                        credits: Credits::from_micros(12_500_000),
                        products: BTreeMap::from([("codex".into(), c(10))]),
                        models: BTreeMap::new(),
                        per_hour: None,
                    },
                    group: Some("eng".into()),
                    source: Some(source.clone()),
                },
                LimitSet {
                    user: "b@x.com".into(),
                    limit: Limit { credits: c(5), per_hour: Some(c(1)), ..Limit::default() },
                    group: None,
                    source: Some(AppliedSource { commit: Some("c0".into()), ..source }),
                },
            ],
            remove: vec!["z@x.com".into()],
            pools: vec![
                PoolSet { group: "eng".into(), credits: Some(c(150)) },
                PoolSet { group: "old".into(), credits: None },
            ],
            settings: Some(Settings {
                period: Period::Month,
                timezone: "Europe/Berlin".into(),
                enforcement: Enforcement::Soft,
            }),
        }
    }

    /// The body the client sends is the one it built by hand before the shared types.
    #[test]
    fn a_batch_goes_on_the_wire_as_before() {
        let b = batch();
        let by_hand = json!({
            "commit": "c1",
            "plan_digest": "d1",
            "actor": "reconciler",
            "limits": [
                { "user": "a@x.com", "credits": 12.5, "products": { "codex": 10 }, "models": {}, "group": "eng",
                  "source": { "kind": "group", "name": "eng", "file": "groups/eng.yaml", "line": 4 } },
                { "user": "b@x.com", "credits": 5, "products": {}, "models": {}, "per_hour": 1, "group": null,
                  "source": { "kind": "group", "name": "eng", "file": "groups/eng.yaml", "line": 4, "commit": "c0" } },
            ],
            "remove": ["z@x.com"],
            "pools": [{ "group": "eng", "credits": 150 }, { "group": "old", "credits": null }],
            "workspace": { "period": "month", "timezone": "Europe/Berlin", "enforcement": "soft" },
        });
        let sent = serde_json::to_string(&SetLimits::from(&b)).unwrap();
        assert_eq!(sent, by_hand.to_string());
        let without_settings = Batch { settings: None, ..b };
        let sent = serde_json::to_value(SetLimits::from(&without_settings)).unwrap();
        assert_eq!(sent.get("workspace"), None);
    }

    #[test]
    fn the_server_reads_what_the_client_sends_and_refuses_unknown_fields() {
        let body = SetLimits::from(&batch());
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(serde_json::from_str::<SetLimits>(&text).unwrap(), body);

        let minimal: SetLimits = serde_json::from_value(json!({
            "commit": "c1",
            "limits": [{ "user": "a@x.com", "credits": "7.5" }],
            "settings": { "period": "week" },
        }))
        .unwrap();
        assert_eq!(minimal.limits[0].credits, Credits::from_micros(7_500_000));
        // a client that predates rate caps sends no `per_hour`: no rate cap
        assert_eq!(minimal.limits[0].per_hour, None);
        assert_eq!(
            minimal.workspace,
            Some(Settings {
                period: Period::Week,
                timezone: "UTC".into(),
                enforcement: Enforcement::default()
            })
        );

        for wrong in [
            json!({ "commit": "c1", "limit": [] }),
            json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 1, "credit": 2 }] }),
            json!({ "commit": "c1", "pools": [{ "group": "g", "credits": 1, "members": 2 }] }),
            json!({ "commit": "c1", "workspace": { "period": "month", "zone": "UTC" } }),
            json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 1,
                     "source": { "kind": "group", "name": "g", "file": "f", "line": 1, "col": 2 } }] }),
        ] {
            assert!(serde_json::from_value::<SetLimits>(wrong.clone()).is_err(), "{wrong}");
        }
    }

    #[test]
    fn answers_and_rows_read_as_the_server_writes_them() {
        let answer = SetLimitsAnswer {
            changed: 2,
            unchanged: 1,
            results: vec![
                ItemResult { user: Some("a@x.com".into()), group: None, status: ItemStatus::Created },
                ItemResult { user: Some("z@x.com".into()), group: None, status: ItemStatus::Unchanged },
            ],
            pools: vec![ItemResult { user: None, group: Some("eng".into()), status: ItemStatus::Removed }],
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            text,
            json!({
                "changed": 2,
                "unchanged": 1,
                "results": [{ "user": "a@x.com", "status": "created" }, { "user": "z@x.com", "status": "unchanged" }],
                "pools": [{ "group": "eng", "status": "removed" }],
            })
            .to_string()
        );
        assert_eq!(serde_json::from_str::<SetLimitsAnswer>(&text).unwrap(), answer);

        // a stored source always names `commit`, null when the writer sent none
        let row: LimitRow = serde_json::from_value(json!({
            "user": "a@x.com", "credits": 12.5, "products": { "codex": 10 }, "models": {}, "group": "eng",
            "source": { "kind": "group", "name": "eng", "file": "groups/eng.yaml", "line": 4, "commit": null },
            "commit": "c1", "plan_digest": "d1", "updated_at": "2026-11-10T12:00:00Z",
        }))
        .unwrap();
        assert_eq!(row.source.and_then(|s| s.commit), None);
        assert_eq!((row.credits, row.commit.as_deref()), (Credits::from_micros(12_500_000), Some("c1")));

        let pool = PoolRow {
            group: "eng".into(),
            credits: c(150),
            commit: Some("c1".into()),
            plan_digest: None,
            updated_at: Some("2026-11-10T12:00:00Z".into()),
        };
        let text = serde_json::to_string(&pool).unwrap();
        assert_eq!(
            text,
            r#"{"group":"eng","credits":150,"commit":"c1","plan_digest":null,"updated_at":"2026-11-10T12:00:00Z"}"#
        );
        assert_eq!(serde_json::from_str::<PoolRow>(&text).unwrap(), pool);
    }
}
