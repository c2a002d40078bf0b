//! What the tests of the `budgit` binary share: the HTTP client and a `budgit serve`
//! child process. Each test file is its own crate and uses part of it.

#![allow(dead_code, reason = "each test crate uses part of the helpers")]

#[path = "../../../console/tests/common/http.rs"]
pub mod http;
pub mod serve;
