// Time-series charts with the vendored uPlot (a global from /assets/vendor/uPlot.iife.min.js).
//
// Each chart also gets a plain table of the same numbers in a <details>, so the
// figures are readable without the picture (screen readers, copying).

import { el, fill, credits, day, tableWrap } from './common.js';

/** @typedef {import('./common.js').Decimal} Decimal */
/** @typedef {import('uplot')} UPlot */

/**
 * One series of daily values, aligned with the chart's `days`.
 * @typedef {object} ChartSeries
 * @property {string} key
 * @property {string} [label]
 * @property {(Decimal | null | undefined)[]} [values]
 */

/**
 * The running total (`actual`, aligned with `actualDays` or the chart's `days`) and its
 * forecast (aligned with `days`).
 * @typedef {object} Cumulative
 * @property {(number | null)[]} actual
 * @property {string[]} [actualDays]
 * @property {string[]} [days]
 * @property {(Decimal | null | undefined)[]} forecast
 */

/**
 * What `dailyChart` draws: days (`YYYY-MM-DD`), series over them, optionally a total.
 * @typedef {object} ChartData
 * @property {string[]} [days]
 * @property {ChartSeries[]} [series]
 * @property {Cumulative} [cumulative]
 */

const PALETTE = ['#0b5cad', '#8a3ffc', '#1a7f37', '#b3261e', '#bf8700', '#007d79', '#d12771', '#4f5964'];
/** @type {Record<string, string>} */
const SERIES_COLOR = { chatgpt: '#0d6b4f', codex: '#5b2c99' };

/**
 * Unix seconds of a `YYYY-MM-DD` day (UTC midnight).
 * @param {string} d
 * @returns {number}
 */
function seconds(d) {
  return Date.parse(`${d}T00:00:00Z`) / 1000;
}

/**
 * The colour of the i-th series (products keep their own colours).
 * @param {string} key
 * @param {number} i
 * @returns {string}
 */
export function colorOf(key, i) {
  return SERIES_COLOR[String(key).toLowerCase()] || PALETTE[i % PALETTE.length];
}

/**
 * Draws daily values per series, and optionally a cumulative line with its forecast on a
 * second axis. `data`: {days, series: [{key, values}], cumulative?: {days, actual, forecast}}.
 * @param {HTMLElement} container
 * @param {ChartData} data
 * @param {{ title?: string, tableCaption?: string }} [labels]
 * @returns {UPlot | null} null when the chart library did not load (the table is shown)
 */
