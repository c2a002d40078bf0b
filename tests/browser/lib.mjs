// Shared by the console test and the page-load measurement: launching Debian's chromium,
// signing in through the console's login link, the API with a bearer token, exact credits.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

/** The value of a required environment variable; exits with a usage line when missing. */
export function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing environment variable ${name} (see tests/browser/README.md)`);
    process.exit(2);
  }
  return v;
}

/** Starts headless chromium: `BUDGIT_CHROMIUM`, else Debian's `/usr/bin/chromium`. */
export async function launch() {
  const executablePath = process.env.BUDGIT_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`no chromium at ${executablePath}: install Debian's package (apt-get install chromium) or set BUDGIT_CHROMIUM`);
    process.exit(2);
  }
  return chromium.launch({
    executablePath,
    // The machine has no network beyond loopback: background services would only time out.
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Calls the API with a bearer token; returns `{status, body}` with the body parsed when JSON. */
export async function api(base, token, method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, body: parsed };
}

/** Like `api`, but fails unless the answer is 2xx. */
export async function apiOk(base, token, method, path, body) {
  const r = await api(base, token, method, path, body);
  if (r.status < 200 || r.status > 299) {
    throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
  return r.body;
}

/** A decimal credits string ("12.5", "-3", "0.000001") as exact micro-credits. */
export function micros(text) {
  const s = String(text).trim();
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) throw new Error(`not a credits amount: ${JSON.stringify(text)}`);
  const v = BigInt(m[2]) * 1000000n + BigInt((m[3] || '').padEnd(6, '0'));
  return m[1] ? -v : v;
}

/** Signs a browser context in through the login link (`/console/login#token=...`). */
export async function signIn(context, base, token, landing) {
  const page = await context.newPage();
  await page.goto(`${base}/console/login#token=${encodeURIComponent(token)}`);
  await page.waitForURL((u) => u.pathname === landing, { timeout: 10000 });
  return page;
}

/**
 * Installs, before any page script runs, a recorder of when the gauges are first on
 * screen: `window.__budgit.gauges` = ms since navigation start at the first frame after
 * `#gauge-workspace` has its numbers, and `window.__budgit.seen[id]` = epoch ms at which
 * an activity event with that `data-id` was first in the DOM.
 */
export async function installRecorder(context) {
  await context.addInitScript(() => {
    const rec = { gauges: null, seen: {} };
    window.__budgit = rec;
    const scan = () => {
      const gauge = document.querySelector('#gauge-workspace');
      // the page ships the attributes empty; they are filled when the API answered
      if (rec.gauges === null && gauge && gauge.getAttribute('data-used') && gauge.getAttribute('data-exposure')) {
        rec.gauges = -1;
        requestAnimationFrame(() => {
          rec.gauges = performance.now();
        });
      }
      for (const el of document.querySelectorAll('#activity .event[data-id]')) {
        const id = el.getAttribute('data-id');
        if (!(id in rec.seen)) rec.seen[id] = Date.now();
      }
    };
    new MutationObserver(scan).observe(document, { subtree: true, childList: true, attributes: true });
  });
}

/** Waits until the recorder saw the gauges rendered; returns ms since navigation start. */
export async function gaugesRendered(page, timeout = 15000) {
  const h = await page.waitForFunction(() => window.__budgit && window.__budgit.gauges > 0 && window.__budgit.gauges, null, {
    timeout,
  });
  return h.jsonValue();
}

/**
 * Waits until an activity row for the event was in the DOM; returns the epoch ms it
 * appeared. A row's `data-id` is the event's id or its stream sequence number (`seq`).
 */
export async function eventSeen(page, { id, seq }, timeout = 5000) {
  const keys = [id, String(seq)];
  const h = await page.waitForFunction((keys) => window.__budgit && keys.map((k) => window.__budgit.seen[k]).find(Boolean), keys, {
    timeout,
    polling: 50,
  });
  return h.jsonValue();
}

/**
 * Posts one usage event stamped now (or `secondsAgo` before now); returns `{id, seq, t0}`: the stream sequence
 * number the service gave it and the epoch ms just before the request left.
 */
export async function ingest(base, adminToken, id, user, product, model, credits, secondsAgo = 0) {
  const t0 = Date.now();
  const r = await apiOk(base, adminToken, 'POST', '/v1/usage/events', {
    id,
    time: new Date(t0 - secondsAgo * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
    user,
    product,
    model,
    credits,
  });
  if (r.accepted !== 1) throw new Error(`event ${id} was not accepted: ${JSON.stringify(r)}`);
  return { id, seq: r.results[0].seq, t0 };
}

/** Every commit reachable from any ref of the repository. */
export function allCommits(repo) {
  return new Set(git(repo, ['log', '--all', '--format=%H']).split('\n').filter(Boolean));
}

/** Runs git in `repo`; returns trimmed stdout. */
export function git(repo, args) {
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Median and 95th percentile (nearest rank) of a list of numbers. */
export function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const rank = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { n: v.length, min: v[0], median, p95: rank(95), max: v[v.length - 1] };
}

/**
 * Starts `budgit serve --demo` (binary `bin`, extra `args`) and resolves once it printed
 * an admin and a user login link; `{child, base, admin, user, repo, lines}`.
 */
export function startDemo(bin, args, { cwd, env: extra = {}, timeoutMs = 600000 } = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NO_COLOR: '1', ...extra };
    delete env.BUDGIT_ADMIN_TOKEN;
    const child = spawn(bin, ['serve', '--demo', ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const got = { child, base: null, admin: null, user: null, repo: null, lines: [] };
    const timer = setTimeout(() => {
      // still seeding: it may not listen for SIGTERM yet
      child.kill('SIGKILL');
      reject(new Error(`the demo printed no login links within ${timeoutMs} ms:\n${got.lines.join('\n')}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code}):\n${got.lines.join('\n')}`));
    });
    const read = (line) => {
      got.lines.push(line);
      const lower = line.toLowerCase();
      for (let word of line.split(/\s+/)) {
        word = word.replace(/^[`'"(<]+|[`'"()>,]+$/g, '');
        const at = word.indexOf('/console/login#token=');
        if (at > 0) {
          got.base ??= word.slice(0, at);
          const token = word.slice(at + '/console/login#token='.length);
          if (lower.includes('admin') || (got.admin === null && !lower.includes('user'))) got.admin ??= token;
          else got.user ??= token;
        } else if (lower.includes('repo') && word.startsWith('/')) {
          got.repo ??= word.replace(/[.:;]+$/, '');
        }
      }
      if (got.base && got.admin && got.user) {
        clearTimeout(timer);
        resolve(got);
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          read(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
  });
}
