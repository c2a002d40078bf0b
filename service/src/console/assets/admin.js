// The admin view: gauges, teams × products, trends, users, breakdown, live activity, team budgets and credit requests.
//
// One module per panel under admin/; this entry wires the header and starts them.
// Page load makes only aggregated or paged calls (summary, trends, one page of users
// and of the breakdown, the latest events, groups, pending requests, reconciler
// status); the summary goes first so the gauges are not queued behind the rest; each
// section loads on its own, so a missing endpoint shows an inline message in that
// section and leaves the rest working.

import { $, signOutButton, every } from './common.js';
import { loadSummary } from './admin/overview.js';
import { loadReconciler } from './admin/reconciler.js';
import { loadTrends } from './admin/trends.js';
import { users } from './admin/users.js';
import { breakdown } from './admin/breakdown.js';
import { loadRecent } from './admin/activity.js';
import { loadGroups } from './admin/teams.js';
import { loadProposals } from './admin/proposals.js';
import { loadRequests } from './admin/requests.js';
import { loadMix } from './admin/mix.js';
import { startDrill, rerouteDrill } from './admin/drill.js';
import { startOverrides } from './admin/overrides.js';
import { loadValue } from './admin/value.js';
import { startRangePicker, onRangeChange } from './admin/range.js';

signOutButton($('sign-out', HTMLButtonElement));
// the range (and every panel's filters) from the URL; a new range reloads what it applies to
startRangePicker();
onRangeChange(() => {
  loadSummary();
  loadMix();
  loadTrends();
  users.restore();
  users.load();
  breakdown.restore();
  breakdown.load();
  rerouteDrill();
});
// a shared `#team/…` or `#person/…` link opens that page at once
startDrill();

// the gauges first; then every other section loads on its own
loadSummary().finally(() => {
  loadMix();
  loadTrends();
  users.load();
  breakdown.load();
  loadRecent();
  loadReconciler();
  loadGroups();
  loadProposals();
  loadRequests();
  startOverrides();
  loadValue();
});
every(10000, loadSummary);
every(15000, loadReconciler);
// requests move along by themselves (merged, applied, done); a card being edited stays put
every(10000, async () => { if (!$('requests').contains(document.activeElement)) await loadRequests(); });
every(60000, loadTrends);
every(30000, loadMix);
every(60000, loadValue);
