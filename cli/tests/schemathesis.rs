//! The OpenAPI document checked by a fuzzer nobody here wrote: schemathesis (PyPI)
//! generates requests for every operation of a real `budgit serve`'s `/openapi.json`,
//! valid and invalid, and checks that no answer is a server error, that every answer's
//! status, content type, headers and body are the ones the document declares, and that
//! the server accepts every request the document allows and refuses every one it does not
//! (every check schemathesis has; the few an operation cannot pass are turned off for that
//! operation alone in [`CONFIG`], each with its reason).
//!
//! Bounded: at most 5 cases per operation, deterministic generation, one worker (about
//! half a minute). The executable is `BUDGIT_SCHEMATHESIS` when set; otherwise the test
//! makes a venv under the target directory on first use (`python3 -m venv` + `pip
//! install schemathesis`) and reuses it afterwards. Without python3 or the package index
//! the test fails and says how to set it up: it never passes without running the fuzzer.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::process::Command;

use common::http::send;
use common::python::SCHEMATHESIS;
use common::serve::serve;
use serde_json::json;

const ADMIN: &str = "schemathesis-admin-5d1e-0123456789abcdef";

/// Schemathesis's configuration: every check, and the narrow exceptions.
const CONFIG: &str = r#"
[checks]
enabled = true

# an oversized batch is refused with 413 Content Too Large, which is a refusal too
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

# `end_time` must be after `start_time`: a rule between two parameters, which a schema
# of each cannot state
[[operations]]
include-path = "/v1/organization/costs"
checks.positive_data_acceptance.enabled = false

# `user` is required with the admin token (the fuzzer's) and refused with a user token,
# which checks and asks for itself: one body serves both callers
[[operations]]
include-path = "/v1/check"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path = "/v1/requests"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

# an event's `time` must fall from 2020-01-01 to a day after the server's clock: a
# window that moves, which a fixed document cannot state
[[operations]]
include-path = "/v1/usage/events"
checks.positive_data_acceptance.enabled = false

# `from` and `to` of the dashboard's views go together, `to` after `from`, at most 400
# days apart: rules between two parameters, which a schema of each cannot state
[[operations]]
include-path-regex = "^/v1/dashboard/(summary|users|trends|breakdown|mix|teams/|people/)"
checks.positive_data_acceptance.enabled = false

# a directory is CSV with an `email` column, or JSON Lines: not a JSON Schema matter
[[operations]]
include-path = "/v1/users/import"
checks.positive_data_acceptance.enabled = false

# outcomes are CSV with `time,kind,id` columns, or JSON Lines: not a JSON Schema matter
[[operations]]
include-path = "/v1/outcomes"
checks.positive_data_acceptance.enabled = false

# `until` must be after `since`: a rule between two parameters, which a schema of each
# cannot state
[[operations]]
include-path = "/v1/dashboard/value"
checks.positive_data_acceptance.enabled = false

# a run report is read leniently (fields a newer reconciler adds are ignored), and no
# string of a body may hold a NUL character, keys of those unnamed fields included:
# a rule the document cannot state of fields it does not name
[[operations]]
include-path = "/v1/reconciler/status"
include-method = "PUT"
checks.positive_data_acceptance.enabled = false
"#;

#[test]
fn schemathesis_finds_every_answer_declared_in_the_openapi_document() {
    let st = SCHEMATHESIS.executable();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("budgit.db"), ADMIN);
    let addr = server.addr;
    // some data, so that reads have rows to answer with
    let r = send(addr, "POST", "/v1/users/import", Some(ADMIN), Some("email\na@x.com\nb@x.com\n"));
    assert_eq!(r.status, 200, "{}", r.body);
    let now = chrono::Utc::now().timestamp();
    let events = json!([
        { "id": "e1", "time": now, "user": "a@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 1.5 },
        { "id": "e2", "time": now, "user": "b@x.com", "product": "codex", "model": "gpt-5-codex", "credits": 2 },
    ]);
    let r = send(addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&events.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);

    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--max-examples", "5", "--generation-deterministic", "--workers", "1", "--no-color"])
        // no `--max-time`: with one, schemathesis keeps fuzzing until it is spent
        // every check comes from the configuration (`--checks` here would override the
        // operations' exceptions)
        .args(["--request-timeout", "20"])
        // rotating the admin token would lock the fuzzer out after its first success;
        // the event stream never ends, so no answer could be judged
        .args(["--exclude-path", "/v1/admin/token", "--exclude-path", "/v1/usage/stream"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}` ({e}): {}", st.display(), SCHEMATHESIS.setup()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found answers the document does not declare, or requests the server \
         and the document disagree on:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("API Operations:"), "schemathesis did not run the operations:\n{stdout}");
}
