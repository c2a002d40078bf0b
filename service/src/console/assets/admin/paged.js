// Paged, sortable tables (users and breakdown): sorting and paging happen on the
// server; the table keeps the cursor stack for "Previous page" and the CSV link in step
// with the filters. Its filters, sort and page live in the URL (`<name>.<key>`), so a
// reload or a shared link shows the same rows, and back and forward step through pages.

import { api, el, fill, errorBox, query, count } from '../common.js';
import { urlParam, setUrlParams } from './range.js';

/**
 * @template T
 * @typedef {object} PagedTableOptions
 * @property {string} name the table's prefix in the URL
 * @property {(HTMLInputElement | HTMLSelectElement)[]} filters kept in the URL by their `name`
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
 * @returns {{ load: () => Promise<void>, reset: () => void, restore: () => void }}
 */
export function pagedTable({ name, filters, table, prev, next, pageLabel, message, csv, caption, path, params, row, empty, defaultSort, descFirst }) {
  // every page before this one is full (a page is cut at its size only when more
  // follow), so the first row's position is the pages before times the page size
  /** @type {{ sort: string, order: 'asc' | 'desc', after: string | null, stack: (string | null)[], next: string | null, rows: number }} */
  const state = { sort: defaultSort, order: 'desc', after: null, stack: [], next: null, rows: 0 };
  /** @param {string} k */
  const key = (k) => `${name}.${k}`;
  /** Reads the filters, sort and page from the URL. */
  function restore() {
    for (const f of filters) {
      const v = urlParam(key(f.name));
      // a choice whose option is not there yet (groups come with the summary) waits for it
      if (f instanceof HTMLSelectElement && v && ![...f.options].some((o) => o.value === v)) {
        f.dataset.wanted = v;
        continue;
      }
      f.value = v || (f instanceof HTMLSelectElement ? f.dataset.initial ?? f.value : '');
    }
    const sort = urlParam(key('sort'));
    state.sort = headers.some((th) => th.dataset.sort === sort) ? sort : defaultSort;
    const order = urlParam(key('order'));
    state.order = order === 'asc' || order === 'desc' ? order : 'desc';
    /** @type {unknown} */
    let pages = [];
    try {
      pages = JSON.parse(urlParam(key('at')) || '[]');
    } catch {
      pages = [];
    }
    const cursors = Array.isArray(pages) ? pages.filter((c) => typeof c === 'string') : [];
    state.stack = [null, ...cursors].slice(0, cursors.length);
    state.after = cursors.length ? cursors[cursors.length - 1] : null;
  }
  /**
   * Writes the filters, sort and page to the URL.
   * @param {boolean} replace
   */
  function save(replace) {
    /** @type {Record<string, string | null>} */
    const values = {
      [key('sort')]: state.sort === defaultSort && state.order === 'desc' ? null : state.sort,
      [key('order')]: state.sort === defaultSort && state.order === 'desc' ? null : state.order,
      [key('at')]: state.after ? JSON.stringify([...state.stack.slice(1), state.after]) : null,
    };
    for (const f of filters) values[key(f.name)] = f instanceof HTMLSelectElement && f.value === (f.dataset.initial ?? '') ? null : f.value.trim();
    setUrlParams(values, { replace });
  }
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
    reset(false);
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
    const size = Number(params().limit) || rows.length;
    fill(pageLabel, pagerText(state.stack.length * size, rows.length, page.has_more === true, state.stack.length + 1, page.total));
    if (table.caption) fill(table.caption, caption());
  }
  /**
   * Back to the first page (a filter or the sort changed).
   * @param {boolean} [replace] true: no history entry of its own (typing in a search)
   */
  function reset(replace = true) {
    state.after = null;
    state.stack = [];
    save(replace);
    load();
  }
  prev.addEventListener('click', () => {
    state.after = state.stack.pop() ?? null;
    save(false);
    load();
  });
  next.addEventListener('click', () => {
    if (!state.next) return;
    state.stack.push(state.after);
    state.after = state.next;
    save(false);
    load();
  });
  filters.forEach((f) => { if (f instanceof HTMLSelectElement) f.dataset.initial = f.value; });
  restore();
  return { load, reset, restore };
}

/**
 * Where a page is in its list: `41–60 of 3,000` (the dashboard's lists count their rows
 * in memory and answer `total`); without a total, `101–150 · page 3, more follow`
 * until the last page, where the total is known.
 * @param {number} before rows on the pages before this one
 * @param {number} rows rows on this page
 * @param {boolean} more whether another page follows
 * @param {number} n this page's number
 * @param {number} [total] every row matching, when the list answers it
 * @returns {string}
 */
export function pagerText(before, rows, more, n, total) {
  if (rows === 0) return before === 0 ? 'No rows' : `Page ${count(n)}: no rows`;
  const range = `${count(before + 1)}–${count(before + rows)}`;
  if (typeof total === 'number') return `${range} of ${count(total)}`;
  return more ? `${range} · page ${count(n)}, more follow` : `${range} of ${count(before + rows)}`;
}
