// The admin view: gauges, trends, users, breakdown, live activity, team budgets and credit requests.
//
// Page load makes only aggregated or paged calls (summary, trends, one page of users
// and of the breakdown, the latest events, groups, pending requests, reconciler
// status); the summary goes first so the gauges are not queued behind the rest; each
// section loads on its own, so a missing endpoint shows an inline message in that
// section and leaves the rest working.

import {
  api, el, fill, credits, count, percent, shortCommit, when, ago, clock, day, statusBadge, meter, gauge,
  showError, errorBox, signOutButton, every, debounce, query, markdown, periodText, parseJson,
} from './common.js';
import { dailyChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const PRODUCT_NAMES = { chatgpt: 'ChatGPT', codex: 'Codex' };
const productName = (p) => PRODUCT_NAMES[String(p).toLowerCase()] || String(p);

signOutButton($('sign-out'));

// ---------------------------------------------------------------------------
// summary: period, workspace gauge, stats, team gauges

let knownGroups = [];

function setGroupOptions(select, groups, allLabel) {
  const current = select.value;
  fill(select, el('option', { value: '' }, allLabel), groups.map((g) => el('option', { value: g }, g)));
  if (groups.includes(current)) select.value = current;
}

function renderPeriod(period) {
  if (!period) return;
  const start = new Date(period.start);
  const end = new Date(period.end);
  const now = new Date(period.now || Date.now());
  const total = Math.max(1, Math.round((end - start) / 86400000));
  const done = Math.min(total, Math.max(1, Math.ceil((now - start) / 86400000)));
  fill($('period'), 'Period ', el('strong', {}, periodText(period)),
    ` · day ${done} of ${total}${period.timezone ? ` · ${period.timezone}` : ''}`);
}

async function loadSummary() {
  let s;
  try {
    s = await api('/v1/dashboard/summary');
  } catch (err) {
    showError($('gauge-workspace'), err, 'the workspace gauge');
    fill($('team-gauges'));
    fill($('period'), 'Period unknown');
    return;
  }
  renderPeriod(s.period);
  const w = s.workspace || {};
  const node = $('gauge-workspace');
  node.dataset.used = w.used ?? '';
  node.dataset.exposure = w.exposure ?? '';
  node.dataset.status = w.status ?? '';
  gauge(node, { used: w.used, total: w.exposure, percentValue: w.percent, status: w.status, caption: 'of exposure used', totalLabel: 'exposure' });
  const sc = w.status_counts || {};
  const stat = (label, value, extra) => el('div', {}, el('dt', {}, label), el('dd', {}, value, extra || ''));
  const products = Object.entries(s.products || {}).map(([k, v]) => stat(productName(k), credits(v), ' cr'));
  fill($('workspace-stats'),
    stat('Users with a limit', count(w.users)),
    stat('OK', count(sc.ok)),
    stat('Warning', count(sc.warning)),
    stat('Exceeded', count(sc.exceeded)),
    sc.unlimited !== undefined ? stat('No limit', count(sc.unlimited)) : null,
    stat('Blocked', count(w.blocked)),
    stat('Forecast at period end', credits(w.forecast), ' cr'),
    products);
  const teams = s.teams || [];
  fill($('team-gauges'), teams.length ? teams.map((t) => el('li', {
    class: 'gauge-team', dataset: { group: t.group, used: t.used ?? '', budget: t.budget ?? '', status: t.status ?? '' },
  },
  el('div', { class: 'name' }, el('span', {}, t.group), statusBadge(t.status)),
  meter(t.percent, t.status, `${t.group}: ${percent(t.percent)} of its ${t.budget_kind === 'pool' ? 'pool' : 'member limits'} used`),
  el('div', { class: 'figures' }, `${credits(t.used)} of ${credits(t.budget)} credits (${percent(t.percent)}) · `,
    t.budget_kind === 'pool' ? 'team pool' : 'sum of member limits', ` · ${count(t.members)} members`),
  )) : el('li', { class: 'muted' }, 'No team has members with a limit yet.'));
  knownGroups = teams.map((t) => t.group).sort();
  setGroupOptions($('users-group'), knownGroups, 'All groups');
  setGroupOptions($('activity-team'), knownGroups, 'All teams');
  fill($('overview-updated'), `Updated ${new Date().toLocaleTimeString()}`);
}

// ---------------------------------------------------------------------------
// reconciler status (header)

async function loadReconciler() {
  const node = $('reconciler');
  let r;
  try {
    r = await api('/v1/reconciler/status');
  } catch (err) {
    fill(node, 'Reconciler: status unavailable ', el('code', {}, `(${err.code})`));
    return;
  }
  const last = r && r.last;
  if (!last) {
    fill(node, 'Reconciler: no run reported yet');
    return;
  }
  const failures = Array.isArray(last.failures) ? last.failures : [];
  const ok = last.ok && failures.length === 0;
  fill(node, 'Reconciler: ',
    el('span', { class: ok ? 'good' : 'bad' }, ok ? '✓ ok' : '✕ failing'),
    ` · last run `, el('time', { datetime: last.at, title: when(last.at) }, ago(last.at)),
    ` · applied commit `, el('code', { title: last.commit || '' }, shortCommit(last.commit)),
    ` · ${count(last.applied)} applied · drift ${count(last.drift)} · `,
    failures.length ? el('span', { class: 'bad', title: failures.slice(0, 5).join('\n') }, `${failures.length} failure${failures.length === 1 ? '' : 's'}: ${failures[0]}`) : 'no failures');
  node.dataset.ok = String(ok);
  node.dataset.commit = last.commit || '';
}

// ---------------------------------------------------------------------------
// trends

async function loadTrends() {
  const by = document.querySelector('input[name="trend-by"]:checked')?.value || 'product';
  const node = $('trend-chart');
  let t;
  try {
    t = await api(`/v1/dashboard/trends${query({ by })}`);
  } catch (err) {
    showError(node, err, 'the trends chart');
    return;
  }
  const days = t.days || [];
  const series = (t.series || []).map((s) => ({ key: s.key, label: by === 'product' ? productName(s.key) : s.key, values: s.values || [] }));
  // the running total, exact in micro-credits, then the forecast from today to the period's end
  const actual = [];
  let sum = 0n;
  days.forEach((d, j) => {
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

document.querySelectorAll('input[name="trend-by"]').forEach((r) => r.addEventListener('change', loadTrends));

/** A decimal credit string as exact micro-credits. */
function micros(value) {
  const m = /^(-?)(\d*)(?:\.(\d{0,6}))?/.exec(String(value ?? '0'));
  if (!m) return 0n;
  const whole = BigInt(m[2] || '0') * 1000000n + BigInt((m[3] || '').padEnd(6, '0') || '0');
  return m[1] ? -whole : whole;
}

/** Micro-credits as a decimal string. */
function fromMicros(v) {
  const neg = v < 0n;
  const a = neg ? -v : v;
  const frac = (a % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${a / 1000000n}${frac ? `.${frac}` : ''}`;
}

// ---------------------------------------------------------------------------
// paged, sortable tables (users and breakdown)

function pagedTable({ table, prev, next, pageLabel, message, csv, caption, path, params, row, empty, defaultSort, descFirst }) {
  const state = { sort: defaultSort, order: 'desc', after: null, stack: [], next: null };
  const headers = [...table.querySelectorAll('th[data-sort]')];
  const showSort = () => headers.forEach((th) => {
    if (th.dataset.sort === state.sort) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  });
  headers.forEach((th) => th.querySelector('button').addEventListener('click', () => {
    const key = th.dataset.sort;
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else {
      state.sort = key;
      state.order = descFirst.includes(key) ? 'desc' : 'asc';
    }
    reset();
  }));
  const body = table.tBodies[0];
  const cols = table.tHead.rows[0].cells.length;
  async function load() {
    const p = { ...params(), sort: state.sort, order: state.order };
    showSort();
    csv.href = `${path}${query({ ...p, format: 'csv' })}`;
    let page;
    try {
      page = await api(`${path}${query({ ...p, after: state.after })}`);
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
    state.next = page.has_more ? page.next : null;
    prev.disabled = state.stack.length === 0;
    next.disabled = !state.next;
    fill(pageLabel, `Page ${state.stack.length + 1}${page.has_more ? '' : ' (last)'} · ${rows.length} rows`);
    fill(table.caption, caption());
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

const mix = (m) => Object.entries(m || {}).sort((a, b) => Number(b[1]) - Number(a[1]))
  .map(([k, v]) => `${productName(k)} ${credits(v)}`).join(' · ') || '—';

const users = pagedTable({
  table: $('users-table'),
  prev: $('users-prev'),
  next: $('users-next'),
  pageLabel: $('users-page'),
  message: $('users-message'),
  csv: $('users-csv'),
  path: '/v1/dashboard/users',
  defaultSort: 'used',
  descFirst: ['used', 'percent'],
  caption: () => {
    const f = [];
    if ($('users-q').value) f.push(`matching “${$('users-q').value}”`);
    if ($('users-group').value) f.push(`in ${$('users-group').value}`);
    if ($('users-status').value) f.push(`with status ${$('users-status').value}`);
    return `Users${f.length ? ` ${f.join(', ')}` : ''}, this period`;
  },
  params: () => ({ q: $('users-q').value.trim(), group: $('users-group').value, status: $('users-status').value, limit: $('users-size').value }),
  empty: 'No user matches these filters.',
  row: (u) => el('tr', { dataset: { user: u.user, status: u.status } },
    el('th', { scope: 'row', class: 'mono' }, u.user),
    el('td', {}, u.group || '—'),
    el('td', { class: 'num' }, credits(u.used)),
    el('td', { class: 'num' }, u.limit === null || u.limit === undefined ? 'none' : credits(u.limit)),
    el('td', { class: 'num' }, credits(u.remaining)),
    el('td', { class: 'num' }, percent(u.percent), u.percent !== null && u.percent !== undefined ? meter(u.percent, u.status, `${u.user}: ${percent(u.percent)} of limit used`) : null),
    el('td', {}, statusBadge(u.status)),
    el('td', { class: 'small' }, mix(u.products))),
});

['users-group', 'users-status', 'users-size'].forEach((id) => $(id).addEventListener('change', () => users.reset()));
$('users-q').addEventListener('input', debounce(() => users.reset(), 300));
$('users-filters').addEventListener('submit', (e) => { e.preventDefault(); users.reset(); });

const breakdown = pagedTable({
  table: $('breakdown-table'),
  prev: $('breakdown-prev'),
  next: $('breakdown-next'),
  pageLabel: $('breakdown-page'),
  message: $('breakdown-message'),
  csv: $('breakdown-csv'),
  path: '/v1/dashboard/breakdown',
  defaultSort: 'used',
  descFirst: ['used', 'events'],
  caption: () => `Credits this period by ${$('breakdown-by').selectedOptions[0]?.textContent.toLowerCase() || 'key'}${$('breakdown-q').value ? `, matching “${$('breakdown-q').value}”` : ''}`,
  params: () => ({ by: $('breakdown-by').value, q: $('breakdown-q').value.trim(), limit: 25 }),
  empty: 'Nothing recorded for this period yet.',
  row: (r) => el('tr', { dataset: { key: r.key } },
    el('th', { scope: 'row' }, $('breakdown-by').value === 'product' ? productName(r.key) : (r.key || '(none)')),
    el('td', { class: 'num' }, credits(r.used)),
    el('td', { class: 'num' }, percent(r.share)),
    el('td', { class: 'num' }, count(r.events)),
    el('td', { class: 'num' }, count(r.users))),
});

$('breakdown-by').addEventListener('change', () => breakdown.reset());
$('breakdown-q').addEventListener('input', debounce(() => breakdown.reset(), 300));
$('breakdown-filters').addEventListener('submit', (e) => { e.preventDefault(); breakdown.reset(); });

// ---------------------------------------------------------------------------
// live activity (server-sent events)

const SHOWN = 100;
const KEPT = 1000;
const activity = {
  source: null,
  lastId: null,
  events: [],
  paused: false,
  retry: 1000,
};

function matches(e) {
  const p = $('activity-product').value;
  const t = $('activity-team').value;
  return (!p || String(e.product).toLowerCase() === p) && (!t || e.project === t);
}

function eventItem(e, total, fresh) {
  return el('li', { class: `event${fresh ? ' new' : ''}`, dataset: { id: e.seq, product: e.product, team: e.project || '' } },
    el('time', { class: 'when', datetime: e.time }, clock(e.time)),
    el('span', { class: 'who mono' }, e.user),
    el('span', {}, el('span', { class: `product ${String(e.product).toLowerCase()}` }, productName(e.product))),
    el('span', { class: 'model' }, e.model, e.project ? el('span', { class: 'muted small team' }, ` · ${e.project}`) : null),
    el('span', { class: 'credits' }, `${credits(e.credits)} cr`),
    el('span', { class: 'total muted', title: 'running total of the events shown' }, `Σ ${credits(fromMicros(total))}`));
}

/** Re-renders the list from the kept events (after a filter change or a pause). */
function renderActivity() {
  const list = $('activity');
  const shown = activity.events.filter(matches);
  let total = 0n;
  const items = shown.map((e) => {
    total += micros(e.credits);
    return { e, total };
  });
  activity.total = total;
  activity.count = shown.length;
  fill(list, items.slice(-SHOWN).reverse().map(({ e, total: t }) => eventItem(e, t, false)));
  showTotals();
}

function showTotals() {
  fill($('activity-sum'), credits(fromMicros(activity.total || 0n)));
  fill($('activity-count'), count(activity.count || 0));
  $('activity-empty').hidden = (activity.count || 0) > 0;
}

function onEvent(message) {
  let e;
  try {
    e = parseJson(message.data);
  } catch (err) {
    return;
  }
  const seq = Number(e.seq ?? message.lastEventId);
  if (activity.lastId !== null && seq <= activity.lastId) return;
  activity.lastId = seq;
  activity.events.push(e);
  if (activity.events.length > KEPT) activity.events.splice(0, activity.events.length - KEPT);
  if (activity.paused || !matches(e)) return;
  activity.total = (activity.total || 0n) + micros(e.credits);
  activity.count = (activity.count || 0) + 1;
  const list = $('activity');
  list.prepend(eventItem(e, activity.total, true));
  while (list.children.length > SHOWN) list.lastElementChild.remove();
  showTotals();
}

function setLive(state, text) {
  const node = $('activity-state');
  node.className = `live-state ${state}`;
  fill(node, text);
}

/** Opens the stream; after a restart of the server it resumes after the last event seen. */
function connect() {
  const url = `/v1/usage/stream${activity.lastId !== null ? query({ after: activity.lastId }) : ''}`;
  const source = new EventSource(url);
  activity.source = source;
  source.addEventListener('open', () => {
    activity.retry = 1000;
    setLive('on', activity.paused ? 'Live (paused)' : 'Live');
  });
  source.addEventListener('usage', onEvent);
  source.addEventListener('message', onEvent);
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      // the browser gave up (an error status): open a new stream from the last id ourselves
      setLive('off', 'Disconnected; retrying…');
      source.close();
      setTimeout(connect, activity.retry);
      activity.retry = Math.min(activity.retry * 2, 15000);
    } else {
      // the browser reconnects by itself and sends Last-Event-ID
      setLive('off', 'Reconnecting…');
    }
  });
}

/** Fills the list with the latest events, then opens the stream right after the newest. */
async function loadRecent() {
  try {
    const r = await api(`/v1/usage/events/recent${query({ limit: SHOWN })}`);
    const events = (r.data || []).slice().reverse();
    activity.events = events.concat(activity.events).slice(-KEPT);
    if (typeof r.last_seq === 'number') activity.lastId = r.last_seq;
    renderActivity();
  } catch (err) {
    // the list then fills from the stream alone
  }
  connect();
}

$('activity-product').addEventListener('change', renderActivity);
$('activity-team').addEventListener('change', renderActivity);
$('activity-pause').addEventListener('click', () => {
  activity.paused = !activity.paused;
  $('activity-pause').setAttribute('aria-pressed', String(activity.paused));
  fill($('activity-pause'), activity.paused ? 'Resume' : 'Pause');
  setLive(activity.source && activity.source.readyState === EventSource.OPEN ? 'on' : 'off', activity.paused ? 'Paused' : 'Live');
  if (!activity.paused) renderActivity();
});

// ---------------------------------------------------------------------------
// team budgets and proposals

let groups = [];

async function loadGroups() {
  const node = $('groups');
  let r;
  try {
    r = await api('/v1/groups');
  } catch (err) {
    showError(node, err, 'the team budgets');
    $('propose-submit').disabled = true;
    return;
  }
  groups = r.data || [];
  $('propose-submit').disabled = false;
  const select = $('propose-group');
  const current = select.value;
  fill(select, groups.map((g) => el('option', { value: g.name }, g.name)));
  if (groups.some((g) => g.name === current)) select.value = current;
  prefill();
  fill(node, groups.length ? groups.map(groupCard) : el('p', { class: 'muted' }, 'The policies define no group.'));
  if (r.errors) node.prepend(el('p', { class: 'error', role: 'alert' }, `The policies at the approved revision have ${r.errors} validation errors.`));
}

function caps(m) {
  const e = Object.entries(m || {});
  return e.length ? e.map(([k, v]) => `${productName(k)} ${credits(v)}`).join(' · ') : null;
}

function groupCard(g) {
  const line = g.limit_line || g.line;
  const dd = (label, ...value) => [el('dt', {}, label), el('dd', {}, ...value)];
  return el('article', { class: 'card', dataset: { group: g.name }, 'aria-labelledby': `group-${cssId(g.name)}` },
    el('h3', { id: `group-${cssId(g.name)}` }, g.name),
    g.description ? el('p', { class: 'small muted' }, g.description) : null,
    el('dl', {},
      dd('Limit', g.limit?.credits !== null && g.limit?.credits !== undefined ? `${credits(g.limit.credits)} credits per member` : 'none'),
      caps(g.limit?.products) ? dd('Product caps', caps(g.limit.products)) : null,
      caps(g.limit?.models) ? dd('Model caps', caps(g.limit.models)) : null,
      dd('Pool', g.pool !== null && g.pool !== undefined ? `${credits(g.pool)} credits${g.pool_used !== null && g.pool_used !== undefined ? ` (${credits(g.pool_used)} used)` : ''}` : 'none'),
      dd('Members', count(g.members)),
      dd('Used', `${credits(g.used)} credits`),
      g.owners && g.owners.length ? dd('Owners', g.owners.join(', ')) : null,
      dd('Defined in', el('code', {}, `${g.file}${line ? `:${line}` : ''}`)),
      dd('Commit', el('code', { title: g.commit || '' }, shortCommit(g.commit)))),
    el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => startProposal(g.name), 'aria-label': `Propose a change to ${g.name}` }, 'Propose change')));
}

function cssId(s) {
  return String(s).replace(/[^a-zA-Z0-9_-]/g, '-');
}

function prefill() {
  const g = groups.find((x) => x.name === $('propose-group').value);
  if (!g) return;
  $('propose-credits').value = g.limit?.credits ?? '';
  $('propose-pool').value = g.pool ?? '';
  $('propose-form').dataset.credits = g.limit?.credits ?? '';
  $('propose-form').dataset.pool = g.pool ?? '';
  capEdits = ['products', 'models'].flatMap((kind) => Object.entries(g.limit?.[kind] || {})
    .map(([name, value]) => ({ kind, name, original: String(value), value: String(value), removed: false })));
  renderCaps();
}

// Caps of the group being edited: each one kept (maybe with a new value), removed, or new.
let capEdits = [];
const CAP_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;
const capKind = (kind) => (kind === 'models' ? 'model' : 'product');

function renderCaps() {
  fill($('propose-caps'), capEdits.length ? capEdits.map((c) => {
    const id = `cap-${c.kind}-${cssId(c.name)}`;
    const state = c.original === null ? 'new' : c.removed ? 'removed' : 'kept';
    const input = el('input', { id, inputmode: 'decimal', value: c.value, disabled: c.removed, dataset: { cap: c.name } });
    input.addEventListener('input', () => { c.value = input.value; });
    const toggle = el('button', { type: 'button', 'aria-label': `${c.removed ? 'Keep' : 'Remove'} the ${capKind(c.kind)} cap on ${c.name}` }, c.removed ? 'Keep' : 'Remove');
    toggle.addEventListener('click', () => {
      if (c.original === null) capEdits = capEdits.filter((x) => x !== c);
      else c.removed = !c.removed;
      renderCaps();
    });
    return el('li', { dataset: { kind: c.kind, name: c.name, state } },
      el('label', { for: id }, `${productName(c.name)} (${capKind(c.kind)})`,
        state === 'new' ? el('span', { class: 'muted small' }, ' · new') : null,
        state === 'removed' ? el('span', { class: 'muted small' }, ' · removed') : null),
      input, toggle);
  }) : el('li', { class: 'muted small' }, 'No cap: the whole limit is shared by every product and model.'));
  // names already used as caps somewhere, as suggestions for a new one
  const kind = $('cap-kind').value;
  const names = new Set(kind === 'products' ? Object.keys(PRODUCT_NAMES) : []);
  for (const g of groups) Object.keys(g.limit?.[kind] || {}).forEach((n) => names.add(n));
  fill($('cap-names'), [...names].sort().map((n) => el('option', { value: n })));
}

function addCap() {
  const kind = $('cap-kind').value;
  const name = $('cap-name').value.trim();
  const value = $('cap-credits').value.trim();
  const problem = $('cap-problem');
  const problems = [];
  if (!CAP_NAME.test(name)) problems.push('name a product or model (letters, digits and . _ - : / @ +)');
  if (!DECIMAL.test(value)) problems.push('give the cap in credits, like `500` or `500.5`');
  problem.hidden = !problems.length;
  problem.textContent = problems.join('; ');
  if (problems.length) return;
  const same = capEdits.find((c) => c.kind === kind && c.name === name);
  if (same) Object.assign(same, { value, removed: false });
  else capEdits.push({ kind, name, original: null, value, removed: false });
  $('cap-name').value = '';
  $('cap-credits').value = '';
  renderCaps();
  $('cap-name').focus();
}

$('cap-add').addEventListener('click', addCap);
$('cap-kind').addEventListener('change', renderCaps);
// Enter in the new-cap fields adds the cap rather than submitting the proposal
['cap-name', 'cap-credits'].forEach((id) => $(id).addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    addCap();
  }
}));

/** The caps part of a proposal: `{products: {name: value|null}, models: {...}}`, and problems. */
function capChanges(problems) {
  const out = {};
  for (const c of capEdits) {
    const value = c.value.trim();
    let change;
    if (c.removed) change = c.original === null ? undefined : null;
    else if (!DECIMAL.test(value)) problems.push(`the ${capKind(c.kind)} cap on ${c.name} must be a number like \`500\``);
    else if (value !== c.original) change = value;
    if (change !== undefined) (out[c.kind] ||= {})[c.name] = change;
  }
  return out;
}

function startProposal(name) {
  $('propose-group').value = name;
  prefill();
  $('propose-form').scrollIntoView({ behavior: 'smooth', block: 'center' });
  $('propose-credits').focus({ preventScroll: true });
}

$('propose-group').addEventListener('change', prefill);

const DECIMAL = /^\d+(\.\d{1,6})?$/;

$('propose-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = $('propose-form');
  const result = $('proposal-result');
  const body = { group: $('propose-group').value, reason: $('propose-reason').value.trim() };
  const c = $('propose-credits').value.trim();
  const p = $('propose-pool').value.trim();
  const problems = [];
  if (!body.group) problems.push('choose a group');
  if (c && !DECIMAL.test(c)) problems.push('credits must be a number like `2500` or `2500.5`');
  if (p && !DECIMAL.test(p)) problems.push('the pool must be a number, or empty to remove it');
  if (!body.reason) problems.push('give a reason (it goes into the commit message)');
  if (c && c !== form.dataset.credits) body.credits = c;
  if (p !== form.dataset.pool) body.pool = p ? p : null;
  Object.assign(body, capChanges(problems));
  if (!problems.length && body.credits === undefined && body.pool === undefined && !body.products && !body.models) problems.push('change the credits, the pool or a cap first');
  if (problems.length) {
    fill(result, el('div', { class: 'error', role: 'alert' }, el('ul', {}, problems.map((x) => el('li', {}, x)))));
    return;
  }
  $('propose-submit').disabled = true;
  fill(result, el('p', { class: 'loading' }, 'Writing the branch and computing the plan…'));
  try {
    const made = await api('/v1/proposals', { method: 'POST', body });
    fill(result, proposalView(made, 'Proposal committed'));
    $('propose-reason').value = '';
    loadProposals();
  } catch (err) {
    fill(result, errorBox(err, 'the proposal'));
  } finally {
    $('propose-submit').disabled = false;
  }
});

/** A proposal: branch, commit and its plan. */
function proposalView(p, heading) {
  const summary = p.plan?.summary && typeof p.plan.summary === 'object'
    ? Object.entries(p.plan.summary).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join(' · ')
    : '';
  return el('div', { class: 'success', dataset: { commit: p.commit || '', branch: p.branch || '' } },
    el('h3', {}, heading, p.title ? `: ${p.title}` : ''),
    el('dl', {},
      el('dt', {}, 'Branch'), el('dd', {}, el('code', { class: 'branch' }, p.branch || '—')),
      el('dt', {}, 'Commit'), el('dd', {}, el('code', { class: 'commit' }, p.commit || '—')),
      p.base ? [el('dt', {}, 'Based on'), el('dd', {}, el('code', {}, `${p.base.ref || ''} ${shortCommit(p.base.commit)}`))] : null,
      p.file ? [el('dt', {}, 'File'), el('dd', {}, el('code', {}, p.file))] : null,
      summary && !p.plan?.markdown ? [el('dt', {}, 'Plan'), el('dd', {}, summary)] : null),
    p.plan?.markdown ? el('details', { open: true }, el('summary', {}, 'The plan'), markdown(p.plan.markdown),
      el('details', {}, el('summary', {}, 'Plan as text'), el('pre', { class: 'plan' }, p.plan.markdown))) : null,
    el('p', { class: 'small' }, 'Review and merge the branch to apply it; the reconciler applies what is merged.'));
}

async function loadProposals() {
  const node = $('proposals');
  try {
    const r = await api('/v1/proposals?limit=5');
    const rows = r.data || [];
    fill(node, rows.length ? el('ul', {}, rows.map((p) => el('li', { dataset: { commit: p.commit } },
      el('strong', {}, p.title || p.subject), ' · ', el('code', {}, p.branch), ' @ ', el('code', { title: p.commit }, shortCommit(p.commit)),
      el('span', { class: 'muted small' }, ` · ${ago(p.created_at)}`)))) : el('p', { class: 'muted' }, 'No proposal yet.'));
  } catch (err) {
    showError(node, err, 'the proposals');
  }
}

// ---------------------------------------------------------------------------
// credit requests

let requestsAfter = null;

function contextView(c) {
  if (c === null || c === undefined) return el('span', { class: 'muted' }, 'none given');
  if (typeof c !== 'object') return String(c);
  return el('dl', {}, Object.entries(c).map(([k, v]) => [el('dt', {}, k.replace(/_/g, ' ')),
    el('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : decimalText(v))]));
}

/** A value as text; decimal strings (credits) are shown rounded for reading. */
function decimalText(v) {
  return typeof v === 'string' && /^-?\d+\.\d{3,}$/.test(v) ? credits(v) : String(v);
}

function requestCard(r) {
  const result = el('div', { class: 'result', 'aria-live': 'polite' });
  const actions = el('div', { class: 'actions' });
  const statusCell = el('dd', {}, r.status, r.decision_reason ? ` (${r.decision_reason})` : '');
  const card = el('article', { class: 'card request', dataset: { id: r.id, status: r.status, user: r.user } },
    el('h3', {}, `#${r.id} · ${r.user}`),
    el('dl', {},
      el('dt', {}, 'Asks for'), el('dd', {}, `${credits(r.credits)} credits for ${count(r.days)} day${r.days === 1 ? '' : 's'}`),
      el('dt', {}, 'Reason'), el('dd', {}, r.reason),
      el('dt', {}, 'Context'), el('dd', {}, contextView(r.context)),
      el('dt', {}, 'Asked'), el('dd', {}, el('time', { datetime: r.created_at, title: when(r.created_at) }, ago(r.created_at))),
      el('dt', {}, 'Status'), statusCell,
      r.proposal?.branch ? [el('dt', {}, 'Proposal'), el('dd', {}, el('code', {}, r.proposal.branch), ' @ ', el('code', { class: 'commit' }, shortCommit(r.proposal.commit)))] : null),
    actions, result);
  if (r.status === 'pending') {
    const propose = el('button', { type: 'button', class: 'primary', 'aria-label': `Propose an override for request ${r.id}` }, 'Propose override');
    const declineReason = el('textarea', { id: `decline-${r.id}`, required: true, maxlength: 2000 });
    const declineForm = el('form', { class: 'stack', hidden: true },
      el('div', { class: 'field' }, el('label', { for: `decline-${r.id}` }, 'Why decline?'), declineReason),
      el('div', {}, el('button', { type: 'submit', class: 'danger' }, 'Decline request'), ' ',
        el('button', { type: 'button', onclick: () => { declineForm.hidden = true; decline.focus(); } }, 'Cancel')));
    const decline = el('button', { type: 'button', class: 'danger', 'aria-label': `Decline request ${r.id}`, 'aria-expanded': 'false' }, 'Decline');
    propose.addEventListener('click', async () => {
      propose.disabled = true;
      decline.disabled = true;
      fill(result, el('p', { class: 'loading' }, 'Writing the override and computing the plan…'));
      try {
        const made = await api(`/v1/requests/${encodeURIComponent(r.id)}/propose`, { method: 'POST' });
        fill(result, el('p', { class: 'success', role: 'status' }, 'Proposed on ', el('code', {}, made.branch), ' @ ',
          el('code', { class: 'commit', title: made.commit }, shortCommit(made.commit)), ' (the plan is below the requests)'));
        fill($('request-result'), proposalView(made, `Override proposed for request #${r.id}`));
        card.dataset.status = 'proposed';
        fill(statusCell, 'proposed');
        actions.replaceChildren();
        loadProposals();
      } catch (err) {
        fill(result, errorBox(err, 'the override proposal'));
        propose.disabled = false;
        decline.disabled = false;
      }
    });
    decline.addEventListener('click', () => {
      declineForm.hidden = !declineForm.hidden;
      decline.setAttribute('aria-expanded', String(!declineForm.hidden));
      if (!declineForm.hidden) declineReason.focus();
    });
    declineForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const reason = declineReason.value.trim();
      if (!reason) {
        fill(result, el('div', { class: 'error', role: 'alert' }, 'say why the request is declined'));
        declineReason.focus();
        return;
      }
      try {
        await api(`/v1/requests/${encodeURIComponent(r.id)}/decline`, { method: 'POST', body: { reason } });
        card.dataset.status = 'declined';
        fill(statusCell, `declined (${reason})`);
        actions.replaceChildren();
        fill(result, el('p', { class: 'notice', role: 'status' }, `Declined: ${reason}`));
      } catch (err) {
        fill(result, errorBox(err, 'declining'));
      }
    });
    actions.append(propose, decline, declineForm);
  }
  return card;
}

async function loadRequests(more = false) {
  const node = $('requests');
  if (!more) requestsAfter = null;
  let r;
  try {
    r = await api(`/v1/requests${query({ status: $('requests-status').value, limit: 50, after: requestsAfter })}`);
  } catch (err) {
    showError(node, err, 'the credit requests');
    return;
  }
  const rows = r.data || [];
  const cards = rows.map(requestCard);
  if (more) node.append(...cards);
  else fill(node, cards.length ? cards : el('p', { class: 'muted' }, `No ${$('requests-status').value || ''} request.`));
  requestsAfter = r.has_more ? r.next : null;
  $('requests-more').hidden = !r.has_more;
}

$('requests-status').addEventListener('change', () => loadRequests());
$('requests-more').addEventListener('click', () => loadRequests(true));

// ---------------------------------------------------------------------------
// start: the gauges first; then every other section loads on its own

loadSummary().finally(() => {
  loadTrends();
  users.load();
  breakdown.load();
  loadRecent();
  loadReconciler();
  loadGroups();
  loadProposals();
  loadRequests();
});
every(10000, loadSummary);
every(15000, loadReconciler);
every(60000, loadTrends);
