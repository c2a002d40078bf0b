//! What both vendor targets ([`super::claude`] and [`super::openai`]) hold to talk to
//! their Admin API and keep their audit: the API's base and key, one HTTP agent with
//! its timeout, the pacer every call goes through, the policy repository their audit
//! and leases live in, and whether this is a dry run.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::WorkspaceError;
use super::git_refs::{self, protocol};
use super::http;

/// A vendor Admin API client and the repository holding its audit.
pub struct VendorClient {
    /// The API's base URL, without a trailing `/`.
    base: String,
    /// The Admin API key, sent as a bearer token.
    key: String,
    pub(super) agent: ureq::Agent,
    /// Where the audit and the leases are kept (refs of the policy repository).
    pub(super) repo: Mutex<git2::Repository>,
    /// Spaces every call by `--max-rps` and holds them all on a rate limit.
    pub(super) pacer: http::Pacer,
    /// A dry run writes nothing, the audit included.
    pub(super) dry_run: bool,
}

impl std::fmt::Debug for VendorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorClient").field("base", &self.base).field("key", &"<hidden>").finish()
    }
}

impl VendorClient {
    /// A client of the API at `base` with `key`, keeping its audit and lease in the
    /// repository holding `repo`; every call times out after `timeout`.
    pub fn new(
        base: &str,
        key: String,
        repo: &Path,
        timeout: Duration,
        max_rps: Option<f64>,
        dry_run: bool,
    ) -> Result<VendorClient, WorkspaceError> {
        let repo = git_refs::open_repo(repo)?;
        Ok(VendorClient {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent: http::agent(timeout),
            repo: Mutex::new(repo),
            pacer: http::Pacer::new(max_rps),
            dry_run,
        })
    }

    /// A client whose key comes from the environment variable `key_env` (the one the
    /// vendor's own SDK reads); an unset or blank variable is refused before any call.
    pub fn from_env(
        key_env: &str,
        base: &str,
        repo: &Path,
        timeout: Duration,
        max_rps: Option<f64>,
        dry_run: bool,
    ) -> Result<VendorClient, WorkspaceError> {
        match std::env::var(key_env) {
            Ok(key) if !key.trim().is_empty() => {
                VendorClient::new(base, key.trim().to_string(), repo, timeout, max_rps, dry_run)
            }
            _ => Err(protocol(format!("no Admin API key: set `{key_env}`"))),
        }
    }

    /// The URL of `path` under the base.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `authorization` header's value.
    pub(super) fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }

    /// Spaces calls by `--max-rps`; the wall clock is the point here.
    pub(super) fn pace(&self) {
        self.pacer.pace();
    }

    /// Vendor calls made so far.
    pub(super) fn calls(&self) -> u64 {
        self.pacer.calls()
    }
}