export function dailyChart(container, data, { title, tableCaption } = {}) {
  if (container.chartCleanup) container.chartCleanup();
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': title || 'daily credits chart' });
  const table = tableOf(data, tableCaption || title);
  fill(container, box, table);
  if (typeof window.uPlot !== 'function') {
    box.replaceWith(el('p', { class: 'error', role: 'alert' }, 'the chart library did not load; the numbers are in the table below'));
    table.open = true;
    return null;
  }
  const days = [...new Set([...(data.days || []), ...(data.cumulative?.days || [])])].sort();
  const index = new Map(days.map((d, i) => [d, i]));
  const xs = days.map(seconds);
  /** @type {[number[], ...(number | null)[][]]} */
  const columns = [xs];
  /** @type {import('uplot').Series[]} */
  const series = [{}];
  /**
   * Sets the value of day `d` in a column (every day of the data has a place in `index`).
   * @param {(number | null)[]} col
   * @param {string} d
   * @param {number | null} v
   */
  const put = (col, d, v) => {
    const i = index.get(d);
    if (i !== undefined) col[i] = v;
  };
  (data.series || []).forEach((s, i) => {
    /** @type {(number | null)[]} */
    const col = new Array(days.length).fill(null);
    (data.days || []).forEach((d, j) => {
      const v = Number(s.values?.[j]);
      put(col, d, Number.isFinite(v) ? v : null);
    });
    columns.push(col);
    series.push({
      label: s.label || s.key,
      stroke: colorOf(s.key, i),
      width: 2,
      fill: `${colorOf(s.key, i)}14`,
      scale: 'daily',
      value: (_u, v) => (v === null ? '—' : credits(v)),
      points: { show: days.length < 40 },
    });
  });
  /** @type {import('uplot').Axis[]} */
  const axes = [
    { stroke: '#4f5964', grid: { stroke: '#e6e9ed' } },
    { scale: 'daily', label: 'credits per day', stroke: '#4f5964', grid: { stroke: '#e6e9ed' }, values: (_u, v) => v.map((x) => credits(x)), size: 70 },
  ];
  const cumulative = data.cumulative;
  if (cumulative) {
    /** @type {(number | null)[]} */
    const actual = new Array(days.length).fill(null);
    /** @type {(number | null)[]} */
    const forecast = new Array(days.length).fill(null);
    (cumulative.actualDays || data.days || []).forEach((d, j) => { put(actual, d, cumulative.actual[j] ?? null); });
    (cumulative.days || []).forEach((d, j) => {
      const v = Number(cumulative.forecast[j]);
      put(forecast, d, Number.isFinite(v) ? v : null);
    });
    columns.push(actual, forecast);
    series.push(
      { label: 'total so far', stroke: '#1b1f24', width: 2, scale: 'total', value: (_u, v) => (v === null ? '—' : credits(v)) },
      { label: 'forecast', stroke: '#1b1f24', width: 2, dash: [6, 5], scale: 'total', value: (_u, v) => (v === null ? '—' : credits(v)) },
    );
    axes.push({ scale: 'total', side: 1, label: 'total credits', stroke: '#4f5964', grid: { show: false }, values: (_u, v) => v.map((x) => credits(x)), size: 80 });
  }
  const size = () => ({ width: Math.max(260, box.clientWidth || container.clientWidth || 600), height: window.innerWidth < 600 ? 240 : 300 });
  const plot = new window.uPlot({
    ...size(),
    series,
    axes,
    scales: { x: { time: true }, daily: { auto: true, range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] }, total: { auto: true, range: (_u, _min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    // days are UTC dates: show them as such whatever the browser's zone
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), 'UTC'),
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  }, columns, box);
  const observer = new ResizeObserver(() => plot.setSize(size()));
  observer.observe(container);
  container.chartCleanup = () => {
    observer.disconnect();
    plot.destroy();
    container.chartCleanup = null;
  };
  return plot;
}

/**
 * The chart's numbers as a table inside a <details>.
 * @param {ChartData} data
 * @param {string} [caption]
 * @returns {HTMLDetailsElement}
 */
