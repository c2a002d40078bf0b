// A person's page (`#person/<email>`), as an admin sees it: their budget (what their own
// "my budget" page shows), usage by product and model, daily usage, their credit
// requests, and where their applied limit comes from (the default, a group or an override).

import { api, el, fill, credits, statusBadge, gauge, shortCommit, when, day, query, setTimeZone } from '../common.js';
import { dailyChart } from '../chart.js';
import { teamLink } from './links.js';
import { usageRows, smallTable, requestList } from './team.js';
import { rangeParams } from './range.js';

/** @typedef {import('../common.js').Decimal} Decimal */

/**
 * `GET /v1/dashboard/people/{email}`.
 * @typedef {object} Person
 * @property {string} user
 * @property {string | null} [team_name]
 * @property {import('../common.js').Period} [period]
 * @property {string} [cost_center]
 * @property {Decimal | null} [limit]
 * @property {Decimal} [used]
 * @property {Decimal | null} [remaining]
 * @property {Decimal | null} [percent]
 * @property {import('../common.js').Status} [status]
 * @property {boolean} [blocked]
 * @property {{ products?: Record<string, Decimal>, models?: Record<string, Decimal> } | null} [caps]
 * @property {Record<string, Decimal>} [products]
 * @property {Record<string, Decimal>} [models]
 * @property {{ used_at_end?: Decimal, limit_reached_on?: string | null }} [forecast]
 * @property {{ day: string, credits: Decimal }[]} [daily]
 * @property {{ at: string, action: string, old: Decimal | null, new: Decimal | null, commit: string | null }[]} [history]
 * @property {{ source?: AppliedSource | null, commit?: string | null, updated_at?: string } | null} [applied]
 * @property {import('./team.js').OpenRequest[]} [requests]
 */

/**
 * Where an applied limit comes from.
 * @typedef {object} AppliedSource
 * @property {string} kind `default`, `group` or `override`
 * @property {string} [name]
 * @property {string} [file]
 * @property {number} [line]
 * @property {string | null} [commit]
 */

/**
 * The applied limit's provenance, in words.
 * @param {Person['applied']} applied
 * @returns {HTMLElement}
 */
function provenance(applied) {
  if (!applied) return el('p', { class: 'muted', id: 'person-source' }, 'No applied limit: nothing limits this person.');
  const s = applied.source;
  /** @type {import('../common.js').Child[]} */
  const what = [];
  if (!s) what.push('Applied without a recorded source');
  else if (s.kind === 'override') what.push('The override ', el('strong', {}, s.name || '?'));
  else if (s.kind === 'group') what.push('The group ', el('strong', {}, s.name || '?'), '\u2019s limit');
  else what.push('The workspace default');
  if (s && s.file) what.push(' in ', el('code', {}, `${s.file}${s.line ? `:${s.line}` : ''}`));
  const commit = (s && s.commit) || applied.commit;
  if (commit) what.push(' at ', el('code', { title: commit }, shortCommit(commit)));
  if (applied.updated_at) what.push(`, applied ${when(applied.updated_at)}`);
  return el('p', { id: 'person-source', dataset: { kind: s ? s.kind : '' } }, ...what, '.');
}

/**
 * Draws a person's page into `node`.
 * @param {HTMLElement} node
 * @param {HTMLElement} title
 * @param {string} email
 */
export async function renderPerson(node, title, email) {
  fill(title, 'Person ', el('span', { class: 'drill-name mono' }, email));
  fill(node, el('p', { class: 'loading' }, 'Loading…'));
  /** @type {Person} */
  let p;
  try {
    p = /** @type {Person} */ (await api(`/v1/dashboard/people/${encodeURIComponent(email)}${query(rangeParams())}`));
    setTimeZone(p.period?.timezone);
  } catch (err) {
    fill(node, el('div', { class: 'error', role: 'alert' }, `${email} could not be loaded: ${err instanceof Error ? err.message : String(err)}`));
    return;
  }
  const figures = el('div', { id: 'person-gauge', class: 'gauge', dataset: { user: p.user, used: String(p.used ?? ''), limit: String(p.limit ?? '') } });
  gauge(figures, { used: p.used, total: p.limit, percentValue: p.percent, status: p.status, caption: 'of limit used', totalLabel: 'limit' });
  /**
   * @param {string} label
   * @param {import('../common.js').Child} value
   */
  const stat = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
  const caps = [...Object.entries(p.caps?.products || {}), ...Object.entries(p.caps?.models || {})];
  const chart = el('div', { id: 'person-chart' });
  fill(node,
    el('div', { class: 'overview' },
      figures,
      el('div', {},
        el('dl', { class: 'stats' },
          stat('Team', p.team_name ? teamLink(p.team_name) : 'none (no limit)'),
          stat('Cost center', p.cost_center || '—'),
          stat('Used', el('span', { id: 'person-used' }, `${credits(p.used)} cr`)),
          stat('Limit', p.limit === null || p.limit === undefined ? 'none' : `${credits(p.limit)} cr`),
          stat('Remaining', `${credits(p.remaining)} cr`),
          stat('Status', [statusBadge(p.status), p.blocked ? ' blocked' : '']),
          stat('Forecast at period end', `${credits(p.forecast?.used_at_end)} cr`),
          p.forecast?.limit_reached_on ? stat('Limit reached', day(p.forecast.limit_reached_on)) : null),
        el('h3', {}, 'Where the limit comes from'),
        provenance(p.applied),
        caps.length ? el('p', { class: 'small' }, 'Caps: ', caps.map(([k, v]) => `${k} ${credits(v)}`).join(' · ')) : null)),
    el('div', { class: 'grid-2' },
      smallTable('Credits by product', 'Product', usageRows(p.products, 'product'), 'person-products'),
      smallTable('Credits by model', 'Model', usageRows(p.models, 'model'), 'person-models')),
    el('h3', {}, 'Daily credits'),
    chart,
    el('div', { class: 'grid-2' },
      el('div', {}, el('h3', {}, 'Credit requests'), requestList(p.requests, 'No credit request.')),
      el('div', {}, el('h3', {}, 'Limit history'),
        (p.history || []).length ? el('ul', { class: 'drill-list' }, (p.history || []).map((h) => el('li', {},
          `${when(h.at)}: ${h.action === 'limit.remove' ? 'removed' : `${credits(h.old)} → ${credits(h.new)}`}`,
          h.commit ? [' at ', el('code', { title: h.commit }, shortCommit(h.commit))] : null)))
          : el('p', { class: 'muted' }, 'No change recorded.'))));
  const daily = p.daily || [];
  dailyChart(chart, { days: daily.map((d) => d.day), series: [{ key: 'credits', label: 'credits', values: daily.map((d) => d.credits) }] },
    { title: `Daily credits of ${p.user}`, tableCaption: `Daily credits of ${p.user}` });
}
