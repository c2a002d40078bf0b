// Shared helpers of the console's pages: API calls, DOM building, number formats, gauges.
//
// Every request goes to this origin with the session cookie; writes carry the
// `X-Budgit-Console: 1` header the server requires of cookie sessions. DOM is
// built with text nodes only (never innerHTML), so no value from the API can
// inject markup. Types are JSDoc, checked by `tsc` (see package.json beside this
// file); the browser runs the file as written.

/**
 * A credit amount from the API: an exact JSON number, or its decimal text when a
 * double cannot hold it (see `parseJson`).
 * @typedef {number | string} Decimal
 */

/**
 * A budget status as the API spells it (`ok`, `warning`, `exceeded`, `unlimited`).
 * @typedef {string} Status
 */

/**
 * A budget period: RFC 3339 bounds (the end exclusive), the policy's time zone and the server's now.
 * @typedef {object} Period
 * @property {string} start
 * @property {string} end
 * @property {string} [timezone]
 * @property {string} [now]
 */

/**
 * One page of a paged list: `next` is the cursor of the following page when `has_more`.
 * @template T
 * @typedef {object} Page
 * @property {T[]} [data]
 * @property {boolean} [has_more]
 * @property {string | null} [next]
 * @property {number} [total] every row the query matches, when the list counts them
 */

/**
 * What `el` accepts as children: nodes, text, numbers, nested lists; null, undefined
 * and false are left out.
 * @typedef {Node | string | number | bigint | boolean | null | undefined | ChildList} Child
 */
/** @typedef {Child[]} ChildList */

/**
 * The element with `id`, checked to be of `type` (an `HTMLElement` when not given): a
 * page missing one of its own elements fails here, by name, rather than later on null.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{ new (): T }} [type]
 * @returns {T}
 */
export function $(id, type) {
  const node = document.getElementById(id);
  const want = type || HTMLElement;
  if (!(node instanceof want)) throw new Error(`the page has no ${want.name} \`#${id}\``);
  return /** @type {T} */ (node);
}

/** @type {Record<string, string>} */
export const PRODUCT_NAMES = { chatgpt: 'ChatGPT', codex: 'Codex' };

/**
 * A product's display name (`chatgpt` → `ChatGPT`); an unknown product as given.
 * @param {unknown} p
 * @returns {string}
 */
export const productName = (p) => PRODUCT_NAMES[String(p).toLowerCase()] || String(p);

/**
 * A decimal credit amount as exact micro-credits (a `bigint`), so sums stay exact.
 * @param {Decimal | null | undefined} value
 * @returns {bigint}
 */
export function micros(value) {
  const m = /^(-?)(\d*)(?:\.(\d{0,6}))?/.exec(String(value ?? '0'));
  if (!m) return 0n;
  const whole = BigInt(m[2] || '0') * 1000000n + BigInt((m[3] || '').padEnd(6, '0') || '0');
  return m[1] ? -whole : whole;
}

/**
 * Micro-credits as a decimal string.
 * @param {bigint} v
 * @returns {string}
 */
