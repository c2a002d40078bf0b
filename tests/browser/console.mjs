// The admin console in a real headless chromium, against a running `budgit serve --demo`.
//
// Environment: BUDGIT_URL (http://host:port), BUDGIT_ADMIN_TOKEN, BUDGIT_USER_TOKEN,
// BUDGIT_REPO (the demo's policy repository); optional BUDGIT_CHROMIUM (default
// /usr/bin/chromium) and BUDGIT_SCREENSHOTS=1 to write docs/screenshots/*.png.
// Every check runs even when an earlier one failed; the run ends with
// "N passed, N failed" and exits 1 when any failed.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  allCommits,
  api,
  apiOk,
  env,
  eventSeen,
  gaugesRendered,
  git,
  ingest,
  installRecorder,
  launch,
  micros,
  signIn,
} from './lib.mjs';

const BASE = env('BUDGIT_URL').replace(/\/$/, '');
const ADMIN = env('BUDGIT_ADMIN_TOKEN');
const USER = env('BUDGIT_USER_TOKEN');
const REPO = env('BUDGIT_REPO');
const SHOTS = process.env.BUDGIT_SCREENSHOTS === '1';
const SHOT_DIR = process.env.BUDGIT_SCREENSHOT_DIR || join(dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');
const STAMP = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

const results = [];
const pageErrors = [];

/** Runs one named check; a failure is recorded and printed, and the run goes on. */
async function check(name, fn) {
  const t0 = performance.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${Math.round(performance.now() - t0)} ms)\n     ${String(e && e.stack ? e.stack : e).replace(/\n/g, '\n     ')}`);
  }
}

/** A new browser context whose page errors are collected for the final check. */
async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  await installRecorder(context);
  context.on('page', (page) => {
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      // A refused fetch the test makes on purpose logs "Failed to load resource": not a script error.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(`${page.url()}: console error: ${m.text()}`);
    });
  });
  return context;
}

/** Fails when the page is wider than its viewport (content that scrolls sideways). */
async function assertNoHorizontalOverflow(page) {
  const { scroll, inner, culprits } = await page.evaluate(() => {
    const inner = window.innerWidth;
    const culprits = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right > inner + 1 && r.width > 0) {
        culprits.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''} right=${Math.round(r.right)}`);
      }
    }
    return { scroll: document.documentElement.scrollWidth, inner, culprits: culprits.slice(0, 8) };
  });
  assert.ok(scroll <= inner + 1, `page is ${scroll}px wide in a ${inner}px viewport; widest: ${culprits.join(', ')}`);
}

/** Every form control on the page has an accessible name (a label, aria-label or aria-labelledby). */
async function assertLabelled(page, scope) {
  const unlabelled = await page.evaluate((scope) => {
    const out = [];
    for (const el of document.querySelectorAll(`${scope} input, ${scope} select, ${scope} textarea`)) {
      if (el.type === 'hidden' || el.type === 'submit' || el.type === 'button') continue;
      const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title;
      if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  }, scope);
  assert.deepEqual(unlabelled, [], `form controls without a label in ${scope}`);
}

async function screenshot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOT_DIR, { recursive: true });
  // Settle fonts and one frame so the picture shows what a person would see.
  await page.evaluate(() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))));
  await page.screenshot({ path: join(SHOT_DIR, name) });
  console.log(`     wrote ${join(SHOT_DIR, name)}`);
}

/** Submits a form by pressing its submit button (as a person would). */
async function submit(page, formSelector) {
  const button = page.locator(`${formSelector} button[type=submit], ${formSelector} input[type=submit], ${formSelector} button:not([type])`).first();
  await button.click();
}

/** Fills a named control of a form, whatever its kind (select, input, textarea). */
async function fill(page, formSelector, name, value) {
  const control = page.locator(`${formSelector} [name="${name}"]`).first();
  const tag = await control.evaluate((el) => el.tagName.toLowerCase());
  if (tag === 'select') await control.selectOption(String(value));
  else await control.fill(String(value));
}

const browser = await launch();
const admin = await newContext(browser);
const anonymous = await newContext(browser);
const userCtx = await newContext(browser);
let adminPage = null;
let userEmail = null;

await check('the login link signs the admin in and lands on /console/', async () => {
  adminPage = await signIn(admin, BASE, ADMIN, '/console/');
});

