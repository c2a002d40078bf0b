// Shared helpers of the console's pages: API calls, DOM building, number formats, gauges.
//
// Every request goes to this origin with the session cookie; writes carry the
// `X-Budgit-Console: 1` header the server requires of cookie sessions. DOM is
// built with text nodes only (never innerHTML), so no value from the API can
// inject markup.

/** An API failure: HTTP status, the API's error code and message. */
export class ApiFailure extends Error {
  constructor(method, path, status, code, message) {
    super(message);
    this.method = method;
    this.path = path;
    this.status = status;
    this.code = code;
  }
}

/**
 * Parses API JSON. Credits are exact decimal JSON numbers; a number a JavaScript
 * double cannot hold exactly (`9007199254.740993`) is kept as its decimal text, so
 * sums in micro-credits (and what is shown) stay exact.
 */
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    const source = context && context.source;
    const plain = typeof source === 'string' && /^-?\d+(\.\d+)?$/.test(source);
    return typeof value === 'number' && plain && String(value) !== source ? source : value;
  });
}

/** Calls the API; resolves to the JSON body (or null for 204), rejects with ApiFailure. */
export async function api(path, { method = 'GET', body, redirectOn401 = true } = {}) {
  const headers = { Accept: 'application/json', 'X-Budgit-Console': '1' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
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
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const err = data && data.error ? data.error : {};
    const failure = new ApiFailure(
      method, path, response.status, err.code || `http/${response.status}`,
      err.message || `the server answered ${response.status}`,
    );
    failure.body = data;
    throw failure;
  }
  return data;
}

/** Builds an element: el('a', {href: '/x', class: 'y'}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** An SVG element (gauges). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const wholeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** Formats a credit amount (an exact JSON number, or its decimal text) for reading; the exact value stays in the data. */
export function credits(value) {
  if (value === null || value === undefined || value === '') return '—';
  const n = Number(value);
  return Number.isFinite(n) ? numberFormat.format(n) : String(value);
}

/** A count. */
export function count(n) {
  return n === null || n === undefined ? '—' : wholeFormat.format(n);
}

/** A percentage (a number from the API) with one decimal. */
export function percent(p) {
  if (p === null || p === undefined || !Number.isFinite(Number(p))) return '—';
  return `${Number(p).toFixed(1)}%`;
}

/** A short commit id. */
export function shortCommit(c) {
  return c ? String(c).slice(0, 10) : '—';
}

/** A time for reading, in the browser's zone. */
export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** A time of day (activity rows). */
export function clock(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

/** How long ago, in words. */
export function ago(t, now = Date.now()) {
  const s = Math.round((now - new Date(t).getTime()) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** A date (YYYY-MM-DD, or RFC 3339 read in `timeZone` when given) as a short day. */
export function day(t, timeZone) {
  if (!t) return '—';
  const plain = String(t).length === 10;
  const d = new Date(plain ? `${t}T00:00:00Z` : t);
  if (Number.isNaN(d.getTime())) return String(t);
  const opts = { month: 'short', day: 'numeric', year: 'numeric' };
  try {
    return d.toLocaleDateString([], { ...opts, timeZone: plain ? 'UTC' : timeZone });
  } catch (e) {
    return d.toLocaleDateString([], opts);
  }
}

/** A period as "Nov 1, 2026 – Nov 30, 2026" in its own time zone (the end is exclusive). */
export function periodText(period) {
  const last = new Date(new Date(period.end).getTime() - 1000).toISOString();
  return `${day(period.start, period.timezone)} – ${day(last, period.timezone)}`;
}

const STATUS_TEXT = { ok: 'OK', warning: 'Warning', exceeded: 'Exceeded', unlimited: 'No limit' };
const STATUS_MARK = { ok: '✓', warning: '!', exceeded: '✕', unlimited: '–' };

/** A status badge: colour, symbol and word. */
export function statusBadge(status) {
  const s = STATUS_TEXT[status] ? status : 'unknown';
  return el('span', { class: `status ${s}` }, el('span', { 'aria-hidden': 'true' }, STATUS_MARK[s] || '?'), STATUS_TEXT[s] || String(status || 'unknown'));
}

/** A horizontal meter (team and user gauges). */
export function meter(percentValue, status, label) {
  const p = Math.max(0, Math.min(100, Number(percentValue) || 0));
  const bar = el('span');
  bar.style.width = `${p}%`;
  return el('div', {
    class: `meter ${status || ''}`, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': p.toFixed(1), 'aria-label': label,
  }, bar);
}

/** A semicircular gauge of `used` against `total` (SVG), with the figures as text below. */
export function gauge(node, { used, total, percentValue, status, caption, totalLabel }) {
  const p = Math.max(0, Math.min(100, Number(percentValue) || 0));
  const r = 80;
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

/** Shows an API failure inline, in place of a section's content. */
export function showError(node, err, what) {
  const box = errorBox(err, what);
  fill(node, box);
  return box;
}

/** An inline error message for an API failure. */
export function errorBox(err, what) {
  const f = err instanceof ApiFailure ? err : new ApiFailure('GET', '', 0, 'client', String(err && err.message ? err.message : err));
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

/** Wires the sign-out button. */
export function signOutButton(button) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api('/console/session', { method: 'DELETE', redirectOn401: false });
    } catch (e) {
      // signing out cannot fail in a way worth keeping the visitor here
    }
    location.assign('/console/login');
  });
}

/** Runs `work` every `ms` while the page is visible (hidden tabs make no requests). */
export function every(ms, work) {
  const tick = async () => {
    if (!document.hidden) await work().catch(() => {});
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

/** A debounced function. */
export function debounce(fn, ms = 250) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Renders minimal markdown (headings, lists, tables, code) as elements; everything else as text. */
export function markdown(text) {
  const out = el('div', { class: 'markdown' });
  const lines = String(text || '').split('\n');
  let i = 0;
  const inline = (raw) => {
    const s = raw.replace(/<!--.*?-->/g, '').replace(/<\/?[a-zA-Z][^>]*>/g, '');
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
      out.append(el(`h${Math.min(6, h[1].length + 2)}`, {}, inline(h[2])));
      i += 1;
      continue;
    }
    if (/^\s*\|/.test(line)) {
      const rows = [];
      while (i < lines.length && /^\s*\|/.test(lines[i])) rows.push(lines[i++]);
      const cells = (r) => r.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
      const body = rows.filter((r) => !/^\s*\|[\s:|-]+\|\s*$/.test(r));
      const [head, ...rest] = body;
      out.append(el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, cells(head || '').map((c) => el('th', { scope: 'col' }, inline(c))))),
        el('tbody', {}, rest.map((r) => el('tr', {}, cells(r).map((c) => el('td', {}, inline(c)))))))));
      continue;
    }
    if (/^\s*[-*]\s+/.test(line)) {
      const items = [];
      while (i < lines.length && /^\s*[-*]\s+/.test(lines[i])) items.push(lines[i++].replace(/^\s*[-*]\s+/, ''));
      out.append(el('ul', {}, items.map((t) => el('li', {}, inline(t)))));
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
