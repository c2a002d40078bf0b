// A team's page (`#team/<name>`): its budget and standing, members with theirs, its
// product and model mix, daily usage, the proposals made for it and its members' open
// credit requests.

import { api, el, fill, credits, count, percent, statusBadge, meter, gauge, productName, shortCommit, when, requestNeed, tableWrap, query, setTimeZone } from '../common.js';
import { dailyChart } from '../chart.js';
import { personLink, modelLink, NO_GROUP } from './links.js';
import { rangeParams, rangeWords } from './range.js';

/** @typedef {import('../common.js').Decimal} Decimal */

/**
 * `GET /v1/dashboard/teams/{group}`.
 * @typedef {object} TeamDetail
 * @property {string} group
 * @property {number} [members]
 * @property {import('../common.js').Period} [period]
 * @property {Decimal} [used]
 * @property {Decimal} [budget]
 * @property {string} [budget_kind]
 * @property {Decimal | null} [pool]
 * @property {Decimal} [remaining]
 * @property {Decimal | null} [percent]
 * @property {import('../common.js').Status} [status]
 * @property {Record<string, Decimal>} [products]
 * @property {Record<string, Decimal>} [models]
 * @property {Member[]} [member_list]
 * @property {{ days?: string[], values?: Decimal[], products?: { product: string, total: Decimal, values: Decimal[] }[] }} [daily] per day, in total and per product
 * @property {{ id: number, branch: string, commit: string, title: string, reason: string, created_at: string, created_by: string }[]} [proposals]
 * @property {OpenRequest[]} [requests]
 */

/**
 * @typedef {object} Member
 * @property {string} user
 * @property {Decimal | null} [limit]
 * @property {Decimal} [used]
 * @property {Decimal | null} [remaining]
 * @property {Decimal | null} [percent]
 * @property {import('../common.js').Status} status
 * @property {boolean} [blocked]
 * @property {Record<string, Decimal>} [products]
 */

/**
 * A credit request as the team and person pages list it.
 * @typedef {object} OpenRequest
 * @property {number} id
 * @property {string} user
 * @property {Decimal} credits
 * @property {number} days
 * @property {string} reason
 * @property {string} status
 * @property {string} created_at
 * @property {string | null} [product]
 * @property {string | null} [model]
 */

/**
 * Credits per name, largest first, as table rows; model names link to the breakdown.
 * @param {Record<string, Decimal> | undefined} m
 * @param {'product' | 'model'} kind
 * @returns {HTMLTableRowElement[]}
 */
export function usageRows(m, kind) {
  return Object.entries(m || {}).sort((a, b) => Number(b[1]) - Number(a[1]) || a[0].localeCompare(b[0]))
    .map(([k, v]) => el('tr', { dataset: { [kind]: k, credits: String(v) } },
      el('th', { scope: 'row' }, kind === 'model' ? modelLink(k) : productName(k)),
      el('td', { class: 'num' }, credits(v))));
}

/**
 * A small two-column table.
 * @param {string} caption
 * @param {string} head
 * @param {HTMLTableRowElement[]} rows
 * @param {string} id
 * @returns {HTMLDivElement}
 */
export function smallTable(caption, head, rows, id) {
  return tableWrap(caption, el('table', { id },
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, head), el('th', { scope: 'col', class: 'num' }, 'Credits'))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 2, class: 'muted' }, 'Nothing used this period.')))));
}

/**
 * Credit requests as a list.
 * @param {OpenRequest[] | undefined} requests
 * @param {string} empty
 * @returns {HTMLElement}
 */
export function requestList(requests, empty) {
  const list = requests || [];
  if (!list.length) return el('p', { class: 'muted' }, empty);
  return el('ul', { class: 'drill-list' }, list.map((r) => el('li', { dataset: { id: r.id, status: r.status } },
    el('strong', {}, `${credits(r.credits)} credits`), ` for ${count(r.days)} day${r.days === 1 ? '' : 's'} (${requestNeed(r)}) · `,
    personLink(r.user), ` · ${r.status} · `, el('span', { class: 'muted' }, when(r.created_at)), el('br'), r.reason)));
}

/**
 * Draws a team's page into `node`.
 * @param {HTMLElement} node
 * @param {HTMLElement} title
 * @param {string} name
 */
