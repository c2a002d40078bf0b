//! `budgit serve --demo`: a demo organisation, simulated activity and a reconciler loop.