await check('the workspace gauge shows the numbers /v1/dashboard/summary reports', async () => {
  assert.ok(adminPage, 'no admin page');
  // Usage only grows while the demo runs: the gauge must lie between the API's answers
  // before and after the page loaded; exposure (the sum of limits) does not move.
  const before = await apiOk(BASE, ADMIN, 'GET', '/v1/dashboard/summary');
  await adminPage.reload();
  await gaugesRendered(adminPage);
  const gauge = adminPage.locator('#gauge-workspace');
  const used = micros(await gauge.getAttribute('data-used'));
  const exposure = micros(await gauge.getAttribute('data-exposure'));
  const after = await apiOk(BASE, ADMIN, 'GET', '/v1/dashboard/summary');
  assert.ok(
    micros(before.workspace.used) <= used && used <= micros(after.workspace.used),
    `gauge used ${used} micro-credits, API said ${before.workspace.used} before and ${after.workspace.used} after`,
  );
  assert.equal(exposure, micros(after.workspace.exposure), 'gauge exposure differs from the API');
  assert.ok(micros(after.workspace.exposure) > 0n, 'the demo workspace has no exposure');
  assert.match(await gauge.innerText(), /\d/, 'the workspace gauge shows no number');
  const groups = await adminPage.locator('.gauge-team[data-group]').evaluateAll((els) => els.map((e) => e.getAttribute('data-group')));
  assert.deepEqual([...groups].sort(), after.teams.map((t) => t.group).sort(), 'one team gauge per team of the summary');
});

let activityUser = null;
await check('a new usage event appears in #activity within 5 s of ingest', async () => {
  assert.ok(adminPage, 'no admin page');
  const me = await apiOk(BASE, USER, 'GET', '/v1/me');
  activityUser = me.user;
  await adminPage.locator('#activity').waitFor();
  const id = `browser-${STAMP}-live`;
  const t0 = await ingest(BASE, ADMIN, id, activityUser, 'codex', 'gpt-5-codex', '0.25');
  const seen = await eventSeen(adminPage, id, 5000);
  const row = adminPage.locator(`#activity .event[data-id="${id}"]`);
  await row.waitFor({ state: 'visible', timeout: 5000 });
  const text = await row.innerText();
  assert.ok(text.includes(activityUser) || text.includes(activityUser.split('@')[0]), `the event row does not name its user: ${text}`);
  console.log(`     ingest to visible: ${seen - t0} ms`);
});

await check('the propose form is reachable with the keyboard (Tab)', async () => {
  assert.ok(adminPage, 'no admin page');
  await adminPage.reload();
  await adminPage.locator('#propose-form').waitFor();
  await adminPage.evaluate(() => {
    document.activeElement && document.activeElement.blur && document.activeElement.blur();
    window.scrollTo(0, 0);
  });
  let reached = false;
  for (let i = 0; i < 600 && !reached; i++) {
    await adminPage.keyboard.press('Tab');
    reached = await adminPage.evaluate(() => !!(document.activeElement && document.activeElement.closest('#propose-form')));
  }
  assert.ok(reached, '600 presses of Tab never focused a control of #propose-form');
  await assertLabelled(adminPage, '#propose-form');
});

await check('proposing a limit change commits a branch in the policy repository and shows it', async () => {
  assert.ok(adminPage, 'no admin page');
  const groups = (await apiOk(BASE, ADMIN, 'GET', '/v1/groups')).data;
  const group = groups.find((g) => g.limit && g.limit.credits != null);
  assert.ok(group, `no group with a credits limit in /v1/groups: ${JSON.stringify(groups).slice(0, 300)}`);
  const credits = (micros(group.limit.credits) / 1000000n + 137n).toString();
  const before = allCommits(REPO);
  const approved = git(REPO, ['rev-parse', 'HEAD']);
  await fill(adminPage, '#propose-form', 'group', group.name);
  await fill(adminPage, '#propose-form', 'credits', credits);
  await fill(adminPage, '#propose-form', 'reason', `Browser test ${STAMP}: more room for ${group.name}`);
  await submit(adminPage, '#propose-form');
  const result = adminPage.locator('#proposal-result');
  await adminPage.waitForFunction(() => /budgit\/proposal\//.test(document.querySelector('#proposal-result')?.innerText || ''), null, {
    timeout: 15000,
  });
  const text = await result.innerText();
  const fresh = [...allCommits(REPO)].filter((c) => !before.has(c));
  assert.equal(fresh.length, 1, `expected one new commit in ${REPO}, found ${fresh.length}`);
  const commit = fresh[0];
  const shown = (text.match(/\b[0-9a-f]{7,40}\b/g) || []).filter((h) => commit.startsWith(h));
  assert.ok(shown.length > 0, `#proposal-result does not show the new commit ${commit}: ${text}`);
  const branch = text.match(/budgit\/proposal\/[A-Za-z0-9._-]+/)[0];
  assert.equal(git(REPO, ['rev-parse', `refs/heads/${branch}`]), commit, `branch ${branch} does not point at the new commit`);
  assert.match(git(REPO, ['show', '--format=', commit]), new RegExp(`^\\+.*credits: ${credits}\\b`, 'm'), 'the commit does not set the new credits');
  assert.equal(git(REPO, ['rev-parse', 'HEAD']), approved, 'the approved branch moved: a proposal must stay on its own branch');
});

