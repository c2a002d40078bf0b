// Paged, sortable tables (users and breakdown): sorting and paging happen on the
// server; the table keeps the cursor stack for "Previous page" and the CSV link in step
// with the filters.

import { api, el, fill, errorBox, query, count } from '../common.js';

/**
 * @template T
 * @typedef {object} PagedTableOptions
 * @property {HTMLTableElement} table its sortable headers carry `data-sort` and a button
 * @property {HTMLButtonElement} prev
 * @property {HTMLButtonElement} next
 * @property {HTMLElement} pageLabel
 * @property {HTMLElement} message
 * @property {HTMLAnchorElement} csv
 * @property {() => string} caption
 * @property {string} path
 * @property {() => Record<string, string | number>} params the filters
 * @property {(row: T) => HTMLTableRowElement} row
 * @property {string} empty
 * @property {string} defaultSort
 * @property {string[]} descFirst the sort keys whose first click sorts descending
 */

/**
 * A paged table over `path`.
 * @template T
 * @param {PagedTableOptions<T>} options
 * @returns {{ load: () => Promise<void>, reset: () => void }}
 */
export function pagedTable({ table, prev, next, pageLabel, message, csv, caption, path, params, row, empty, defaultSort, descFirst }) {
  // `sizes` holds the row count of each page before this one: the first row's position.
  /** @type {{ sort: string, order: 'asc' | 'desc', after: string | null, stack: (string | null)[], sizes: number[], next: string | null, rows: number }} */
  const state = { sort: defaultSort, order: 'desc', after: null, stack: [], sizes: [], next: null, rows: 0 };
  const headers = /** @type {HTMLTableCellElement[]} */ ([...table.querySelectorAll('th[data-sort]')]);
  const showSort = () => headers.forEach((th) => {
    if (th.dataset.sort === state.sort) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  });
  headers.forEach((th) => th.querySelector('button')?.addEventListener('click', () => {
    const key = th.dataset.sort || '';
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else {
      state.sort = key;
      state.order = descFirst.includes(key) ? 'desc' : 'asc';
    }
    reset();
  }));
  const body = table.tBodies[0];
  const cols = table.tHead?.rows[0].cells.length ?? 1;
  async function load() {
    const p = { ...params(), sort: state.sort, order: state.order };
    showSort();
    csv.href = `${path}${query({ ...p, format: 'csv' })}`;
    /** @type {import('../common.js').Page<T>} */
    let page;
    try {
      page = /** @type {import('../common.js').Page<T>} */ (await api(`${path}${query({ ...p, after: state.after })}`));
    } catch (err) {
      fill(body, el('tr', {}, el('td', { colspan: cols }, errorBox(err, caption()))));
      prev.disabled = true;
      next.disabled = true;
      fill(pageLabel);
      return;
    }
    fill(message);
    const rows = page.data || [];
    fill(body, rows.length ? rows.map(row) : el('tr', {}, el('td', { colspan: cols, class: 'muted' }, empty)));
    state.next = page.has_more ? page.next ?? null : null;
    prev.disabled = state.stack.length === 0;
    next.disabled = !state.next;
    state.rows = rows.length;
    fill(pageLabel, pagerText(state.sizes.reduce((a, b) => a + b, 0), rows.length, page.has_more === true, state.stack.length + 1));
    if (table.caption) fill(table.caption, caption());
  }
  function reset() {
    state.after = null;
    state.stack = [];
    state.sizes = [];
    load();
  }
  prev.addEventListener('click', () => {
    state.after = state.stack.pop() ?? null;
    state.sizes.pop();
    load();
  });
  next.addEventListener('click', () => {
    if (!state.next) return;
    state.stack.push(state.after);
    state.sizes.push(state.rows);
    state.after = state.next;
    load();
  });
  return { load, reset };
}

/**
 * Where a page is in its list: `101–150 of 3,000` once the total is known (the last
 * page: the API answers no total, and counting every row would cost a scan), and
 * `101–150 · page 3, more follow` before.
 * @param {number} before rows on the pages before this one
 * @param {number} rows rows on this page
 * @param {boolean} more whether another page follows
 * @param {number} n this page's number
 * @returns {string}
 */
export function pagerText(before, rows, more, n) {
  if (rows === 0) return before === 0 ? 'No rows' : `Page ${count(n)}: no rows`;
  const range = `${count(before + 1)}–${count(before + rows)}`;
  return more ? `${range} · page ${count(n)}, more follow` : `${range} of ${count(before + rows)}`;
}
