//! The OpenAPI document checked by a fuzzer nobody here wrote: schemathesis (PyPI)
//! generates requests for every operation of a real `budgit serve`'s `/openapi.json`,
//! valid and invalid, and checks that no answer is a server error and that every
//! answer's status, content type, headers and body are the ones the document declares.
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

    let out = Command::new(&st)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args(["--max-examples", "5", "--generation-deterministic", "--workers", "1", "--no-color"])
        // no `--max-time`: with one, schemathesis keeps fuzzing until it is spent
        .args(["--request-timeout", "20"])
        // the answers, judged against the document (the checks on which requests the
        // server accepts are left out: the document does not yet state every bound)
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,missing_required_header,\
             unsupported_method,use_after_free,ensure_resource_availability,ignored_auth",
        ])
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
        "schemathesis found answers the document does not declare:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("API Operations:"), "schemathesis did not run the operations:\n{stdout}");
}