await check('a user session cannot open the admin view or admin data', async () => {
  const page = await signIn(userCtx, BASE, USER, '/console/me');
  const r = await page.goto(`${BASE}/console/`);
  const path = new URL(page.url()).pathname;
  assert.ok(path !== '/console/' || r.status() === 403, `a user session got the admin view (${r.status()} at ${page.url()})`);
  assert.equal(await page.locator('#gauge-workspace').count(), 0, 'the admin gauge is on a user page');
  const viaCookie = await page.evaluate(async () => (await fetch('/v1/dashboard/summary')).status);
  assert.equal(viaCookie, 403, 'a user session cookie read /v1/dashboard/summary');
  const viaBearer = await api(BASE, USER, 'GET', '/v1/dashboard/summary');
  assert.equal(viaBearer.status, 403, 'a user token read /v1/dashboard/summary');
  await page.close();
});

await check('without a session /console/ leads to the login page', async () => {
  const page = await anonymous.newPage();
  await page.goto(`${BASE}/console/`);
  assert.equal(new URL(page.url()).pathname, '/console/login');
  const r = await api(BASE, '', 'GET', '/v1/dashboard/summary');
  assert.equal(r.status, 401, 'no token must answer 401');
  await page.close();
});

await check('a cookie session cannot write without the console header (CSRF guard)', async () => {
  const page = await userCtx.newPage();
  await page.goto(`${BASE}/console/me`);
  const status = await page.evaluate(async () => {
    const r = await fetch('/v1/requests', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ credits: '1', days: 1, reason: 'forged' }),
    });
    return r.status;
  });
  assert.equal(status, 403, 'a cookie-authenticated POST without X-Budgit-Console was accepted');
  await page.close();
});

let requestReason = null;
await check('a user submits a credit request from #request-form and sees it in #my-requests', async () => {
  const page = await userCtx.newPage();
  await page.goto(`${BASE}/console/me`);
  await page.locator('#request-form').waitFor();
  await assertLabelled(page, '#request-form');
  const me = await apiOk(BASE, USER, 'GET', '/v1/me');
  userEmail = me.user;
  requestReason = `Browser test ${STAMP}: load testing the billing service`;
  await fill(page, '#request-form', 'credits', '750');
  await fill(page, '#request-form', 'days', '7');
  await fill(page, '#request-form', 'reason', requestReason);
  await submit(page, '#request-form');
  await page.locator('#my-requests', { hasText: requestReason }).waitFor({ timeout: 10000 });
  const mine = await apiOk(BASE, USER, 'GET', '/v1/requests');
  const stored = mine.data.find((r) => r.reason === requestReason);
  assert.ok(stored, 'the request is not in /v1/requests');
  assert.equal(stored.user, userEmail);
  assert.equal(micros(stored.credits), 750000000n);
  await screenshotUser(page);
  await page.close();
});

async function screenshotUser(page) {
  await gaugesOrMine(page);
  await screenshot(page, 'console-user.png');
}

/** The user view is drawn when its own numbers are in (it has no workspace gauge). */
async function gaugesOrMine(page) {
  await page.waitForFunction(() => !!document.querySelector('#my-requests') && document.body.innerText.length > 200, null, { timeout: 10000 });
}

await check('the admin sees the user request in #requests', async () => {
  assert.ok(adminPage && requestReason, 'needs the admin page and the request');
  await adminPage.reload();
  await adminPage.locator('#requests', { hasText: requestReason }).waitFor({ timeout: 10000 });
  const row = adminPage.locator('#requests', { hasText: requestReason });
  assert.match(await row.innerText(), new RegExp(userEmail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the request does not name its user');
});

await check('the admin view shows users, groups and reconciler status', async () => {
  assert.ok(adminPage, 'no admin page');
  await adminPage.locator('#users-table tbody tr').first().waitFor({ timeout: 10000 });
  const groups = (await apiOk(BASE, ADMIN, 'GET', '/v1/groups')).data;
  const groupsText = await adminPage.locator('#groups').innerText();
  for (const g of groups) assert.ok(groupsText.includes(g.name), `#groups does not list ${g.name}`);
  await adminPage.locator('#reconciler').waitFor();
  assert.match(await adminPage.locator('#reconciler').innerText(), /\S/, '#reconciler is empty');
  await screenshot(adminPage, 'console-admin.png');
});

await check('no horizontal overflow at 390 px (admin and user views)', async () => {
  const mobileAdmin = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await signIn(mobileAdmin, BASE, ADMIN, '/console/');
  await gaugesRendered(page);
  await assertNoHorizontalOverflow(page);
  await screenshot(page, 'console-mobile.png');
  await mobileAdmin.close();
  const mobileUser = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const userPage = await signIn(mobileUser, BASE, USER, '/console/me');
  await gaugesOrMine(userPage);
  await assertNoHorizontalOverflow(userPage);
  await mobileUser.close();
});

await check('no script errors on any page', async () => {
  assert.deepEqual(pageErrors, []);
});

await browser.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
