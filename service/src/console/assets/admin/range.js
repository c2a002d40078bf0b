// The time range every figure of the console is for, and the view's state in the URL.
//
// The range lives in the query string (`?range=7d`, or `?range=custom&from=…&to=…` with
// local dates, both included); without one the panels show the current budget period.
// Presets are read again when the page opens: a shared "last 7 days" link shows the
// last 7 days of the day it is opened, a custom range the same dates. The panels keep
// their own filters, sort and page there too (`urlParam`, `setUrlParams`), so reloading
// or sharing the URL shows the same view, and back and forward step through them.

import { $, el, fill, today, addDays, day, periodText } from '../common.js';

/** @type {Record<string, string>} */
export const PRESETS = { period: 'This period', '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days', custom: 'Custom dates' };

/**
 * A value of the query string.
 * @param {string} name
 * @returns {string}
 */
export function urlParam(name) {
  return new URLSearchParams(location.search).get(name) ?? '';
}

/** The query string the panels show: back or forward to another one redraws them. */
let shownSearch = location.search;

/**
 * Sets values of the query string (an empty value removes one). A new history entry,
 * unless `replace`: back and forward then step through the views.
 * @param {Record<string, string | number | null | undefined>} values
 * @param {{ replace?: boolean }} [options]
 */
export function setUrlParams(values, { replace = false } = {}) {
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === '') url.searchParams.delete(k);
    else url.searchParams.set(k, String(v));
  }
  if (url.search === location.search) return;
  if (replace) history.replaceState(history.state, '', url);
  else history.pushState(history.state, '', url);
  shownSearch = location.search;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The preset in the URL (`period` when none or unknown). */
export function preset() {
  const p = urlParam('range');
  if (p === 'custom') return DATE.test(urlParam('from')) && DATE.test(urlParam('to')) ? 'custom' : 'period';
  return p in PRESETS ? p : 'period';
}

/**
 * The `from` and `to` every range-aware call adds: none for the current period.
 * @returns {Record<string, string>}
 */
export function rangeParams() {
  switch (preset()) {
    case '24h': {
      // to the next whole hour: the same range (and the same figures held by the
      // server) for every call within the hour
      const hour = 3600000;
      const end = Math.floor(Date.now() / hour) * hour + hour;
      return { from: new Date(end - 24 * hour).toISOString().replace('.000Z', 'Z'), to: new Date(end).toISOString().replace('.000Z', 'Z') };
    }
    case '7d': return { from: addDays(today(), -6), to: today() };
    case '30d': return { from: addDays(today(), -29), to: today() };
    case 'custom': return { from: urlParam('from'), to: urlParam('to') };
    default: return {};
  }
}

/**
 * The range in words, for captions: "this period", "the last 7 days", "Dec 1, 2026 – Dec 7, 2026".
 * @returns {string}
 */
export function rangeWords() {
  const p = preset();
  if (p === 'period') return 'this period';
  if (p === 'custom') return `${day(urlParam('from'))} – ${day(urlParam('to'))}`;
  return `the ${PRESETS[p].toLowerCase()}`;
}

/**
 * The range shown and the one it is compared with, from the summary's answer.
 * @param {import('../common.js').Period | undefined} period
 * @param {{ start: string, end: string } | undefined} previous
 */
export function showRange(period, previous) {
  const label = $('range-label');
  if (!period) {
    fill(label);
    return;
  }
  const shown = preset() === '24h' ? `${PRESETS['24h']}` : periodText(period);
  // the header's period line shows the range already: the label says it to screen readers
  fill(label, el('span', { id: 'range-shown', class: 'visually-hidden' }, `Showing ${shown}`),
    previous ? el('span', { class: 'muted', id: 'range-previous' }, `Compared with ${periodText({ ...previous, timezone: period.timezone })}`) : null);
}

/** Listeners of a change of range. */
const listeners = /** @type {(() => void)[]} */ ([]);

/**
 * Calls `fn` whenever the range changes (the picker, or back and forward).
 * @param {() => void} fn
 */
export function onRangeChange(fn) {
  listeners.push(fn);
}

/** The picker's state from the URL. */
function showPicker() {
  const select = $('range-preset', HTMLSelectElement);
  const from = $('range-from', HTMLInputElement);
  const to = $('range-to', HTMLInputElement);
  select.value = preset();
  const custom = select.value === 'custom';
  $('range-dates').hidden = !custom;
  if (custom) {
    from.value = urlParam('from');
    to.value = urlParam('to');
  }
}

/** Wires the picker: a preset applies at once, custom dates on "Show". */
export function startRangePicker() {
  const select = $('range-preset', HTMLSelectElement);
  const from = $('range-from', HTMLInputElement);
  const to = $('range-to', HTMLInputElement);
  const problem = $('range-problem');
  const changed = () => {
    shownSearch = location.search;
    listeners.forEach((fn) => fn());
  };
  // a new range starts every list at its first page: a cursor of another range means nothing
  /** @returns {Record<string, null>} */
  const firstPages = () => Object.fromEntries([...new URLSearchParams(location.search).keys()].filter((k) => k.endsWith('.at')).map((k) => [k, null]));
  showPicker();
  select.addEventListener('change', () => {
    if (select.value === 'custom') {
      $('range-dates').hidden = false;
      if (!from.value) from.value = addDays(today(), -6);
      if (!to.value) to.value = today();
      from.focus();
      return;
    }
    fill(problem);
    setUrlParams({ ...firstPages(), range: select.value === 'period' ? null : select.value, from: null, to: null });
    showPicker();
    changed();
  });
  $('range-form', HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    if (select.value !== 'custom') return;
    if (!DATE.test(from.value) || !DATE.test(to.value)) return void fill(problem, 'Choose both dates.');
    if (to.value < from.value) return void fill(problem, 'The last day comes before the first.');
    fill(problem);
    setUrlParams({ ...firstPages(), range: 'custom', from: from.value, to: to.value });
    changed();
  });
  // back and forward: the range, the panels' filters and the drill-down as they were
  window.addEventListener('popstate', () => {
    showPicker();
    if (location.search !== shownSearch) changed();
  });
}