export function fromMicros(v) {
  const neg = v < 0n;
  const a = neg ? -v : v;
  const frac = (a % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${a / 1000000n}${frac ? `.${frac}` : ''}`;
}

/** An API failure: HTTP status, the API's error code and message. */
export class ApiFailure extends Error {
  /**
   * @param {string} method
   * @param {string} path
   * @param {number} status 0 when the server could not be reached
   * @param {string} code
   * @param {string} message
   */
  constructor(method, path, status, code, message) {
    super(message);
    this.method = method;
    this.path = path;
    this.status = status;
    this.code = code;
    /**
     * The error answer's JSON body, when it had one (diagnostics of a failed plan).
     * @type {{ diagnostics?: Diagnostic[] } | null}
     */
    this.body = null;
  }
}

/**
 * An error answer of the API.
 * @typedef {object} ErrorAnswer
 * @property {{ code?: string, message?: string }} [error]
 * @property {Diagnostic[]} [diagnostics]
 */

/**
 * A policy diagnostic in an error answer.
 * @typedef {object} Diagnostic
 * @property {string} [code]
 * @property {string} [message]
 * @property {string} [file]
 * @property {number} [line]
 */

/**
 * Parses API JSON. Credits are exact decimal JSON numbers; a number a JavaScript
 * double cannot hold exactly (`9007199254.740993`) is kept as its decimal text, so
 * sums in micro-credits (and what is shown) stay exact.
 * @param {string} text
 * @returns {unknown} the JSON value: each caller states the shape it reads
 */
export function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    const source = context && context.source;
    const plain = typeof source === 'string' && /^-?\d+(\.\d+)?$/.test(source);
    return typeof value === 'number' && plain && String(value) !== source ? source : value;
  });
}

/**
 * Calls the API; resolves to the JSON body (or null for 204), rejects with ApiFailure.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, redirectOn401?: boolean }} [options]
 * @returns {Promise<unknown>} the JSON body: each caller states the shape it reads
 */
export async function api(path, { method = 'GET', body, redirectOn401 = true } = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json', 'X-Budgit-Console': '1' };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiFailure(method, path, 0, 'network', 'the server could not be reached');
  }
  if (response.status === 401 && redirectOn401) {
    location.assign('/console/login');
    throw new ApiFailure(method, path, 401, 'auth/unauthorized', 'the session has ended; sign in again');
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    // the API's error answers: `{error: {code, message}}`, with diagnostics when a plan failed
    const answer = /** @type {ErrorAnswer | null} */ (data);
    const err = answer && answer.error ? answer.error : {};
    const failure = new ApiFailure(
      method, path, response.status, err.code || `http/${response.status}`,
      err.message || `the server answered ${response.status}`,
    );
    failure.body = answer;
    throw failure;
  }
  return data;
}

/**
 * An element's attributes: `class`, `dataset` (an object), `on<event>` handlers, and
 * any other attribute (true sets it empty; null, undefined and false leave it out).
 * @typedef {Record<string, unknown>} Attrs
 */

/**
 * Builds an element: el('a', {href: '/x', class: 'y'}, 'text', child).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = String(v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

/**
 * @param {Element} node
 * @param {ChildList} children
 */
function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * Replaces a node's children.
 * @template {Element} N
 * @param {N} node
 * @param {...Child} children
 * @returns {N}
 */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/**
 * An SVG element (gauges).
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node | string)} children
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The one number format of every panel: thousands separators, and decimals by magnitude.
// `Intl.NumberFormat` in its standard notation never writes an exponent, so a tiny
// credit amount reads `0.000001`, never `1e-6`.
const wholeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const unitsFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const smallFormat = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4, maximumFractionDigits: 20 });

/**
 * A number for reading, as every panel shows numbers: 100 and more without decimals
 * (`12,346`), from 1 up to 2 decimals (`12.35`), below 1 up to 4 significant digits
 * (`0.0001235`); never in exponent form. Decimal text too large or too precise for a
 * double is read as a number for display only: the exact value stays in the data.
 * @param {Decimal | bigint | null | undefined} value
 * @returns {string}
 */
export function number(value) {
  if (value === null || value === undefined || value === '') return '—';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const a = Math.abs(n);
  if (a >= 100) return wholeFormat.format(n);
  if (a >= 1) return unitsFormat.format(n);
  return smallFormat.format(n);
}

/**
 * Formats a credit amount (an exact JSON number, or its decimal text) for reading with
 * [`number`]; the exact value stays in the data.
 * @param {Decimal | null | undefined} value
 * @returns {string}
 */
export function credits(value) {
  return number(value);
}

/**
 * A count, with thousands separators.
 * @param {number | null | undefined} n
 * @returns {string}
 */
export function count(n) {
  return n === null || n === undefined ? '—' : wholeFormat.format(n);
}

/**
 * A signed credit change for reading: `+1,200`, `−35.5`, `0`.
 * @param {Decimal | null | undefined} value
 * @returns {string}
 */
export function signedCredits(value) {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return credits(value);
  return n > 0 ? `+${number(n)}` : n < 0 ? `−${number(-n)}` : '0';
}

const percentFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/**
 * A percentage (a number from the API) with one decimal.
 * @param {Decimal | null | undefined} p
 * @returns {string}
 */
export function percent(p) {
  if (p === null || p === undefined || !Number.isFinite(Number(p))) return '—';
  return `${percentFormat.format(Number(p))}%`;
}

/**
 * A short commit id.
 * @param {string | null | undefined} c
 * @returns {string}
 */
export function shortCommit(c) {
  return c ? String(c).slice(0, 10) : '—';
}

/**
 * A credit request's steps so far (`GET /v1/requests`' `lifecycle`): one entry per step reached.
 * @typedef {object} RequestLifecycle
 * @property {{ at: string, by?: string, branch?: string, commit?: string, plan_summary?: { raised?: number, newly_unblocked?: number, newly_unblocked_on_caps?: number } }} [proposed]
 * @property {{ at: string, ref?: string, commit?: string }} [merged]
 * @property {{ at: string, run?: number, commit?: string }} [applied]
 * @property {{ at: string, override?: string }} [done]
 * @property {{ at: string, by?: string, reason?: string | null }} [declined]
 */

/** The steps of a credit request in order, with how each is told. */
const REQUEST_STEPS = /** @type {const} */ (['proposed', 'merged', 'applied', 'done', 'declined']);

/**
 * What a request asks credits for: `the total`, or the product or model whose cap rises too.
 * @param {{ product?: string | null, model?: string | null }} r
 * @returns {string}
 */
export function requestNeed(r) {
  if (r.product) return `${productName(r.product)} (its cap too)`;
  if (r.model) return `model ${r.model} (its cap too)`;
  return 'the total';
}

/**
 * A request's lifecycle as an ordered list: each step reached, when, and what proves it
 * (the branch, the merge commit, the reconcile run, the decliner's reason).
 * @param {RequestLifecycle | null | undefined} life
 * @returns {HTMLElement}
 */
export function lifecycleView(life) {
  const l = life || {};
  const items = REQUEST_STEPS.filter((k) => l[k]).map((k) => {
    const s = /** @type {Record<string, any>} */ (l[k]);
    /** @type {(Node | string)[]} */
    const detail = [];
    if (k === 'proposed') {
      if (s.branch) detail.push(' on ', el('code', {}, s.branch));
      const plan = s.plan_summary || {};
      if (plan.newly_unblocked) detail.push(`, unblocks ${count(plan.newly_unblocked)}`);
      // Someone blocked on one product or model only (its cap), whom the proposal lets spend it again.
      if (plan.newly_unblocked_on_caps) detail.push(`, unblocks ${count(plan.newly_unblocked_on_caps)} on a product or model cap`);
      if (s.by) detail.push(` by ${s.by}`);
    } else if (k === 'merged' || k === 'applied') {
      if (s.run !== undefined) detail.push(` by reconcile run #${s.run}`);
      if (s.commit) detail.push(' at ', el('code', { class: 'commit', title: s.commit }, shortCommit(s.commit)));
    } else if (k === 'declined') {
      if (s.by) detail.push(` by ${s.by}`);
      if (s.reason) detail.push(`: ${s.reason}`);
    }
    return el('li', { dataset: { step: k } }, el('strong', {}, k), ' ',
      el('time', { datetime: s.at, title: when(s.at) }, ago(s.at)), ...detail);
  });
  return el('ol', { class: 'lifecycle small' }, items.length ? items : el('li', { dataset: { step: 'pending' } }, 'waiting for a decision'));
}

