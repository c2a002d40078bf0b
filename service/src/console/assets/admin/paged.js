// Paged, sortable tables (users and breakdown): sorting and paging happen on the
// server; the table keeps the cursor stack for "Previous page" and the CSV link in step
// with the filters.

import { api, el, fill, errorBox, query } from '../common.js';

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
  /** @type {{ sort: string, order: 'asc' | 'desc', after: string | null, stack: (string | null)[], next: string | null }} */
  const state = { sort: defaultSort, order: 'desc', after: null, stack: [], next: null };
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
    fill(pageLabel, `Page ${state.stack.length + 1}${page.has_more ? '' : ' (last)'} · ${rows.length} rows`);
    if (table.caption) fill(table.caption, caption());
  }
  function reset() {
    state.after = null;
    state.stack = [];
    load();
  }
  prev.addEventListener('click', () => {
    state.after = state.stack.pop() ?? null;
    load();
  });
  next.addEventListener('click', () => {
    if (!state.next) return;
    state.stack.push(state.after);
    state.after = state.next;
    load();
  });
  return { load, reset };
}
