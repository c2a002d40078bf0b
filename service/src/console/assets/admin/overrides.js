// The overrides panel: every override at the approved revision with its status and
// days left, filtered by status and "expiring within N days"; the drift review (people
// renewed back to back, or in force past the review period) with one-click proposals:
// let it lapse, or move the person into a group. Both are branch commits with a plan,
// shown as any proposal is. `startOverrides` also starts the default limit and the
// reconciler's runs panels.

import { $, api, el, fill, credits, count, showError, errorBox, query } from '../common.js';
import { loadProposals, proposalView } from './proposals.js';
import { loadDefault } from './defaults.js';
import { loadRuns } from './runs.js';

/**
 * A row of `GET /v1/overrides`.
 * @typedef {object} OverrideRow
 * @property {string} name
 * @property {string} user
 * @property {{ credits?: import('../common.js').Decimal }} [add]
 * @property {{ credits?: import('../common.js').Decimal }} [limit]
 * @property {string | null} [starts]
 * @property {string} expires
 * @property {'active' | 'upcoming' | 'expired'} status
 * @property {number} days_left
 * @property {number} [starts_in]
 * @property {string} file
 * @property {number} line
 * @property {string} [reason]
 */

/**
 * A finding of `GET /v1/overrides/review`.
 * @typedef {object} Finding
 * @property {string} user
 * @property {string} name the override to act on
 * @property {string} file
 * @property {number} line
 * @property {string} status
 * @property {string} since
 * @property {number} days
 * @property {{ code: string, message: string }[]} reasons
 * @property {{ name: string, current: boolean }[]} run
 */

/**
 * @typedef {object} Review
 * @property {Finding[]} [findings]
 * @property {number} [review_after_days]
 * @property {number} [review_renewals]
 */

const statusSelect = $('overrides-status', HTMLSelectElement);
const withinInput = $('overrides-within', HTMLInputElement);
const moreButton = $('overrides-more', HTMLButtonElement);
/** The cursor of the next page, when there is one. */
let after = /** @type {string | null} */ (null);
/** Group names for "move into a group". */
let groupNames = /** @type {string[]} */ ([]);

/**
 * The amount as a reviewer reads it: `+500` added, or `= 2500` replacing the limit.
 * @param {OverrideRow} o
 * @returns {string}
 */
function amount(o) {
  if (o.add) return o.add.credits === undefined ? 'caps only' : `+${credits(o.add.credits)}`;
  if (o.limit) return `= ${credits(o.limit.credits)}`;
  return '—';
}

/**
 * The status with the days that matter for it.
 * @param {OverrideRow} o
 * @returns {string}
 */
function statusText(o) {
  const days = (/** @type {number} */ n) => `${n} day${n === 1 ? '' : 's'}`;
  if (o.status === 'expired') return `expired ${days(-o.days_left)} ago`;
  if (o.status === 'upcoming') return `upcoming, starts in ${days(o.starts_in ?? 0)}`;
  return o.days_left <= 0 ? 'active, expires today' : `active, ${days(o.days_left)} left`;
}

/**
 * @param {OverrideRow} o
 * @returns {HTMLTableRowElement}
 */
function rowView(o) {
  return /** @type {HTMLTableRowElement} */ (el('tr', { dataset: { name: o.name, status: o.status, daysLeft: String(o.days_left) } },
    el('td', {}, o.user),
    el('td', { title: o.reason || '' }, el('code', {}, o.name)),
    el('td', { class: 'num' }, amount(o)),
    el('td', {}, o.starts || '—'),
    el('td', {}, o.expires),
    el('td', {}, el('span', { class: `status ${o.status === 'active' ? 'ok' : o.status === 'upcoming' ? 'unlimited' : 'exceeded'}` }, statusText(o))),
    el('td', {}, el('code', {}, `${o.file}:${o.line}`))));
}

/** The filters as query parameters. */
function filters() {
  /** @type {Record<string, string>} */
  const p = {};
  if (statusSelect.value) p.status = statusSelect.value;
  if (withinInput.value !== '' && withinInput.validity.valid) p.expiring_within = withinInput.value;
  return p;
}

/**
 * Loads the first page (or the next one, appended).
 * @param {boolean} [more]
 */
