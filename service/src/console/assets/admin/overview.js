// The overview panel: the period, the workspace gauge, its stats and the team gauges.
// The summary also names the teams, which fill the group filters of the users table
// and of the live activity.

import {
  $, api, el, fill, credits, count, percent, statusBadge, meter, gauge, showError, periodText, productName,
  query, setTimeZone, clock, tableWrap,
} from '../common.js';
import { teamLink, modelLink } from './links.js';
import { rangeParams, preset, showRange } from './range.js';

/** @typedef {import('../common.js').Decimal} Decimal */
/** @typedef {import('../common.js').Status} Status */

/**
 * `GET /v1/dashboard/summary`.
 * @typedef {object} Summary
 * @property {import('../common.js').Period} [period]
 * @property {WorkspaceFigures} [workspace]
 * @property {Record<string, Decimal>} [products] credits used per product
 * @property {Team[]} [teams]
 * @property {{ start: string, end: string, products?: Record<string, Decimal> }} [previous_period] what the figures are compared with
 * @property {{ model: string, used: Decimal, previous: Decimal, change: number | null }[]} [models]
 */

/**
 * @typedef {object} WorkspaceFigures
 * @property {Decimal} [used]
 * @property {Decimal} [previous] used in the previous period
 * @property {number | null} [change] percent change from `previous`
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
 * @property {Decimal} [previous] used in the previous period
 * @property {number | null} [change] percent change from `previous`
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
  // a choice read from the URL before the groups were known
  const current = select.dataset.wanted || select.value;
  delete select.dataset.wanted;
  fill(select, el('option', { value: '' }, allLabel), groups.map((g) => el('option', { value: g }, g)));
  if (groups.includes(current)) select.value = current;
}

/**
 * A change in percent, signed: `+12.5%`, `−3.0%`; `new` when nothing was used before.
 * @param {number | null | undefined} change
 * @returns {string}
 */
export function changeText(change) {
  if (change === null || change === undefined) return 'new';
  const sign = change > 0 ? '+' : change < 0 ? '−' : '±';
  return `${sign}${percent(Math.abs(change))}`;
}

/**
 * The previous period's figure beside this one's: "previous 1,200 (+12.5%)".
 * @param {Decimal | undefined} previous
 * @param {number | null | undefined} change
 * @returns {HTMLSpanElement}
 */
export function previousText(previous, change) {
  return el('span', { class: 'previous small muted', dataset: { previous: String(previous ?? ''), change: String(change ?? '') } },
    ` · previous ${credits(previous)} (${Number(previous || 0) === 0 && !change ? 'nothing before' : changeText(change)})`);
}

/** @param {import('../common.js').Period | undefined} period */
function renderPeriod(period) {
  if (!period) return;
  if (preset() !== 'period') {
    // a range: its bounds are in the range label; the period's day count does not apply
    fill($('period'), 'Showing ', el('strong', {}, periodText(period)), period.timezone ? ` · ${period.timezone}` : '');
    return;
  }
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
    s = /** @type {Summary} */ (await api(`/v1/dashboard/summary${query(rangeParams())}`));
  } catch (err) {
    showError($('gauge-workspace'), err, 'the workspace gauge');
    fill($('team-gauges'));
    fill($('period'), 'Period unknown');
    return;
  }
  setTimeZone(s.period?.timezone);
  renderPeriod(s.period);
  showRange(s.period, s.previous_period);
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
    el('div', { id: 'workspace-used' }, el('dt', {}, 'Used'), el('dd', {}, `${credits(w.used)} cr`, previousText(w.previous, w.change))),
    stat('Users with a limit', count(w.users)),
    stat('OK', count(sc.ok)),
    stat('Warning', count(sc.warning)),
    stat('Exceeded', count(sc.exceeded)),
    sc.unlimited !== undefined ? stat('No limit', count(sc.unlimited)) : null,
    stat('Blocked', count(w.blocked)),
    // a forecast is the period's: a range has none
    preset() === 'period' ? stat('Forecast at period end', credits(w.forecast), ' cr') : null,
    products);
  const teams = s.teams || [];
  lastTeams = teams;
  fill($('team-gauges'), teams.length ? teams.map((t) => el('li', {
    class: 'gauge-team', dataset: { group: t.group, used: t.used ?? '', budget: t.budget ?? '', status: t.status ?? '' },
  },
  el('div', { class: 'name' }, el('span', {}, teamLink(t.group)), statusBadge(t.status)),
  meter(t.percent, t.status, `${t.group}: ${percent(t.percent)} of its ${t.budget_kind === 'pool' ? 'pool' : 'member limits'} used`),
  el('div', { class: 'figures' }, `${credits(t.used)} of ${credits(t.budget)} credits (${percent(t.percent)}) · `,
    t.budget_kind === 'pool' ? 'team pool' : 'sum of member limits', ` · ${count(t.members)} members`, previousText(t.previous, t.change)),
  )) : el('li', { class: 'muted' }, 'No team has members with a limit yet.'));
  knownGroups = teams.map((t) => t.group).sort();
  setGroupOptions($('users-group', HTMLSelectElement), knownGroups, 'All groups');
  setGroupOptions($('activity-team', HTMLSelectElement), knownGroups, 'All teams');
  renderModels(s.models || []);
  fill($('overview-updated'), `Updated ${clock(new Date().toISOString())}`);
}

/**
 * Each model's usage beside the previous period's.
 * @param {{ model: string, used: Decimal, previous: Decimal, change: number | null }[]} models
 */
function renderModels(models) {
  fill($('models-pop'), tableWrap('Models, period over period', el('table', { id: 'models-table' },
    el('caption', {}, 'Credits per model, beside the previous period'),
    el('thead', {}, el('tr', {}, ['Model', 'Used', 'Previous', 'Change'].map((h, i) => el('th', { scope: 'col', class: i ? 'num' : null }, h)))),
    el('tbody', {}, models.length ? models.map((m) => el('tr', { dataset: { model: m.model, used: String(m.used), previous: String(m.previous) } },
      el('th', { scope: 'row' }, modelLink(m.model)),
      el('td', { class: 'num' }, credits(m.used)),
      el('td', { class: 'num' }, credits(m.previous)),
      el('td', { class: 'num' }, Number(m.previous) === 0 && !m.change ? '—' : changeText(m.change))))
      : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No model used in either period.'))))));
}
