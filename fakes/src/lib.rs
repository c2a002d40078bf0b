//! Fake vendor admin APIs, one module per vendor, for budgit's tests.
//!
//! Each fake implements exactly the endpoints budgit uses, with the request and
//! response shapes of the vendor's official SDK, plus scripted faults (429 with
//! `Retry-After`, 500, slow answers) and `/_fake/*` endpoints through which a test
//! seeds data. Tests check the fakes with the official SDKs under strict response
//! validation, so budgit is tested against shapes the vendor's own client accepts.

pub mod openai;