function tableOf(data, caption) {
  const series = data.series || [];
  const rows = (data.days || []).map((d, j) => el('tr', {},
    el('th', { scope: 'row' }, day(d)),
    series.map((s) => el('td', { class: 'num' }, credits(s.values?.[j]))),
  ));
  const forecast = data.cumulative?.forecast || [];
  const forecastRows = (data.cumulative?.days || []).map((d, j) => el('tr', {},
    el('th', { scope: 'row' }, day(d)), el('td', { class: 'num' }, credits(forecast[j]))));
  return el('details', { class: 'as-table' },
    el('summary', {}, 'Show the numbers as a table'),
    tableWrap(caption || 'Daily credits', el('table', {},
      el('caption', {}, caption || 'Daily credits'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Day'), series.map((s) => el('th', { scope: 'col', class: 'num' }, s.label || s.key)))),
      el('tbody', {}, rows))),
    forecastRows.length ? tableWrap('Forecast', el('table', {},
      el('caption', {}, 'Forecast: total credits by the end of each day'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Day'), el('th', { scope: 'col', class: 'num' }, 'Projected total'))),
      el('tbody', {}, forecastRows))) : null);
}

/**
 * One stacked bar chart: a bar per label (teams), each split into its series' values
 * (products), with the same numbers as a table in a <details>.
 * @param {HTMLElement} container
 * @param {{ labels: string[], series: ChartSeries[] }} data
 * @param {{ title?: string, tableCaption?: string, labelName?: string }} [labels] `labelName`: what a bar is (a team)
 * @returns {UPlot | null} null when the chart library did not load (the table is shown)
 */
export function stackedBars(container, data, { title, tableCaption, labelName = 'Name' } = {}) {
  if (container.chartCleanup) container.chartCleanup();
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': title || 'stacked bar chart' });
  const series = data.series || [];
  const table = el('details', { class: 'as-table' },
    el('summary', {}, 'Show the numbers as a table'),
    tableWrap(tableCaption || title || 'Credits', el('table', {},
      el('caption', {}, tableCaption || title || 'Credits'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, labelName), series.map((s) => el('th', { scope: 'col', class: 'num' }, s.label || s.key)))),
      el('tbody', {}, data.labels.map((label, j) => el('tr', {},
        el('th', { scope: 'row' }, label),
        series.map((s) => el('td', { class: 'num' }, credits(s.values?.[j])))))))));
  fill(container, box, table);
  const bars = typeof window.uPlot === 'function' ? window.uPlot.paths.bars : undefined;
  if (!bars || !data.labels.length) {
    box.replaceWith(el('p', { class: data.labels.length ? 'error' : 'muted', role: data.labels.length ? 'alert' : null },
      data.labels.length ? 'the chart library did not load; the numbers are in the table below' : 'Nothing to chart yet.'));
    table.open = data.labels.length > 0;
    return null;
  }
  const xs = data.labels.map((_l, i) => i);
  // each series is drawn as the running sum of those before it, tallest first, so the
  // shorter ones paint over it and every bar shows each part at its own height
  /** @type {number[][]} */
  const sums = [];
  series.forEach((s, i) => {
    const below = i ? sums[i - 1] : xs.map(() => 0);
    sums.push(xs.map((_x, j) => below[j] + (Number(s.values?.[j]) || 0)));
  });
  /** @type {[number[], ...(number | null)[][]]} */
  const columns = [xs];
  /** @type {import('uplot').Series[]} */
  const drawn = [{ label: labelName, value: (_u, v) => (v === null || v === undefined ? '—' : data.labels[v] ?? '—') }];
  const barPath = bars({ size: [0.6, 80] });
  for (let i = series.length - 1; i >= 0; i -= 1) {
    const s = series[i];
    columns.push(sums[i]);
    drawn.push({
      label: s.label || s.key,
      stroke: colorOf(s.key, i),
      fill: colorOf(s.key, i),
      width: 0,
      paths: barPath,
      points: { show: false },
      // the legend shows the part, not the running sum
      value: (_u, _v, _si, j) => (j === null || j === undefined ? '—' : credits(s.values?.[j])),
    });
  }
  const size = () => ({ width: Math.max(260, box.clientWidth || container.clientWidth || 600), height: window.innerWidth < 600 ? 260 : 320 });
  const plot = new window.uPlot({
    ...size(),
    series: drawn,
    axes: [
      { stroke: '#4f5964', grid: { show: false }, splits: () => xs, values: (_u, v) => v.map((x) => data.labels[x] ?? ''), rotate: data.labels.length > 6 ? -30 : 0, size: data.labels.length > 6 ? 110 : 50 },
      { label: 'credits', stroke: '#4f5964', grid: { stroke: '#e6e9ed' }, values: (_u, v) => v.map((x) => credits(x)), size: 70 },
    ],
    scales: { x: { time: false, range: (_u, _min, _max) => [-0.5, xs.length - 0.5] }, y: { auto: true, range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  }, columns, box);
  const observer = new ResizeObserver(() => plot.setSize(size()));
  observer.observe(container);
  container.chartCleanup = () => {
    observer.disconnect();
    plot.destroy();
    container.chartCleanup = null;
  };
  return plot;
}
