// The user view: my usage against my limit, by product and model, my forecast and history,
// and a form to ask for more credits. Every call is scoped to the signed-in user by the server.

import {
  $, api, el, fill, credits, count, shortCommit, when, day, ago, statusBadge, gauge, showError, errorBox,
  signOutButton, every, periodText, setTimeZone, productName, lifecycleView, requestNeed, micros, meter, percent,
} from './common.js';
import { dailyChart } from './chart.js';

/** @typedef {import('./common.js').Decimal} Decimal */

/**
 * `GET /v1/me`: the signed-in user's standing (the admin token has none: `role` says so).
 * @typedef {object} Me
 * @property {'admin' | 'user'} role
 * @property {string} [user]
 * @property {string | null} [group]
 * @property {import('./common.js').Period} [period]
 * @property {Decimal} [used]
 * @property {Decimal | null} [limit]
 * @property {Decimal | null} [remaining]
 * @property {Decimal | null} [percent]
 * @property {import('./common.js').Status} [status]
 * @property {boolean} [blocked]
 * @property {'hard' | 'soft'} [enforcement] hard: usage stops at a limit or cap; soft: it only alerts
 * @property {{ used_at_end?: Decimal | null, limit_reached_on?: string | null }} [forecast]
 * @property {Record<string, Decimal>} [products] credits used per product
 * @property {Record<string, Decimal>} [models] credits used per model
 * @property {{ products?: Record<string, Decimal>, models?: Record<string, Decimal> }} [caps]
 * @property {{ day: string, credits: Decimal }[]} [daily]
 * @property {LimitChange[]} [history]
 */

/**
 * A change to the user's limit, from the audit log.
 * @typedef {object} LimitChange
 * @property {string} at RFC 3339
 * @property {string} action `limit.set` or `limit.remove`
 * @property {Decimal | null} [old]
 * @property {Decimal | null} [new]
 * @property {string | null} [commit]
 */

/**
 * A request of `GET /v1/requests` (the user's own).
 * @typedef {object} MyRequest
 * @property {number | string} id
 * @property {string} created_at RFC 3339
 * @property {Decimal} credits
 * @property {number} days
 * @property {string} reason
 * @property {string} status
 * @property {string | null} [decision_reason]
 * @property {{ branch?: string } | null} [proposal]
 * @property {string | null} [product]
 * @property {string | null} [model]
 * @property {import('./common.js').RequestLifecycle} [lifecycle]
 */

signOutButton($('sign-out', HTMLButtonElement));

/** The last standing loaded; its figures go into a request's context. */
let me = /** @type {Me | null} */ (null);

/**
 * Fills a usage table: credits used, the cap and a meter of the cap used, per product or
 * model, largest first. A cap used up says "blocked" under hard enforcement (that product
 * or model stops for the person until the period ends); under soft enforcement usage
 * goes on and the cap is only over.
 * @param {HTMLTableElement} table
 * @param {Record<string, Decimal> | undefined} used
 * @param {Record<string, Decimal> | undefined} caps
 * @param {(key: string) => string} name
 */
