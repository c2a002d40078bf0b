// The overview panel: the period, the workspace gauge, its stats and the team gauges.
// The summary also names the teams, which fill the group filters of the users table
// and of the live activity.

import {
  $, api, el, fill, credits, count, percent, statusBadge, meter, gauge, showError, periodText, productName,
} from '../common.js';
import { teamLink } from './links.js';

/** @typedef {import('../common.js').Decimal} Decimal */
/** @typedef {import('../common.js').Status} Status */

/**
 * `GET /v1/dashboard/summary`.
 * @typedef {object} Summary
 * @property {import('../common.js').Period} [period]
 * @property {WorkspaceFigures} [workspace]
 * @property {Record<string, Decimal>} [products] credits used per product
 * @property {Team[]} [teams]
 */

/**
 * @typedef {object} WorkspaceFigures
 * @property {Decimal} [used]
 * @property {Decimal} [exposure]
 * @property {Decimal | null} [percent]
 * @property {Status} [status]
 * @property {Record<string, number>} [status_counts]
 * @property {number} [users]
 * @property {number} [blocked]
 * @property {Decimal} [forecast]
 */

/**
 * @typedef {object} Team
 * @property {string} group
 * @property {Decimal | null} [used]
 * @property {Decimal | null} [budget]
 * @property {string} [budget_kind] `pool`, or the sum of the member limits
 * @property {Decimal | null} [percent]
 * @property {Status | null} [status]
 * @property {number} [members]
 */

/** The groups of the last summary, sorted (the filters' options). */
let knownGroups = /** @type {string[]} */ ([]);

/** The teams of the last summary (the team budgets panel adds a card for `(no group)`). */
let lastTeams = /** @type {Team[]} */ ([]);

/** The teams of the last summary. */
export const summaryTeams = () => lastTeams;

/**
 * Fills a group filter, keeping its choice when the group is still there.
 * @param {HTMLSelectElement} select
 * @param {string[]} groups
 * @param {string} allLabel
 */
function setGroupOptions(select, groups, allLabel) {
  const current = select.value;
  fill(select, el('option', { value: '' }, allLabel), groups.map((g) => el('option', { value: g }, g)));
  if (groups.includes(current)) select.value = current;
}

/** @param {import('../common.js').Period | undefined} period */
function renderPeriod(period) {
  if (!period) return;
  const start = new Date(period.start);
  const end = new Date(period.end);
  const now = new Date(period.now || Date.now());
  const total = Math.max(1, Math.round((end.getTime() - start.getTime()) / 86400000));
  const done = Math.min(total, Math.max(1, Math.ceil((now.getTime() - start.getTime()) / 86400000)));
  fill($('period'), 'Period ', el('strong', {}, periodText(period)),
    ` · day ${done} of ${total}${period.timezone ? ` · ${period.timezone}` : ''}`);
}

/** Loads the summary and draws the panel (an inline message when it cannot). */
export async function loadSummary() {
  /** @type {Summary} */
  let s;
  try {
    s = /** @type {Summary} */ (await api('/v1/dashboard/summary'));
  } catch (err) {
    showError($('gauge-workspace'), err, 'the workspace gauge');
    fill($('team-gauges'));
    fill($('period'), 'Period unknown');
    return;
  }
  renderPeriod(s.period);
  const w = s.workspace || {};
  const node = $('gauge-workspace');
  node.dataset.used = String(w.used ?? '');
  node.dataset.exposure = String(w.exposure ?? '');
  node.dataset.status = w.status ?? '';
  gauge(node, { used: w.used, total: w.exposure, percentValue: w.percent, status: w.status, caption: 'of exposure used', totalLabel: 'exposure' });
  const sc = w.status_counts || {};
  /**
   * @param {string} label
   * @param {string} value
   * @param {string} [extra]
   */
  const stat = (label, value, extra) => el('div', {}, el('dt', {}, label), el('dd', {}, value, extra || ''));
  const products = Object.entries(s.products || {}).map(([k, v]) => stat(productName(k), credits(v), ' cr'));
  fill($('workspace-stats'),
    stat('Users with a limit', count(w.users)),
    stat('OK', count(sc.ok)),
    stat('Warning', count(sc.warning)),
    stat('Exceeded', count(sc.exceeded)),
    sc.unlimited !== undefined ? stat('No limit', count(sc.unlimited)) : null,
    stat('Blocked', count(w.blocked)),
    stat('Forecast at period end', credits(w.forecast), ' cr'),
    products);
  const teams = s.teams || [];
  lastTeams = teams;
  fill($('team-gauges'), teams.length ? teams.map((t) => el('li', {
    class: 'gauge-team', dataset: { group: t.group, used: t.used ?? '', budget: t.budget ?? '', status: t.status ?? '' },
  },
  el('div', { class: 'name' }, el('span', {}, teamLink(t.group)), statusBadge(t.status)),
  meter(t.percent, t.status, `${t.group}: ${percent(t.percent)} of its ${t.budget_kind === 'pool' ? 'pool' : 'member limits'} used`),
  el('div', { class: 'figures' }, `${credits(t.used)} of ${credits(t.budget)} credits (${percent(t.percent)}) · `,
    t.budget_kind === 'pool' ? 'team pool' : 'sum of member limits', ` · ${count(t.members)} members`),
  )) : el('li', { class: 'muted' }, 'No team has members with a limit yet.'));
  knownGroups = teams.map((t) => t.group).sort();
  setGroupOptions($('users-group', HTMLSelectElement), knownGroups, 'All groups');
  setGroupOptions($('activity-team', HTMLSelectElement), knownGroups, 'All teams');
  fill($('overview-updated'), `Updated ${new Date().toLocaleTimeString()}`);
}