export async function loadOverrides(more = false) {
  const body = $('overrides-table', HTMLTableElement).tBodies[0];
  if (!more) after = null;
  /** @type {import('../common.js').Page<OverrideRow>} */
  let page;
  try {
    page = /** @type {import('../common.js').Page<OverrideRow>} */ (await api(`/v1/overrides${query({ ...filters(), limit: 100, after })}`));
  } catch (err) {
    fill(body, el('tr', {}, el('td', { colspan: 7 }, errorBox(err, 'the overrides'))));
    return;
  }
  const rows = (page.data || []).map(rowView);
  if (more) body.append(...rows);
  else fill(body, rows.length ? rows : el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No override matches.')));
  after = page.has_more ? page.next ?? null : null;
  moreButton.hidden = !after;
}

/** The counts of every status, from one unfiltered read. */
async function loadCounts() {
  const node = $('overrides-counts');
  try {
    const page = /** @type {import('../common.js').Page<OverrideRow>} */ (await api('/v1/overrides?limit=1000'));
    /** @type {Record<string, number>} */
    const counts = { active: 0, upcoming: 0, expired: 0 };
    for (const o of page.data || []) counts[o.status] = (counts[o.status] || 0) + 1;
    fill(node, ...['active', 'upcoming', 'expired'].flatMap((s, i) => [i ? ' · ' : '',
      el('strong', { dataset: { status: s, count: String(counts[s]) } }, count(counts[s])), ` ${s}`]),
    page.has_more ? ' (first 1000)' : '');
  } catch (err) {
    showError(node, err, 'the override counts');
  }
}

/**
 * Shows a proposal made from the review, or why it could not be made.
 * @param {string} path
 * @param {object} bodyValue
 * @param {HTMLButtonElement} button
 */
async function propose(path, bodyValue, button) {
  const result = $('overrides-result');
  button.disabled = true;
  try {
    const p = /** @type {import('./proposals.js').Proposal} */ (await api(path, { method: 'POST', body: bodyValue }));
    fill(result, proposalView(p, 'Proposed'));
    loadProposals();
  } catch (err) {
    fill(result, errorBox(err, 'the proposal'));
  } finally {
    button.disabled = false;
  }
}

/**
 * A finding as a card with its actions.
 * @param {Finding} f
 * @returns {HTMLElement}
 */
function findingView(f) {
  const lapse = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: 'lapse' }, 'Let it lapse'));
  const select = /** @type {HTMLSelectElement} */ (el('select', { id: `move-${f.name}`, name: 'group' },
    groupNames.map((g) => el('option', { value: g }, g))));
  const move = /** @type {HTMLButtonElement} */ (el('button', { type: 'button', class: 'move' }, 'Move into group'));
  const reasonText = f.reasons.map((r) => r.message).join('; ');
  lapse.addEventListener('click', () => propose(`/v1/overrides/${encodeURIComponent(f.name)}/lapse`,
    { reason: `Review: ${reasonText}` }, lapse));
  move.addEventListener('click', () => propose(`/v1/overrides/${encodeURIComponent(f.name)}/move`,
    { group: select.value, reason: `Review: ${reasonText}` }, move));
  return el('article', { class: 'card finding', dataset: { name: f.name, user: f.user } },
    el('h3', {}, f.user),
    el('p', { class: 'small' }, 'Acting on ', el('code', {}, f.name), ` (${f.status}) · `, el('code', {}, `${f.file}:${f.line}`)),
    el('ul', { class: 'reasons' }, f.reasons.map((r) => el('li', { dataset: { code: r.code } }, r.message))),
    el('p', { class: 'small muted' }, `Since ${f.since}: `, f.run.map((l) => l.name).join(' → ')),
    el('div', { class: 'row' }, lapse,
      el('div', { class: 'field' }, el('label', { for: `move-${f.name}` }, 'Group'), select), move));
}

/** Loads the drift review. */
export async function loadReview() {
  const node = $('overrides-review');
  try {
    const [review, groups] = await Promise.all([
      /** @type {Promise<Review>} */ (api('/v1/overrides/review')),
      /** @type {Promise<{ data?: { name: string }[] }>} */ (api('/v1/groups')).catch(() => ({ data: [] })),
    ]);
    groupNames = (groups.data || []).map((g) => g.name);
    fill($('review-hint'), `Flagged: overrides renewed back to back ${review.review_renewals ?? 3} times or more, or in force without a break for more than ${review.review_after_days ?? 90} days (Workspace \`overrides\`).`);
    const findings = review.findings || [];
    fill(node, findings.length ? findings.map(findingView) : el('p', { class: 'muted' }, 'Nothing to review.'));
  } catch (err) {
    showError(node, err, 'the review');
  }
}

/** Starts the overrides, default limit and reconciler runs panels. */
export function startOverrides() {
  statusSelect.addEventListener('change', () => loadOverrides());
  withinInput.addEventListener('change', () => loadOverrides());
  moreButton.addEventListener('click', () => loadOverrides(true));
  loadOverrides();
  loadCounts();
  loadReview();
  loadDefault();
  loadRuns();
}