function usageRows(table, used, caps, name) {
  const keys = [...new Set([...Object.keys(used || {}), ...Object.keys(caps || {})])]
    .sort((a, b) => Number(used?.[b] || 0) - Number(used?.[a] || 0));
  fill(table.tBodies[0], keys.length ? keys.map((k) => {
    const spent = micros(used?.[k] ?? '0');
    const cap = caps && caps[k] !== undefined ? micros(caps[k]) : null;
    const reached = cap !== null && spent >= cap;
    // the share in tenths of a percent, exact: micro-credits are integers
    const share = cap === null ? null : cap === 0n ? 100 : Number((spent * 1000n) / cap) / 10;
    const status = share === null ? null : reached ? 'exceeded' : share >= 80 ? 'warning' : 'ok';
    return el('tr', { dataset: { key: k, blocked: String(reached) } },
      el('th', { scope: 'row' }, name(k)),
      el('td', { class: 'num' }, credits(used?.[k] ?? '0')),
      el('td', { class: 'num' }, cap !== null && caps ? credits(caps[k]) : '—'),
      el('td', { class: 'cap-use' }, share === null ? el('span', { class: 'muted' }, 'no cap') : [
        meter(share, status, `${name(k)}: ${percent(share)} of its cap used`),
        reached ? el('span', { class: 'status exceeded' }, el('span', { 'aria-hidden': 'true' }, '✕'), me?.enforcement === 'soft' ? 'Over the cap (soft)' : 'Blocked: cap reached')
          : el('span', { class: 'small' }, percent(share)),
      ]));
  }) : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No usage yet this period.')));
}

async function load() {
  try {
    me = /** @type {Me} */ (await api('/v1/me'));
  } catch (err) {
    showError($('gauge-me'), err, 'your budget');
    fill($('period'), '');
    fill($('my-chart'));
    return;
  }
  if (me.role === 'admin') {
    fill($('me-message'), el('p', { class: 'notice', role: 'status' },
      'You are signed in with the admin token, which has no budget of its own. ', el('a', { href: '/console/' }, 'Open the admin view'), '.'));
    fill($('gauge-me'), el('p', { class: 'muted' }, 'No personal budget.'));
    fill($('period'), '');
    fill($('my-chart'));
    $('request-submit', HTMLButtonElement).disabled = true;
    return;
  }
  fill($('whoami'), 'Signed in as ', el('strong', {}, me.user), me.group ? ` · ${me.group}` : '');
  forOptions(me);
  setTimeZone(me.period?.timezone);
  if (me.period) fill($('period'), `Period ${periodText(me.period)}`);
  const node = $('gauge-me');
  node.dataset.used = String(me.used ?? '');
  node.dataset.limit = String(me.limit ?? '');
  node.dataset.status = me.status ?? '';
  if (me.limit === null || me.limit === undefined) {
    fill(node, el('p', { class: 'numbers' }, el('strong', {}, credits(me.used)), ' credits used'),
      el('p', {}, statusBadge('unlimited')), el('p', { class: 'muted small' }, 'No limit applies to you this period.'));
  } else {
    gauge(node, { used: me.used, total: me.limit, percentValue: me.percent, status: me.status, caption: 'of my limit used', totalLabel: 'limit' });
  }
  const f = me.forecast || {};
  /**
   * @param {string} label
   * @param {string} value
   */
  const stat = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
  fill($('my-stats'),
    stat('Used', `${credits(me.used)} cr`),
    stat('Limit', me.limit === null || me.limit === undefined ? 'none' : `${credits(me.limit)} cr`),
    stat('Remaining', me.remaining === null || me.remaining === undefined ? '—' : `${credits(me.remaining)} cr`),
    stat('Forecast at period end', `${credits(f.used_at_end)} cr`),
    stat('Limit reached', f.limit_reached_on ? day(f.limit_reached_on) : 'not at this rate'),
    // hard enforcement stops usage at the limit; soft only alerts, so nothing is blocked
    me.blocked ? stat('Blocked', 'yes') : null,
    !me.blocked && me.enforcement === 'soft' && me.status === 'exceeded' ? stat('Over the limit (soft)', 'yes: usage goes on, the admins are alerted') : null);
  usageRows($('my-products', HTMLTableElement), me.products, me.caps?.products, productName);
  usageRows($('my-models', HTMLTableElement), me.models, me.caps?.models, (k) => k);

  const daily = me.daily || [];
  const days = daily.map((d) => d.day);
  let sum = 0;
  const actual = daily.map((d) => (sum += Number(d.credits) || 0));
  // the forecast: from today's total at today's average burn to the period's end
  /** @type {string[]} */
  const fcDays = [];
  /** @type {string[]} */
  const fcValues = [];
  if (me.period && days.length) {
    const end = new Date(me.period.end);
    const last = days[days.length - 1];
    const final = Number(f.used_at_end) || sum;
    const startMs = Date.parse(`${last}T00:00:00Z`);
    const total = Math.max(1, Math.round((end.getTime() - startMs) / 86400000));
    for (let i = 0; i < total; i += 1) {
      const d = new Date(startMs + i * 86400000).toISOString().slice(0, 10);
      fcDays.push(d);
      fcValues.push(String(sum + ((final - sum) * i) / Math.max(1, total - 1)));
    }
  }
  dailyChart($('my-chart'), {
    days,
    series: [{ key: 'credits', label: 'credits per day', values: daily.map((d) => d.credits) }],
    cumulative: { actual, days: fcDays, forecast: fcValues },
  }, { title: 'My daily credits, running total and forecast', tableCaption: 'My daily credits' });

  const history = me.history || [];
  fill($('limit-history', HTMLTableElement).tBodies[0], history.length ? history.map((h) => el('tr', {},
    el('td', {}, when(h.at)),
    el('td', {}, h.action === 'limit.remove' ? 'removed' : 'set'),
    el('td', { class: 'num' }, credits(h.old)),
    el('td', { class: 'num' }, credits(h.new)),
    el('td', {}, el('code', { title: h.commit || '' }, shortCommit(h.commit))))) :
    el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No change recorded.')));
}

async function loadRequests() {
  const body = $('my-requests', HTMLTableElement).tBodies[0];
  try {
    const r = /** @type {import('./common.js').Page<MyRequest>} */ (await api('/v1/requests?limit=100'));
    const rows = (r.data || []).slice().reverse();
    fill(body, rows.length ? rows.map((q) => el('tr', { dataset: { id: q.id, status: q.status } },
      el('td', {}, el('time', { datetime: q.created_at, title: when(q.created_at) }, ago(q.created_at))),
      el('td', { class: 'num' }, credits(q.credits)),
      el('td', {}, requestNeed(q)),
      el('td', { class: 'num' }, count(q.days)),
      el('td', {}, q.reason),
      el('td', {}, el('span', { class: 'request-status' }, q.status), q.decision_reason ? ` (${q.decision_reason})` : '',
        lifecycleView(q.lifecycle)))) :
      el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'You have not asked for credits this period.')));
  } catch (err) {
    fill(body, el('tr', {}, el('td', { colspan: 6 }, errorBox(err, 'your requests'))));
  }
}

