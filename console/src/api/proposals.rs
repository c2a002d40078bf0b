//! Team budget controls backed by the policy repository: groups, proposals, reconciler status.

/// Proposals made this run and the reconciler's last reports.
#[derive(Debug, Default)]
pub struct ProposalState {}
