//! The admin console: its pages and what only they read and write.
//!
//! The API's routes (one table in `api`) name these handlers beside the rest; what
//! lives here is the console's side of the service:
//!
//! - [`ui`]: the pages (sign-in, the admin view, the user view) and their scripts and
//!   styles under `console/assets/`, embedded in the binary, and the browser sessions;
//! - [`dashboard`]: the read models behind the pages (gauges, per-user standings,
//!   trends, breakdowns, the teams × products mix, the team and person pages, the
//!   recent activity, "my budget"), kept in memory from the event stream;
//! - [`proposals`]: groups read from the policy repository, limit changes and credit
//!   requests proposed as branch commits, the reconciler's status and each request's
//!   way to done;
//! - [`overrides`]: the overrides under review, the default limit, the reconciler's runs;
//! - [`value`]: outcomes uploaded by an admin, and usage per context value (repository,
//!   ticket, workflow) with credits per outcome per team.

pub mod dashboard;
pub mod overrides;
pub mod proposals;
pub mod ui;
pub mod value;
