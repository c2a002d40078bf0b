//! budgit's engine: the policy model, loading, validation, resolution and evaluation.
//!
//! The pipeline, one module per stage: [`load`] (YAML with spans → [`model`]) →
//! [`validate`] (schema, semantics, CEL, guardrails) → resolve → evaluate → plan →
//! reconcile. The engine does no network I/O except through the `workspace::Target` trait
//! and the usage pull's `pull::Fetch`, and never prints: findings are returned as
//! [`diag::Report`] data.

pub mod credits;
pub mod diag;
pub mod directory;
pub mod edit;
pub mod evaluate;
pub mod r#gen;
pub mod history;
pub mod identity;
pub mod import;
pub mod increase;
pub mod input;
pub mod load;
pub mod model;
pub mod output;
pub mod owners;
pub mod period;
pub mod plan;
pub mod pull;
pub mod reconcile;
pub mod request;
pub mod resolve;
pub mod review;
pub mod select;
pub mod stack;
pub mod standing;
pub mod usage_table;
pub mod validate;
pub mod value;
pub mod vendor;
pub mod workspace;

pub use credits::Credits;

/// A hash map keyed by trusted data (policy names, directory emails, pointers) where
/// SipHash's flood resistance buys nothing and its cost shows at 100k users.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
pub use diag::{Code, Diagnostic, Location, Report, Severity};
