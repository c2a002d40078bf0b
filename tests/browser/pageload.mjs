// Page-load and live-activity latency of the admin console, measured in headless chromium.
//
//   node tests/browser/pageload.mjs [--users 100000] [--runs 20] [--events 20]
//
// Without BUDGIT_URL it starts `budgit serve --demo --users N` itself (binary BUDGIT_BIN,
// default target/release/budgit; a temporary database and repository) and stops it at
// the end. With BUDGIT_URL and BUDGIT_ADMIN_TOKEN it measures that server instead.
//
// Page load: navigation start to the first frame after `#gauge-workspace` carries its
// numbers (the data arrive from the API after the page itself), once per fresh browser
// context (empty cache: "cold") and once per reload in one context ("warm").
// Activity: an event posted to /v1/usage/events until its row is in `#activity`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { apiOk, eventSeen, gaugesRendered, ingest, installRecorder, launch, startDemo, stats } from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    users: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '20' },
    events: { type: 'string', default: '20' },
    // seeding 100k users and a month of their usage takes minutes
    'start-timeout': { type: 'string', default: '1800' },
  },
});
const RUNS = Number(opts.runs);
const EVENTS = Number(opts.events);
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

let demo = null;
let scratch = null;
let base = process.env.BUDGIT_URL;
let admin = process.env.BUDGIT_ADMIN_TOKEN;
if (!base) {
  const bin = process.env.BUDGIT_BIN || join(root, 'target/release/budgit');
  scratch = mkdtempSync(join(tmpdir(), 'budgit-pageload-'));
  const t0 = performance.now();
  demo = await startDemo(bin, ['--users', opts.users, '--listen', '127.0.0.1:0', '--db', join(scratch, 'budgit.db')], {
    cwd: root,
    env: { TMPDIR: scratch },
    timeoutMs: Number(opts['start-timeout']) * 1000,
  });
  console.log(`demo with ${opts.users} users ready in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${demo.base}`);
  base = demo.base;
  admin = demo.admin;
}
base = base.replace(/\/$/, '');

function stop() {
  if (demo) demo.child.kill('SIGKILL');
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

try {
  const summary = await apiOk(base, admin, 'GET', '/v1/dashboard/summary');
  console.log(`workspace: ${summary.workspace.users} users, ${summary.teams.length} teams, used ${summary.workspace.used} of ${summary.workspace.exposure}`);

  // The API calls behind the first paint, timed on their own (median of RUNS).
  for (const path of ['/v1/dashboard/summary', '/v1/dashboard/users?sort=used&order=desc&limit=50', '/v1/dashboard/trends?by=product']) {
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await apiOk(base, admin, 'GET', path);
      times.push(performance.now() - t);
    }
    const s = stats(times);
    console.log(`GET ${path}: median ${s.median.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms`);
  }

  const browser = await launch();
  // a session as the login page opens one: the cookie holds a session id, never the token
  const signIn = await fetch(`${base}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-budgit-console': '1' },
    body: JSON.stringify({ token: admin }),
  });
  const session = /budgit_session=([^;]+)/.exec(signIn.headers.get('set-cookie') || '');
  if (signIn.status !== 200 || !session) throw new Error(`signing in answered ${signIn.status}`);
  const cookie = { name: 'budgit_session', value: session[1], url: base, httpOnly: true, sameSite: 'Strict' };

  // Where a load's time goes: the document, then the API calls the page makes.
  const phases = {};
  const timing = async (page) => {
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const out = { 'document (DOMContentLoaded)': nav.domContentLoadedEventEnd };
      for (const r of performance.getEntriesByType('resource')) {
        const u = new URL(r.name);
        if (u.pathname.startsWith('/v1/')) out[`${u.pathname} (start → end)`] = [r.startTime, r.responseEnd];
      }
      return out;
    });
    for (const [k, v] of Object.entries(t)) (phases[k] ||= []).push(v);
  };

  const cold = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addCookies([cookie]);
    await installRecorder(context);
    const page = await context.newPage();
    await page.goto(`${base}/console/`);
    cold.push(await gaugesRendered(page));
    await timing(page);
    await context.close();
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addCookies([cookie]);
  await installRecorder(context);
  const page = await context.newPage();
  const warm = [];
  await page.goto(`${base}/console/`);
  await gaugesRendered(page);
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${base}/console/`);
    warm.push(await gaugesRendered(page));
  }

  const user = (await apiOk(base, admin, 'GET', '/v1/dashboard/users?sort=used&order=asc&limit=1')).data[0].user;
  await page.locator('#activity').waitFor();
  const stamp = Date.now().toString(36);
  const latency = [];
  for (let i = 0; i < EVENTS; i++) {
    const id = `pageload-${stamp}-${i}`;
    const event = await ingest(base, admin, id, user, i % 2 ? 'codex' : 'chatgpt', i % 2 ? 'gpt-5-codex' : 'gpt-5', '0.01');
    latency.push((await eventSeen(page, event, 10000)) - event.t0);
  }
  await browser.close();

  const line = (name, s) =>
    console.log(`${name}: median ${s.median.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} (n=${s.n})`);
  line('page load, cold (navigation to gauges rendered)', stats(cold));
  line('page load, warm (navigation to gauges rendered)', stats(warm));
  line('activity, ingest to visible', stats(latency));
  console.log('cold loads, median ms since navigation start:');
  for (const [k, v] of Object.entries(phases)) {
    if (typeof v[0] === 'number') console.log(`  ${k}: ${stats(v).median.toFixed(0)}`);
    else console.log(`  ${k}: ${stats(v.map((x) => x[0])).median.toFixed(0)} → ${stats(v.map((x) => x[1])).median.toFixed(0)}`);
  }
} finally {
  stop();
}
