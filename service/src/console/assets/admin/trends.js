// The trends panel: daily credits by product, group or model, the running total and
// the forecast to the period's end, in one chart.

import { api, showError, query, productName, micros, $ } from '../common.js';
import { dailyChart } from '../chart.js';
import { rangeParams, urlParam, setUrlParams } from './range.js';

/**
 * `GET /v1/dashboard/trends?by=`: per-series daily credits and the forecast.
 * @typedef {object} Trends
 * @property {string[]} [days]
 * @property {{ key: string, values?: import('../common.js').Decimal[] }[]} [series]
 * @property {{ days?: string[], values?: import('../common.js').Decimal[] }} [forecast]
 */

/** Loads the trends for the chosen split and draws the chart. */
export async function loadTrends() {
  // the split is in the URL (`trends.by`), as the other panels' choices are
  const wanted = /** @type {HTMLInputElement | null} */ (document.querySelector(`input[name="trend-by"][value="${urlParam('trends.by') === 'model' ? 'model' : 'product'}"]`));
  if (wanted) wanted.checked = true;
  const checked = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name="trend-by"]:checked'));
  const by = checked?.value || 'product';
  const node = $('trend-chart');
  /** @type {Trends} */
  let t;
  try {
    t = /** @type {Trends} */ (await api(`/v1/dashboard/trends${query({ ...rangeParams(), by })}`));
  } catch (err) {
    showError(node, err, 'the trends chart');
    return;
  }
  const days = t.days || [];
  const series = (t.series || []).map((s) => ({ key: s.key, label: by === 'product' ? productName(s.key) : s.key, values: s.values || [] }));
  // the running total, exact in micro-credits, then the forecast from today to the period's end
  /** @type {number[]} */
  const actual = [];
  let sum = 0n;
  days.forEach((_d, j) => {
    for (const s of series) sum += micros(s.values[j]);
    actual.push(Number(sum) / 1e6);
  });
  const fc = t.forecast || { days: [], values: [] };
  dailyChart(node, {
    days,
    series,
    cumulative: { actual, days: fc.days || [], forecast: fc.values || [] },
  }, { title: `Daily credits by ${by}, running total and forecast`, tableCaption: `Daily credits by ${by}` });
}

document.querySelectorAll('input[name="trend-by"]').forEach((r) => r.addEventListener('change', () => {
  const by = /** @type {HTMLInputElement} */ (r).value;
  setUrlParams({ 'trends.by': by === 'product' ? null : by });
  loadTrends();
}));
