// The user view: my usage against my limit, by product and model, my forecast and history,
// and a form to ask for more credits. Every call is scoped to the signed-in user by the server.

import {
  api, el, fill, credits, count, percent, shortCommit, when, day, ago, statusBadge, gauge, showError, errorBox,
  signOutButton, every, periodText,
} from './common.js';
import { dailyChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const PRODUCT_NAMES = { chatgpt: 'ChatGPT', codex: 'Codex' };
const productName = (p) => PRODUCT_NAMES[String(p).toLowerCase()] || String(p);

signOutButton($('sign-out'));

let me = null;

function usageRows(table, used, caps, name) {
  const keys = [...new Set([...Object.keys(used || {}), ...Object.keys(caps || {})])]
    .sort((a, b) => Number(used?.[b] || 0) - Number(used?.[a] || 0));
  fill(table.tBodies[0], keys.length ? keys.map((k) => el('tr', {},
    el('th', { scope: 'row' }, name(k)),
    el('td', { class: 'num' }, credits(used?.[k] ?? '0')),
    el('td', { class: 'num' }, caps && caps[k] !== undefined ? credits(caps[k]) : '—'))) :
    el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'No usage yet this period.')));
}

async function load() {
  try {
    me = await api('/v1/me');
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
    $('request-submit').disabled = true;
    return;
  }
  fill($('whoami'), 'Signed in as ', el('strong', {}, me.user), me.group ? ` · ${me.group}` : '');
  if (me.period) fill($('period'), `Period ${periodText(me.period)}`);
  const node = $('gauge-me');
  node.dataset.used = me.used ?? '';
  node.dataset.limit = me.limit ?? '';
  node.dataset.status = me.status ?? '';
  if (me.limit === null || me.limit === undefined) {
    fill(node, el('p', { class: 'numbers' }, el('strong', {}, credits(me.used)), ' credits used'),
      el('p', {}, statusBadge('unlimited')), el('p', { class: 'muted small' }, 'No limit applies to you this period.'));
  } else {
    gauge(node, { used: me.used, total: me.limit, percentValue: me.percent, status: me.status, caption: 'of my limit used', totalLabel: 'limit' });
  }
  const f = me.forecast || {};
  const stat = (label, value) => el('div', {}, el('dt', {}, label), el('dd', {}, value));
  fill($('my-stats'),
    stat('Used', `${credits(me.used)} cr`),
    stat('Limit', me.limit === null || me.limit === undefined ? 'none' : `${credits(me.limit)} cr`),
    stat('Remaining', me.remaining === null || me.remaining === undefined ? '—' : `${credits(me.remaining)} cr`),
    stat('Forecast at period end', `${credits(f.used_at_end)} cr`),
    stat('Limit reached', f.limit_reached_on ? day(f.limit_reached_on) : 'not at this rate'),
    me.blocked ? stat('Blocked', 'yes') : null);
  usageRows($('my-products'), me.products, me.caps?.products, productName);
  usageRows($('my-models'), me.models, me.caps?.models, (k) => k);

  const daily = me.daily || [];
  const days = daily.map((d) => d.day);
  let sum = 0;
  const actual = daily.map((d) => (sum += Number(d.credits) || 0));
  // the forecast: from today's total at today's average burn to the period's end
  const fcDays = [];
  const fcValues = [];
  if (me.period && days.length) {
    const end = new Date(me.period.end);
    const last = days[days.length - 1];
    const final = Number(f.used_at_end) || sum;
    const startMs = Date.parse(`${last}T00:00:00Z`);
    const total = Math.max(1, Math.round((end - startMs) / 86400000));
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
  fill($('limit-history').tBodies[0], history.length ? history.map((h) => el('tr', {},
    el('td', {}, when(h.at)),
    el('td', {}, h.action === 'limit.remove' ? 'removed' : 'set'),
    el('td', { class: 'num' }, credits(h.old)),
    el('td', { class: 'num' }, credits(h.new)),
    el('td', {}, el('code', { title: h.commit || '' }, shortCommit(h.commit))))) :
    el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'No change recorded.')));
}

async function loadRequests() {
  const body = $('my-requests').tBodies[0];
  try {
    const r = await api('/v1/requests?limit=100');
    const rows = (r.data || []).slice().reverse();
    fill(body, rows.length ? rows.map((q) => el('tr', { dataset: { id: q.id, status: q.status } },
      el('td', {}, el('time', { datetime: q.created_at, title: when(q.created_at) }, ago(q.created_at))),
      el('td', { class: 'num' }, credits(q.credits)),
      el('td', { class: 'num' }, count(q.days)),
      el('td', {}, q.reason),
      el('td', {}, q.status, q.decision_reason ? ` (${q.decision_reason})` : '',
        q.proposal?.branch ? el('div', { class: 'small muted' }, 'proposal ', el('code', {}, q.proposal.branch)) : null))) :
      el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'You have not asked for credits this period.')));
  } catch (err) {
    fill(body, el('tr', {}, el('td', { colspan: 5 }, errorBox(err, 'your requests'))));
  }
}

$('request-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const message = $('request-message');
  const amount = $('request-amount').value.trim();
  const days = Number($('request-days').value);
  const reason = $('request-reason').value.trim();
  const problems = [];
  if (!/^\d+(\.\d{1,6})?$/.test(amount) || Number(amount) <= 0) problems.push('the amount must be a positive number of credits');
  if (!Number.isInteger(days) || days < 1) problems.push('days must be a whole number from 1');
  if (!reason) problems.push('give a reason');
  if (problems.length) {
    fill(message, el('div', { class: 'error', role: 'alert' }, el('ul', {}, problems.map((p) => el('li', {}, p)))));
    return;
  }
  const note = $('request-context').value.trim();
  const context = {};
  if (note) context.note = note;
  if (me && me.role === 'user') {
    Object.assign(context, { used: me.used, limit: me.limit, percent: me.percent, status: me.status, forecast: me.forecast?.used_at_end ?? null });
  }
  $('request-submit').disabled = true;
  try {
    const made = await api('/v1/requests', { method: 'POST', body: { credits: amount, days, reason, context } });
    fill(message, el('p', { class: 'success', role: 'status' }, `Request #${made.id} sent: ${credits(made.credits)} credits for ${made.days} days. Your budget owner will review it.`));
    $('request-amount').value = '';
    $('request-reason').value = '';
    $('request-context').value = '';
    loadRequests();
  } catch (err) {
    fill(message, errorBox(err, 'the request'));
  } finally {
    $('request-submit').disabled = false;
  }
});

load();
loadRequests();
every(15000, load);