const amountInput = $('request-amount', HTMLInputElement);
const daysInput = $('request-days', HTMLInputElement);
const reasonInput = $('request-reason', HTMLTextAreaElement);
const contextInput = $('request-context', HTMLTextAreaElement);
const forSelect = $('request-for', HTMLSelectElement);

/**
 * Offers each product and model the person has a cap on or has used, keeping the choice.
 * @param {Me} m
 */
function forOptions(m) {
  const chosen = forSelect.value;
  const products = [...new Set([...Object.keys(m.caps?.products || {}), ...Object.keys(m.products || {})])].sort();
  const models = Object.keys(m.caps?.models || {}).sort();
  forSelect.replaceChildren(el('option', { value: '' }, 'my total'),
    ...products.map((p) => el('option', { value: `product:${p}` }, `${productName(p)}${m.caps?.products?.[p] !== undefined ? ' (capped)' : ''}`)),
    ...models.map((k) => el('option', { value: `model:${k}` }, `model ${k} (capped)`)));
  if ([...forSelect.options].some((o) => o.value === chosen)) forSelect.value = chosen;
}
const submit = $('request-submit', HTMLButtonElement);

$('request-form', HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  const message = $('request-message');
  const amount = amountInput.value.trim();
  const days = Number(daysInput.value);
  const reason = reasonInput.value.trim();
  /** @type {string[]} */
  const problems = [];
  if (!/^\d+(\.\d{1,6})?$/.test(amount) || Number(amount) <= 0) problems.push('the amount must be a positive number of credits');
  if (!Number.isInteger(days) || days < 1) problems.push('days must be a whole number from 1');
  if (!reason) problems.push('give a reason');
  if (problems.length) {
    fill(message, el('div', { class: 'error', role: 'alert' }, el('ul', {}, problems.map((p) => el('li', {}, p)))));
    return;
  }
  const note = contextInput.value.trim();
  /** @type {Record<string, unknown>} */
  const context = {};
  if (note) context.note = note;
  if (me && me.role === 'user') {
    Object.assign(context, { used: me.used, limit: me.limit, percent: me.percent, status: me.status, forecast: me.forecast?.used_at_end ?? null });
  }
  /** @type {Record<string, unknown>} */
  const body = { credits: amount, days, reason, context };
  const [kind, name] = forSelect.value.split(/:(.*)/s);
  if (kind === 'product' || kind === 'model') body[kind] = name;
  submit.disabled = true;
  try {
    const made = /** @type {MyRequest} */ (await api('/v1/requests', { method: 'POST', body }));
    fill(message, el('p', { class: 'success', role: 'status' }, `Request #${made.id} sent: ${credits(made.credits)} credits for ${count(made.days)} day${made.days === 1 ? '' : 's'}. Your budget owner will review it.`));
    amountInput.value = '';
    reasonInput.value = '';
    contextInput.value = '';
    loadRequests();
  } catch (err) {
    fill(message, errorBox(err, 'the request'));
  } finally {
    submit.disabled = false;
  }
});

load();
loadRequests();
every(15000, load);
every(5000, loadRequests);
