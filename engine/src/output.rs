//! JSON Schemas of the machine-readable outputs: `validate`, `resolve`, `explain`,
//! `evaluate`, `plan`, `history`, `review` and `requests sync` with `--format json`.
//!
//! Each output is a typed struct serialized as is, and its schema is generated from
//! the same type, so a field added to an output appears in its schema. `budgit
//! schema` writes them to `schemas/` beside the policy schemas; the CLI's tests run
//! each command and check its output against the checked-in schema.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use crate::diag::output::ReportOutput;
use crate::evaluate::Evaluation;
use crate::history::HistoryOutput;
use crate::increase::SyncReport;
use crate::plan::Plan;
use crate::resolve::{Explanation, ResolveOutput};
use crate::review::ReviewOutput;

/// A command with a machine-readable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `validate --format json`.
    Validate,
    /// `resolve --format json`.
    Resolve,
    /// `explain --format json`.
    Explain,
    /// `evaluate --format json`.
    Evaluate,
    /// `plan --format json`.
    Plan,
    /// `history --format json`.
    History,
    /// `review --format json`.
    Review,
    /// `requests sync --format json`.
    RequestsSync,
}

impl Output {
    /// Every output, in the order the commands are documented.
    pub const ALL: [Output; 8] = [
        Output::Validate,
        Output::Resolve,
        Output::Explain,
        Output::Evaluate,
        Output::Plan,
        Output::History,
        Output::Review,
        Output::RequestsSync,
    ];

    /// The command's name.
    pub fn command(self) -> &'static str {
        match self {
            Output::Validate => "validate",
            Output::Resolve => "resolve",
            Output::Explain => "explain",
            Output::Evaluate => "evaluate",
            Output::Plan => "plan",
            Output::History => "history",
            Output::Review => "review",
            Output::RequestsSync => "requests sync",
        }
    }

    /// The schema's file name in `schemas/`: `<command>-output.schema.json`, a
    /// subcommand joined by a dash (`requests-sync-output.schema.json`).
    pub fn file_name(self) -> String {
        format!("{}-output.schema.json", self.command().replace(' ', "-"))
    }

    /// The JSON Schema of the output, titled after the command.
    pub fn schema(self) -> serde_json::Value {
        let mut value = match self {
            Output::Validate => schema::<ReportOutput>(),
            Output::Resolve => schema::<ResolveOutput<'static>>(),
            Output::Explain => schema::<Explanation>(),
            Output::Evaluate => schema::<Evaluation<'static>>(),
            Output::Plan => schema::<Plan>(),
            Output::History => schema::<HistoryOutput<'static>>(),
            Output::Review => schema::<ReviewOutput<'static>>(),
            Output::RequestsSync => schema::<SyncReport>(),
        };
        if let Some(map) = value.as_object_mut() {
            map.insert("title".into(), format!("budgit {} --format json", self.command()).into());
        }
        value
    }
}

/// The schema of what `T` serializes to: a field left out when empty
/// (`skip_serializing_if`) is optional, and the amounts allow the negative differences.
fn schema<T: JsonSchema>() -> serde_json::Value {
    SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>().to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_has_an_object_schema() {
        for output in Output::ALL {
            let schema = output.schema();
            assert_eq!(schema["type"], "object", "{output:?}");
            assert_eq!(schema["title"], format!("budgit {} --format json", output.command()));
            jsonschema::validator_for(&schema).unwrap();
        }
    }
}
