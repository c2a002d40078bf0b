// The live activity panel: the latest usage events, then new ones as the server sends
// them (server-sent events), filtered by product and team, with an exact running total.

import { $, api, el, fill, credits, count, clock, query, parseJson, productName, micros, fromMicros } from '../common.js';
import { personLink, teamLink, modelLink } from './links.js';

/** The team of users with a limit and no group, as the API names it. */
const NO_GROUP = '(no group)';

/**
 * A usage event, from `GET /v1/usage/events/recent` or the stream.
 * @typedef {object} UsageEvent
 * @property {number} [seq]
 * @property {string} time RFC 3339
 * @property {string} user
 * @property {string} product
 * @property {string} model
 * @property {string | null} [project] the user's team
 * @property {import('../common.js').Decimal} credits
 */

/**
 * `GET /v1/usage/events/recent`: newest first, and the stream's position.
 * @typedef {object} RecentEvents
 * @property {UsageEvent[]} [data]
 * @property {number} [last_seq]
 */

/**
 * One runaway person or model.
 * @typedef {object} RunawayFinding
 * @property {string} name
 * @property {import('../common.js').Decimal} last_hour
 * @property {import('../common.js').Decimal} baseline
 */

/**
 * `GET /v1/dashboard/runaway`.
 * @typedef {object} RunawayAnswer
 * @property {RunawayFinding[]} people
 * @property {RunawayFinding[]} models
 * @property {{ factor: number, floor: import('../common.js').Decimal, min_baseline_hours: number }} rule
 */

/** The least time between two reads of the runaway list while events stream in (ms). */
const RUNAWAY_EVERY = 5000;

/** How many events the list shows. */
const SHOWN = 100;
/** How many events are kept to re-filter the list without asking the server. */
const KEPT = 1000;

/**
 * The stream and the kept events; `total` and `count` are those of the events shown.
 * @type {{ source: EventSource | null, lastId: number | null, events: UsageEvent[], paused: boolean, retry: number, total?: bigint, count?: number }}
 */
const activity = {
  source: null,
  lastId: null,
  events: [],
  paused: false,
  retry: 1000,
};

/**
 * The people whose spend is runaway now, and when the list was last read.
 * @type {{ people: Set<string>, readAt: number, reading: boolean }}
 */
const runaway = { people: new Set(), readAt: 0, reading: false };

const product = $('activity-product', HTMLSelectElement);
const team = $('activity-team', HTMLSelectElement);
const pause = $('activity-pause', HTMLButtonElement);

/**
 * True when the event passes the product and team filters.
 * @param {UsageEvent} e
 * @returns {boolean}
 */
function matches(e) {
  const p = product.value;
  const t = team.value;
  // the ungrouped users' events carry no project: they are the team "(no group)"
  return (!p || String(e.product).toLowerCase() === p) && (!t || (e.project || NO_GROUP) === t);
}

/**
 * A list item for an event, with the running total up to it.
 * @param {UsageEvent} e
 * @param {bigint} total micro-credits
 * @param {boolean} fresh true for an event that just arrived (highlighted)
 * @returns {HTMLLIElement}
 */
function eventItem(e, total, fresh) {
  return el('li', { class: `event${fresh ? ' new' : ''}`, dataset: { id: e.seq, product: e.product, team: e.project || '' } },
    el('time', { class: 'when', datetime: e.time }, clock(e.time)),
    el('span', { class: 'who mono' }, personLink(e.user),
      runaway.people.has(e.user) ? el('span', { class: 'status exceeded', title: 'runaway spend: see the list above' }, '⚠ runaway') : null),
    el('span', {}, el('span', { class: `product ${String(e.product).toLowerCase()}` }, productName(e.product))),
    el('span', { class: 'model' }, modelLink(e.model), el('span', { class: 'muted small team' }, ' · ', teamLink(e.project || NO_GROUP))),
    el('span', { class: 'credits' }, `${credits(e.credits)} cr`),
    el('span', { class: 'total muted', title: 'running total of the events shown' }, `Σ ${credits(fromMicros(total))}`));
}