// The one time format of every page: instants in the workspace's time zone (its
// Workspace document's, which every period the API answers names), whatever the
// browser's zone; until a page has learnt it, the browser's.
/** @type {string | undefined} */
let workspaceZone;
/** @type {Intl.DateTimeFormat} */
let whenFormat = timeFormat(undefined, true);
/** @type {Intl.DateTimeFormat} */
let clockFormat = timeFormat(undefined, false);

/**
 * @param {string | undefined} timeZone
 * @param {boolean} withDate
 * @returns {Intl.DateTimeFormat}
 */
function timeFormat(timeZone, withDate) {
  /** @type {Intl.DateTimeFormatOptions} */
  const opts = withDate
    ? { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }
    : { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
  try {
    return new Intl.DateTimeFormat(undefined, { ...opts, timeZone });
  } catch {
    return new Intl.DateTimeFormat(undefined, opts);
  }
}

/**
 * Shows every time from now on in `timeZone` (an IANA name, as a period names it).
 * @param {string | null | undefined} timeZone
 */
export function setTimeZone(timeZone) {
  if (!timeZone || timeZone === workspaceZone) return;
  workspaceZone = timeZone;
  whenFormat = timeFormat(timeZone, true);
  clockFormat = timeFormat(timeZone, false);
}

/**
 * The workspace's time zone, once a page has learnt it.
 * @returns {string | undefined}
 */
export const timeZone = () => workspaceZone;

/**
 * A time for reading, in the workspace's time zone: `Dec 8, 2026, 14:05 CET`.
 * @param {string | null | undefined} t
 * @returns {string}
 */
export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : whenFormat.format(d);
}

