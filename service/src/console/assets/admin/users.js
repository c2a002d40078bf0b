// The users panel: everyone's standing this period, filtered, sorted and paged on the
// server, with a CSV export of the same view.

import { $, el, credits, percent, statusBadge, meter, debounce, productName } from '../common.js';
import { pagedTable } from './paged.js';
import { teamLink, personLink } from './links.js';
import { rangeParams, rangeWords } from './range.js';

/**
 * A row of `GET /v1/dashboard/users`.
 * @typedef {object} UserRow
 * @property {string} user
 * @property {string | null} [group]
 * @property {string | null} [team] the team the user counts in: the group, `(no group)` with a limit and no group
 * @property {import('../common.js').Decimal} [used]
 * @property {import('../common.js').Decimal | null} [limit]
 * @property {import('../common.js').Decimal | null} [remaining]
 * @property {import('../common.js').Decimal | null} [percent]
 * @property {import('../common.js').Status} status
 * @property {Record<string, import('../common.js').Decimal>} [products] credits used per product
 */

/**
 * Credits per product, largest first: "Codex 120 · ChatGPT 30".
 * @param {Record<string, import('../common.js').Decimal> | undefined} m
 * @returns {string}
 */
const mix = (m) => Object.entries(m || {}).sort((a, b) => Number(b[1]) - Number(a[1]))
  .map(([k, v]) => `${productName(k)} ${credits(v)}`).join(' · ') || '—';

const q = $('users-q', HTMLInputElement);
const group = $('users-group', HTMLSelectElement);
const status = $('users-status', HTMLSelectElement);
const size = $('users-size', HTMLSelectElement);

/** @type {ReturnType<typeof pagedTable<UserRow>>} */
export const users = pagedTable({
  name: 'users',
  filters: [q, group, status, size],
  table: $('users-table', HTMLTableElement),
  prev: $('users-prev', HTMLButtonElement),
  next: $('users-next', HTMLButtonElement),
  pageLabel: $('users-page'),
  message: $('users-message'),
  csv: $('users-csv', HTMLAnchorElement),
  path: '/v1/dashboard/users',
  defaultSort: 'used',
  descFirst: ['used', 'percent'],
  caption: () => {
    const f = [];
    if (q.value) f.push(`matching “${q.value}”`);
    if (group.value) f.push(`in ${group.value}`);
    if (status.value) f.push(`with status ${status.value}`);
    return `Users${f.length ? ` ${f.join(', ')}` : ''}, ${rangeWords()}`;
  },
  params: () => ({ ...rangeParams(), q: q.value.trim(), group: group.value, status: status.value, limit: size.value }),
  empty: 'No user matches these filters.',
  row: (u) => el('tr', { dataset: { user: u.user, status: u.status } },
    el('th', { scope: 'row', class: 'mono' }, personLink(u.user)),
    el('td', {}, teamLink(u.team)),
    el('td', { class: 'num' }, credits(u.used)),
    el('td', { class: 'num' }, u.limit === null || u.limit === undefined ? 'none' : credits(u.limit)),
    el('td', { class: 'num' }, credits(u.remaining)),
    el('td', { class: 'num' }, percent(u.percent), u.percent !== null && u.percent !== undefined ? meter(u.percent, u.status, `${u.user}: ${percent(u.percent)} of limit used`) : null),
    el('td', {}, statusBadge(u.status)),
    el('td', { class: 'small' }, mix(u.products))),
});

[group, status, size].forEach((select) => select.addEventListener('change', () => users.reset()));
q.addEventListener('input', debounce(() => users.reset(), 300));
$('users-filters', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); users.reset(); });
