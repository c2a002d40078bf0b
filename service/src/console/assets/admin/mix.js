// The teams × products panel: "which teams use Codex most": credits per team this period
// by product and model, sorted on the server by the chosen product, as a table and a
// stacked bar chart. Users with a limit and no group are the team "(no group)".

import { $, api, el, fill, credits, count, showError, query, productName } from '../common.js';
import { stackedBars } from '../chart.js';
import { teamLink, modelLink } from './links.js';
import { rangeParams, rangeWords, urlParam, setUrlParams } from './range.js';

/** @typedef {import('../common.js').Decimal} Decimal */

/**
 * `GET /v1/dashboard/mix?by=team`.
 * @typedef {object} Mix
 * @property {string} [product] the product sorted by
 * @property {string[]} [products] every product used this period
 * @property {MixRow[]} [data]
 */

/**
 * @typedef {object} MixRow
 * @property {string} team
 * @property {number} [members]
 * @property {Decimal} [used]
 * @property {Record<string, Decimal>} [products]
 * @property {Record<string, Decimal>} [models]
 */

/** How many models a row names (the largest). */
const TOP_MODELS = 3;

const product = $('mix-product', HTMLSelectElement);

/**
 * The largest models of a row, each a link to the breakdown filtered to it.
 * @param {Record<string, Decimal> | undefined} models
 * @returns {import('../common.js').Child[]}
 */
function topModels(models) {
  const top = Object.entries(models || {}).sort((a, b) => Number(b[1]) - Number(a[1]) || a[0].localeCompare(b[0])).slice(0, TOP_MODELS);
  if (!top.length) return ['—'];
  return top.flatMap(([m, v], i) => [i ? ' · ' : '', modelLink(m), ` ${credits(v)}`]);
}

/** Loads the mix for the chosen product and draws the table and the chart. */
export async function loadMix() {
  // the product sorted by is in the URL (`mix.product`), as the other panels' sorts are
  const wanted = urlParam('mix.product');
  if (wanted && [...product.options].some((o) => o.value === wanted)) product.value = wanted;
  else if (!wanted) product.value = product.dataset.initial ?? product.value;
  const table = $('mix-table', HTMLTableElement);
  const chart = $('mix-chart');
  /** @type {Mix} */
  let m;
  try {
    m = /** @type {Mix} */ (await api(`/v1/dashboard/mix${query({ ...rangeParams(), by: 'team', product: product.value })}`));
  } catch (err) {
    showError(chart, err, 'the teams by product');
    fill(table.tBodies[0]);
    return;
  }
  const products = m.products || [];
  const rows = m.data || [];
  const sorted = productName(m.product || product.value);
  // keep the choice list in step with the products of the period
  const current = product.value;
  fill(product, products.map((p) => el('option', { value: p }, productName(p))));
  product.value = products.includes(current) ? current : (m.product || '');
  fill($('mix-title'), `Which teams use ${sorted} most`);
  if (table.caption) fill(table.caption, `Credits per team ${rangeWords()}, by ${sorted} credits, largest first`);
  const head = table.tHead?.rows[0];
  if (head) {
    fill(head, el('th', { scope: 'col' }, 'Team'), el('th', { scope: 'col', class: 'num' }, 'Members'),
      products.map((p) => el('th', { scope: 'col', class: 'num', dataset: { product: p } }, productName(p))),
      el('th', { scope: 'col', class: 'num' }, 'Total'), el('th', { scope: 'col' }, 'Top models'));
  }
  fill(table.tBodies[0], rows.length ? rows.map((r) => el('tr', { dataset: { team: r.team } },
    el('th', { scope: 'row' }, teamLink(r.team)),
    el('td', { class: 'num' }, count(r.members)),
    products.map((p) => el('td', { class: 'num', dataset: { product: p, credits: String(r.products?.[p] ?? 0) } }, credits(r.products?.[p] ?? 0))),
    el('td', { class: 'num', dataset: { credits: String(r.used ?? 0) } }, credits(r.used)),
    el('td', { class: 'small' }, topModels(r.models)))) : el('tr', {}, el('td', { colspan: products.length + 4, class: 'muted' }, 'No team has members with a limit yet.')));
  // the sorted product at the bottom of each bar, so its heights compare at a glance
  const order = [m.product || product.value, ...products.filter((p) => p !== (m.product || product.value))];
  stackedBars(chart, {
    labels: rows.map((r) => r.team),
    series: order.map((p) => ({ key: p, label: productName(p), values: rows.map((r) => r.products?.[p] ?? 0) })),
  }, { title: `Credits per team by product, sorted by ${sorted}`, tableCaption: 'Credits per team by product', labelName: 'Team' });
}

product.dataset.initial = product.value;
product.addEventListener('change', () => {
  setUrlParams({ 'mix.product': product.value === product.dataset.initial ? null : product.value });
  loadMix();
});