/**
 * A time of day in the workspace's time zone (activity rows).
 * @param {string} t
 * @returns {string}
 */
export function clock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '' : clockFormat.format(d);
}

/**
 * Today's date (YYYY-MM-DD) in the workspace's time zone.
 * @param {number} [now] milliseconds since the epoch
 * @returns {string}
 */
export function today(now = Date.now()) {
  try {
    return new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', timeZone: workspaceZone }).format(new Date(now));
  } catch {
    return new Date(now).toISOString().slice(0, 10);
  }
}

/**
 * A date (YYYY-MM-DD) moved by whole days.
 * @param {string} date
 * @param {number} days
 * @returns {string}
 */
export function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/**
 * How long ago, in words.
 * @param {string} t
 * @param {number} [now] milliseconds since the epoch
 * @returns {string}
 */
export function ago(t, now = Date.now()) {
  const s = Math.round((now - new Date(t).getTime()) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/**
 * A date (YYYY-MM-DD, or RFC 3339 read in `timeZone` when given) as a short day.
 * @param {string | null | undefined} t
 * @param {string} [timeZone]
 * @returns {string}
 */
export function day(t, timeZone = workspaceZone) {
  if (!t) return '—';
  const plain = String(t).length === 10;
  const d = new Date(plain ? `${t}T00:00:00Z` : t);
  if (Number.isNaN(d.getTime())) return String(t);
  /** @type {Intl.DateTimeFormatOptions} */
  const opts = { month: 'short', day: 'numeric', year: 'numeric' };
  try {
    return d.toLocaleDateString([], { ...opts, timeZone: plain ? 'UTC' : timeZone });
  } catch {
    return d.toLocaleDateString([], opts);
  }
}

/**
 * A period as "Nov 1, 2026 – Nov 30, 2026" in its own time zone (the end is exclusive).
 * @param {Period} period
 * @returns {string}
 */
export function periodText(period) {
  const last = new Date(new Date(period.end).getTime() - 1000).toISOString();
  return `${day(period.start, period.timezone)} – ${day(last, period.timezone)}`;
}

/** @type {Record<string, string>} */
const STATUS_TEXT = { ok: 'OK', warning: 'Warning', exceeded: 'Exceeded', unlimited: 'No limit' };
/** @type {Record<string, string>} */
const STATUS_MARK = { ok: '✓', warning: '!', exceeded: '✕', unlimited: '–' };

/**
 * A status badge: colour, symbol and word.
 * @param {Status | null | undefined} status
 * @returns {HTMLSpanElement}
 */
export function statusBadge(status) {
  const s = status && STATUS_TEXT[status] ? status : 'unknown';
  return el('span', { class: `status ${s}` }, el('span', { 'aria-hidden': 'true' }, STATUS_MARK[s] || '?'), STATUS_TEXT[s] || String(status || 'unknown'));
}

/**
 * A horizontal meter (team and user gauges).
 * @param {Decimal | null | undefined} percentValue
 * @param {Status | null | undefined} status
 * @param {string} label
 * @returns {HTMLDivElement}
 */
export function meter(percentValue, status, label) {
  const p = Math.max(0, Math.min(100, Number(percentValue) || 0));
  const bar = el('span');
  bar.style.width = `${p}%`;
  return el('div', {
    class: `meter ${status || ''}`, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': p.toFixed(1), 'aria-label': label,
  }, bar);
}

/**
 * What a gauge shows.
 * @typedef {object} GaugeFigures
 * @property {Decimal | null | undefined} used
 * @property {Decimal | null | undefined} total
 * @property {Decimal | null | undefined} percentValue
 * @property {Status | null | undefined} status
 * @property {string} [caption]
 * @property {string} [totalLabel]
 */

/**
 * A semicircular gauge of `used` against `total` (SVG), with the figures as text below.
 * @param {HTMLElement} node
 * @param {GaugeFigures} figures
 */
export function gauge(node, { used, total, percentValue, status, caption, totalLabel }) {
  const p = Math.max(0, Math.min(100, Number(percentValue) || 0));
  const r = 80;
  /** @param {number} frac */
  const arc = (frac) => {
    const a = Math.PI * (1 - frac);
    return `${100 + r * Math.cos(a)} ${100 - r * Math.sin(a)}`;
  };
  const track = svg('path', { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(1)}`, class: 'track', fill: 'none', 'stroke-width': 18, 'stroke-linecap': 'round' });
  const parts = [track];
  if (p > 0) {
    parts.push(svg('path', { d: `M ${arc(0)} A ${r} ${r} 0 0 1 ${arc(p / 100)}`, class: `fill ${status}`, fill: 'none', 'stroke-width': 18, 'stroke-linecap': 'round' }));
  }
  parts.push(svg('text', { x: 100, y: 92, 'text-anchor': 'middle', class: 'value' }, percentValue === null || percentValue === undefined ? '—' : percent(percentValue)));
  parts.push(svg('text', { x: 100, y: 114, 'text-anchor': 'middle', class: 'caption' }, caption || 'used'));
  const picture = svg('svg', { viewBox: '0 0 200 125', role: 'img', 'aria-label': `${percent(percentValue)} used: ${credits(used)} of ${credits(total)} credits` }, ...parts);
  fill(node,
    picture,
    el('p', { class: 'numbers' }, el('strong', {}, credits(used)), ` of ${credits(total)} credits ${totalLabel || ''}`),
    el('p', { class: 'numbers' }, statusBadge(status)));
}

/**
 * Shows an API failure inline, in place of a section's content.
 * @param {Element} node
 * @param {unknown} err
 * @param {string} [what] the part that could not be loaded, for the message
 * @returns {HTMLDivElement}
 */
export function showError(node, err, what) {
  const box = errorBox(err, what);
  fill(node, box);
  return box;
}

/**
 * An inline error message for an API failure.
 * @param {unknown} err
 * @param {string} [what] the part that could not be loaded, for the message
 * @returns {HTMLDivElement}
 */
export function errorBox(err, what) {
  const f = err instanceof ApiFailure ? err : new ApiFailure('GET', '', 0, 'client', String(err instanceof Error && err.message ? err.message : err));
  let text;
  if (f.status === 404 && f.code === 'request/no-route') {
    text = `this server does not provide ${f.method} ${f.path.split('?')[0]} yet, so ${what || 'this part'} cannot be shown`;
  } else if (f.status === 0) {
    text = `${what || 'this part'} could not be loaded: the server could not be reached`;
  } else {
    text = `${what || 'this part'} could not be loaded: ${f.message}`;
  }
  const box = el('div', { class: 'error', role: 'alert' }, text, ' ', el('code', {}, `(${f.code}${f.status ? `, HTTP ${f.status}` : ''})`));
  if (Array.isArray(f.body?.diagnostics) && f.body.diagnostics.length) {
    box.append(el('ul', {}, f.body.diagnostics.slice(0, 20).map((d) =>
      el('li', {}, `${d.code || ''}: ${d.message || ''}${d.file ? ` (${d.file}${d.line ? `:${d.line}` : ''})` : ''}`))));
  }
  return box;
}

/**
 * Wires the sign-out button.
 * @param {HTMLButtonElement} button
 */
export function signOutButton(button) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api('/console/session', { method: 'DELETE', redirectOn401: false });
    } catch {
      // signing out cannot fail in a way worth keeping the visitor here
    }
    location.assign('/console/login');
  });
}

/**
 * Runs `work` every `ms` while the page is visible (hidden tabs make no requests).
 * @param {number} ms
 * @param {() => Promise<unknown>} work
 */
export function every(ms, work) {
  const tick = async () => {
    if (!document.hidden) await work().catch(() => {});
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

/**
 * A debounced function.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} [ms]
 * @returns {(...args: A) => void}
 */
export function debounce(fn, ms = 250) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/**
 * A query string from an object, leaving out empty values.
 * @param {Record<string, string | number | null | undefined>} params
 * @returns {string}
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * A closed disclosure of what did not fit: `build` makes its content the first time it
 * opens, so a long list costs neither height nor DOM until someone asks for it.
 * @param {string} label the summary's text
 * @param {() => Child} build
 * @returns {HTMLDetailsElement}
 */
export function lazyDetails(label, build) {
  const box = el('details', { class: 'more' }, el('summary', {}, label));
  box.addEventListener('toggle', () => {
    if (box.open && !box.dataset.built) {
      box.dataset.built = 'true';
      append(box, [build()]);
    }
  });
  return box;
}

/**
 * A scrolling wrapper of a wide table: focusable (a keyboard can scroll it) and named.
 * @param {string} name
 * @param {HTMLTableElement} table
 * @returns {HTMLDivElement}
 */
export function tableWrap(name, table) {
  return el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': name }, table);
}

/**
 * Renders minimal markdown (headings, lists, tables, code) as elements; everything else as text.
 * With `rows`, a table or list longer than that shows its first `rows` entries and
 * keeps the rest in a closed disclosure, built only when opened.
 * @param {string | null | undefined} text
 * @param {{ rows?: number }} [options]
 * @returns {HTMLDivElement}
 */
export function markdown(text, { rows: cap = Infinity } = {}) {
  const out = el('div', { class: 'markdown' });
  const lines = String(text || '').split('\n');
  let i = 0;
  /**
   * @param {string} raw
   * @returns {Child[]}
   */
  const inline = (raw) => {
    const s = raw.replace(/<!--.*?-->/g, '').replace(/<\/?[a-zA-Z][^>]*>/g, '');
    /** @type {Child[]} */
    const parts = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(s))) {
      if (m.index > last) parts.push(s.slice(last, m.index));
      parts.push(m[1] !== undefined ? el('code', {}, m[1]) : el('strong', {}, m[2]));
      last = re.lastIndex;
    }
    if (last < s.length) parts.push(s.slice(last));
    return parts;
  };
  while (i < lines.length) {
    // the plan's markdown is written for GitHub: drop its HTML comments and tags, keep their text
    const line = lines[i].replace(/<!--.*?-->/g, '').replace(/<\/?[a-zA-Z][^>]*>/g, '');
    if (line.trim() === '' && lines[i].trim() !== '') {
      i += 1;
      continue;
    }
    if (line.startsWith('```')) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].startsWith('```')) body.push(lines[i++]);
      i += 1;
      out.append(el('pre', { class: 'plan' }, body.join('\n')));
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      // `#` to `######` become h3 to h6: the page's own headings are h1 and h2
      const level = /** @type {'h3' | 'h4' | 'h5' | 'h6'} */ (`h${Math.min(6, h[1].length + 2)}`);
      out.append(el(level, {}, inline(h[2])));
      i += 1;
      continue;
    }
    if (/^\s*\|/.test(line)) {
      const rows = [];
      while (i < lines.length && /^\s*\|/.test(lines[i])) rows.push(lines[i++]);
      /** @param {string} r */
      const cells = (r) => r.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
      // a cell's leading number (`12000`, `+137.5`, `3000 (codex 250)`) reads as every number of the console does
      /** @param {string} c */
      const numeric = (c) => {
        const m = /^([+−-]?)(\d+(?:\.\d+)?)(\s.*)?$/.exec(c);
        return m ? `${m[1] === '-' ? '−' : m[1]}${number(m[2])}${m[3] || ''}` : c;
      };
      const body = rows.filter((r) => !/^\s*\|[\s:|-]+\|\s*$/.test(r));
      const [head, ...rest] = body;
      const heads = cells(head || '');
      /** @param {string[]} part */
      const table = (part) => tableWrap(heads.filter(Boolean).join(', ') || 'table', el('table', {},
        el('thead', {}, el('tr', {}, heads.map((c) => el('th', { scope: 'col' }, inline(c))))),
        el('tbody', {}, part.map((r) => el('tr', {}, cells(r).map((c) => el('td', {}, inline(numeric(c)))))))));
      out.append(table(rest.slice(0, cap)));
      if (rest.length > cap) out.append(lazyDetails(`${count(rest.length - cap)} more rows`, () => table(rest.slice(cap))));
      continue;
    }
    if (/^\s*[-*]\s+/.test(line)) {
      /** @type {string[]} */
      const items = [];
      while (i < lines.length && /^\s*[-*]\s+/.test(lines[i])) items.push(lines[i++].replace(/^\s*[-*]\s+/, ''));
      /** @param {string[]} part */
      const list = (part) => el('ul', {}, part.map((t) => el('li', {}, inline(t))));
      out.append(list(items.slice(0, cap)));
      if (items.length > cap) out.append(lazyDetails(`${count(items.length - cap)} more`, () => list(items.slice(cap))));
      continue;
    }
    if (line.trim() === '') {
      i += 1;
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() !== '' && !/^(#|```|\s*\||\s*[-*]\s)/.test(lines[i])) para.push(lines[i++]);
    if (para.length === 0) {
      para.push(lines[i]);
      i += 1;
    }
    out.append(el('p', {}, inline(para.join(' '))));
  }
  return out;
}
