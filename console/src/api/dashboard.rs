//! The console's read views: gauges, per-user standings, trends, breakdowns and "my budget".

/// Cached aggregates behind the console's views.
#[derive(Debug, Default)]
pub struct DashboardState {}