export async function renderTeam(node, title, name) {
  fill(title, 'Team ', el('span', { class: 'drill-name' }, name));
  fill(node, el('p', { class: 'loading' }, 'Loading…'));
  /** @type {TeamDetail} */
  let t;
  try {
    t = /** @type {TeamDetail} */ (await api(`/v1/dashboard/teams/${encodeURIComponent(name)}${query(rangeParams())}`));
    setTimeZone(t.period?.timezone);
  } catch (err) {
    fill(node, el('div', { class: 'error', role: 'alert' }, `the team ${name} could not be loaded: ${err instanceof Error ? err.message : String(err)}`));
    return;
  }
  const figures = el('div', { id: 'team-gauge', class: 'gauge', dataset: {
    team: t.group, used: String(t.used ?? ''), members: String(t.members ?? ''), codex: String(t.products?.codex ?? 0),
  } });
  gauge(figures, { used: t.used, total: t.budget, percentValue: t.percent, status: t.status, caption: t.budget_kind === 'pool' ? 'of the team pool used' : 'of member limits used', totalLabel: t.budget_kind === 'pool' ? 'pool' : 'member limits' });
  /**
   * @param {string} label
   * @param {import('../common.js').Child} value
   */
  const stat = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
  const chart = el('div', { id: 'team-chart' });
  const members = t.member_list || [];
  fill(node,
    el('div', { class: 'overview' },
      figures,
      el('div', {},
        el('dl', { class: 'stats', id: 'team-stats' },
          stat('Members', el('span', { id: 'team-members' }, count(t.members))),
          stat('Used', `${credits(t.used)} cr`),
          stat(t.budget_kind === 'pool' ? 'Pool' : 'Sum of member limits', `${credits(t.budget)} cr`),
          stat('Remaining', `${credits(t.remaining)} cr`),
          stat('Status', statusBadge(t.status))),
        t.group === NO_GROUP ? el('p', { class: 'small muted' }, 'Users with an applied limit and no group: they count here like a team, without a pool.') : null)),
    el('div', { class: 'grid-2' },
      smallTable('Credits by product', 'Product', usageRows(t.products, 'product'), 'team-products'),
      smallTable('Credits by model', 'Model', usageRows(t.models, 'model'), 'team-models')),
    el('h3', {}, 'Daily credits by product'),
    chart,
    el('h3', {}, 'Members'),
    tableWrap(`Members of ${t.group}`, el('table', { id: 'team-members-table' },
      el('caption', {}, `Members of ${t.group} by usage ${rangeWords()}`),
      el('thead', {}, el('tr', {}, ['User', 'Used', 'Limit', 'Remaining', 'Used %', 'Status', 'Products'].map((h, i) => el('th', { scope: 'col', class: i > 0 && i < 5 ? 'num' : null }, h)))),
      el('tbody', {}, members.length ? members.map((u) => el('tr', { dataset: { user: u.user, used: String(u.used ?? 0), status: u.status } },
        el('th', { scope: 'row' }, personLink(u.user)),
        el('td', { class: 'num' }, credits(u.used)),
        el('td', { class: 'num' }, u.limit === null || u.limit === undefined ? 'none' : credits(u.limit)),
        el('td', { class: 'num' }, credits(u.remaining)),
        el('td', { class: 'num' }, percent(u.percent), meter(u.percent, u.status, `${u.user}: ${percent(u.percent)} of limit used`)),
        el('td', {}, statusBadge(u.status), u.blocked ? el('span', { class: 'small muted' }, ' blocked') : null),
        el('td', { class: 'small' }, Object.entries(u.products || {}).map(([p, v]) => `${productName(p)} ${credits(v)}`).join(' · ') || '—')))
        : el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No member has a limit.'))))),
    el('div', { class: 'grid-2' },
      el('div', {}, el('h3', {}, 'Proposals for this team'),
        (t.proposals || []).length ? el('ul', { class: 'drill-list', id: 'team-proposals' }, (t.proposals || []).map((p) => el('li', { dataset: { id: p.id } },
          el('strong', {}, p.title), el('br'), el('code', {}, p.branch), ' at ', el('code', { title: p.commit }, shortCommit(p.commit)),
          ` · ${when(p.created_at)} · ${p.reason}`)))
          : el('p', { class: 'muted' }, t.group === NO_GROUP ? 'Not a group of the policies: changes come through the default or overrides.' : 'No proposal made for this team yet.'),
        el('p', { class: 'small' }, el('a', { href: `#teams` }, 'Propose a change in Team budgets'))),
      el('div', {}, el('h3', {}, 'Open credit requests'), requestList(t.requests, 'No member has an open credit request.'))));
  // one series per product (ChatGPT, Codex, …), stacked by day, with its legend and
  // the same figures as a table; a team without usage shows its (zero) total
  const d = t.daily || {};
  const perProduct = (d.products || []).map((p) => ({ key: p.product, label: productName(p.product), values: p.values || [] }));
  dailyChart(chart, { days: d.days || [], series: perProduct.length ? perProduct : [{ key: 'credits', label: `${t.group} credits`, values: d.values || [] }] },
    { title: `Daily credits of ${t.group} by product`, tableCaption: `Daily credits of ${t.group} by product` });
}

