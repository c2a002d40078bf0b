// The breakdown panel: credits this period by user, team, product, model or cost center,
// paged on the server, with a CSV export of the same view.

import { $, el, credits, count, percent, debounce, productName } from '../common.js';
import { pagedTable } from './paged.js';
import { teamLink, personLink, modelLink } from './links.js';
import { rangeParams, rangeWords } from './range.js';

/**
 * A row of `GET /v1/dashboard/breakdown`.
 * @typedef {object} BreakdownRow
 * @property {string | null} key
 * @property {import('../common.js').Decimal} [used]
 * @property {import('../common.js').Decimal | null} [share]
 * @property {number} [events]
 * @property {number} [users]
 */

const by = $('breakdown-by', HTMLSelectElement);

/**
 * A row's name: teams, people and models link to their pages.
 * @param {string | null} key
 * @returns {import('../common.js').Child}
 */
function keyCell(key) {
  if (!key) return '(none)';
  if (by.value === 'product') return productName(key);
  if (by.value === 'team') return teamLink(key);
  if (by.value === 'user') return personLink(key);
  if (by.value === 'model') return modelLink(key);
  return key;
}
const q = $('breakdown-q', HTMLInputElement);

/** @type {ReturnType<typeof pagedTable<BreakdownRow>>} */
export const breakdown = pagedTable({
  name: 'breakdown',
  filters: [by, q],
  table: $('breakdown-table', HTMLTableElement),
  prev: $('breakdown-prev', HTMLButtonElement),
  next: $('breakdown-next', HTMLButtonElement),
  pageLabel: $('breakdown-page'),
  message: $('breakdown-message'),
  csv: $('breakdown-csv', HTMLAnchorElement),
  path: '/v1/dashboard/breakdown',
  defaultSort: 'used',
  descFirst: ['used', 'events'],
  caption: () => `Credits ${rangeWords()} by ${by.selectedOptions[0]?.textContent?.toLowerCase() || 'key'}${q.value ? `, matching “${q.value}”` : ''}`,
  params: () => ({ ...rangeParams(), by: by.value, q: q.value.trim(), limit: 25 }),
  empty: 'Nothing recorded for this period yet.',
  row: (r) => el('tr', { dataset: { key: r.key } },
    el('th', { scope: 'row' }, keyCell(r.key)),
    el('td', { class: 'num' }, credits(r.used)),
    el('td', { class: 'num' }, percent(r.share)),
    el('td', { class: 'num' }, count(r.events)),
    el('td', { class: 'num' }, count(r.users))),
});

by.addEventListener('change', () => breakdown.reset());
q.addEventListener('input', debounce(() => breakdown.reset(), 300));
$('breakdown-filters', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); breakdown.reset(); });