/**
 * Reads the runaway people and models and shows them above the list; the events of a
 * runaway person get a badge. At most once per {@link RUNAWAY_EVERY} unless `now`.
 * @param {boolean} now
 */
async function loadRunaway(now) {
  if (runaway.reading || (!now && Date.now() - runaway.readAt < RUNAWAY_EVERY)) return;
  runaway.reading = true;
  runaway.readAt = Date.now();
  try {
    const r = /** @type {RunawayAnswer} */ (await api('/v1/dashboard/runaway'));
    const people = new Set(r.people.map((p) => p.name));
    const changed = people.size !== runaway.people.size || [...people].some((p) => !runaway.people.has(p));
    runaway.people = people;
    fill($('runaway-factor'), String(r.rule.factor));
    fill($('runaway-floor'), credits(r.rule.floor));
    const item = (/** @type {RunawayFinding} */ f, /** @type {boolean} */ person) =>
      el('li', { class: 'runaway-item', dataset: { name: f.name } },
        person ? personLink(f.name) : el('span', {}, 'model ', modelLink(f.name)),
        `: ${credits(f.last_hour)} credits in the last hour (baseline ${credits(f.baseline)} an hour)`);
    fill($('runaway-list'), r.people.map((f) => item(f, true)), r.models.map((f) => item(f, false)));
    $('runaway').hidden = r.people.length + r.models.length === 0;
    if (changed) renderActivity();
  } catch {
    // the list of events stands without it
  } finally {
    runaway.reading = false;
  }
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

/**
 * A streamed event: kept, and shown unless paused or filtered out; a repeat (after a
 * reconnect) is dropped by its sequence number.
 * @param {MessageEvent<string>} message
 */
function onEvent(message) {
  /** @type {UsageEvent} */
  let e;
  try {
    e = /** @type {UsageEvent} */ (parseJson(message.data));
  } catch {
    return;
  }
  const seq = Number(e.seq ?? message.lastEventId);
  if (activity.lastId !== null && seq <= activity.lastId) return;
  activity.lastId = seq;
  activity.events.push(e);
  if (activity.events.length > KEPT) activity.events.splice(0, activity.events.length - KEPT);
  loadRunaway(false);
  if (activity.paused || !matches(e)) return;
  activity.total = (activity.total || 0n) + micros(e.credits);
  activity.count = (activity.count || 0) + 1;
  const list = $('activity');
  list.prepend(eventItem(e, activity.total, true));
  while (list.children.length > SHOWN) list.lastElementChild?.remove();
  showTotals();
}

/**
 * @param {'on' | 'off'} state
 * @param {string} text
 */
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
export async function loadRecent() {
  try {
    const r = /** @type {RecentEvents} */ (await api(`/v1/usage/events/recent${query({ limit: SHOWN })}`));
    const events = (r.data || []).slice().reverse();
    activity.events = events.concat(activity.events).slice(-KEPT);
    if (typeof r.last_seq === 'number') activity.lastId = r.last_seq;
    renderActivity();
  } catch {
    // the list then fills from the stream alone
  }
  loadRunaway(true);
  // a burst that stopped leaves the window within the hour: read again even without events
  setInterval(() => loadRunaway(false), 60000);
  connect();
}

product.addEventListener('change', renderActivity);
team.addEventListener('change', renderActivity);
pause.addEventListener('click', () => {
  activity.paused = !activity.paused;
  pause.setAttribute('aria-pressed', String(activity.paused));
  fill(pause, activity.paused ? 'Resume' : 'Pause');
  setLive(activity.source && activity.source.readyState === EventSource.OPEN ? 'on' : 'off', activity.paused ? 'Paused' : 'Live');
  if (!activity.paused) renderActivity();
});
