//! What the tests of the `budgit` binary share: the HTTP client, a `budgit serve` child
//! process, temporary policy repositories (`git_repo`), and the Python tools some tests
//! drive. Each test file is its own crate and uses part of it.

#![allow(dead_code, reason = "each test crate uses part of the helpers")]

#[path = "../../../engine/tests/common/git_repo.rs"]
pub mod git_repo;
#[path = "../../../service/tests/common/http.rs"]
pub mod http;
pub mod pg;
pub mod python;
pub mod serve;
