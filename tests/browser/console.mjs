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
import { teamChecks } from './teams.mjs';
import { overridesChecks } from './overrides.mjs';
import { runawayChecks } from './runaway.mjs';
import { polishChecks } from './polish.mjs';
import { valueChecks } from './value.mjs';
import { timeChecks } from './time.mjs';

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

/** Calls `fn` every 100 ms until it returns something truthy; fails with `what` after `timeout` ms. */
async function poll(fn, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} (waited ${timeout} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
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

// First, so the pictures show the demo as a newcomer finds it.
if (SHOTS) {
  await check('screenshots of the main views', async () => {
    const shoot = async (token, landing, name, options, prepare) => {
      const context = await newContext(browser, options);
      const page = await signIn(context, BASE, token, landing);
      if (landing === '/console/') await gaugesRendered(page);
      else await gaugesOrMine(page);
      if (prepare) await prepare(page);
      else await page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(page, name);
      await context.close();
    };
    await shoot(ADMIN, '/console/', 'console-admin.png', {}, async (page) => {
      // the trend chart and a few live events drawn
      await page.locator('#trend-chart canvas, #trend-chart svg').first().waitFor({ timeout: 10000 });
      await page.locator('#users-table tbody tr').first().waitFor({ timeout: 10000 });
      await page.evaluate(() => window.scrollTo(0, 0));
    });
    await shoot(ADMIN, '/console/', 'console-activity.png', {}, async (page) => {
      await page.locator('#activity .event').nth(4).waitFor({ timeout: 20000 });
      await page.locator('#live').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    });
    await shoot(ADMIN, '/console/', 'console-proposal.png', {}, async (page) => {
      // a proposal and its plan, as an admin sees it after "Propose change"
      await page.locator('#propose-form [name="group"] option[value="engineering"]').waitFor({ state: 'attached', timeout: 10000 });
      await fill(page, '#propose-form', 'group', 'engineering');
      await fill(page, '#propose-form', 'credits', '12000');
      await fill(page, '#propose-form', 'reason', 'Codex rollout to the payments team (ENG-2841)');
      await submit(page, '#propose-form');
      await page.locator('#proposal-result', { hasText: 'budgit/proposal/' }).waitFor({ timeout: 15000 });
      await page.locator('#propose-form').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    });
    await shoot(USER, '/console/me', 'console-user.png', {});
    await shoot(ADMIN, '/console/', 'console-mobile.png', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  });
}

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
  const event = await ingest(BASE, ADMIN, id, activityUser, 'codex', 'gpt-5-codex', '0.25');
  const seen = await eventSeen(adminPage, event, 5000);
  const row = adminPage.locator(`#activity .event[data-id="${id}"], #activity .event[data-id="${event.seq}"]`);
  await row.waitFor({ state: 'visible', timeout: 5000 });
  const text = await row.innerText();
  assert.ok(text.includes(activityUser) || text.includes(activityUser.split('@')[0]), `the event row does not name its user: ${text}`);
  assert.match(text, /0\.25/, `the event row does not show its credits: ${text}`);
  console.log(`     ingest to visible: ${seen - event.t0} ms`);
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

await check('adding a model cap in the propose form commits it on a new branch', async () => {
  assert.ok(adminPage, 'no admin page');
  const groups = (await apiOk(BASE, ADMIN, 'GET', '/v1/groups')).data;
  const group = groups.find((g) => g.limit && g.limit.credits != null);
  assert.ok(group, 'no group with a limit in /v1/groups');
  const name = `gpt-browser-${STAMP}`;
  const before = allCommits(REPO);
  const approved = git(REPO, ['rev-parse', 'HEAD']);
  // a fresh form: the values of the approved revision, no earlier result
  await adminPage.reload();
  await adminPage.locator(`#propose-form [name="group"] option[value="${group.name}"]`).waitFor({ state: 'attached', timeout: 10000 });
  await fill(adminPage, '#propose-form', 'group', group.name);
  await fill(adminPage, '#propose-form', 'cap_kind', 'models');
  await fill(adminPage, '#propose-form', 'cap_name', name);
  await fill(adminPage, '#propose-form', 'cap_credits', '7');
  await adminPage.locator('#cap-add').click();
  await adminPage.locator(`#propose-caps li[data-state="new"][data-name="${name}"]`).waitFor({ timeout: 5000 });
  await assertLabelled(adminPage, '#propose-form');
  await fill(adminPage, '#propose-form', 'reason', `Browser test ${STAMP}: cap a model for ${group.name}`);
  await submit(adminPage, '#propose-form');
  await adminPage.waitForFunction(() => /budgit\/proposal\//.test(document.querySelector('#proposal-result')?.innerText || ''), null, {
    timeout: 15000,
  });
  const fresh = [...allCommits(REPO)].filter((c) => !before.has(c));
  assert.equal(fresh.length, 1, `expected one new commit in ${REPO}, found ${fresh.length}`);
  const diff = git(REPO, ['show', '--format=', fresh[0]]);
  assert.match(diff, new RegExp(`^\\+.*\\b${name}: 7\\b`, 'm'), `the commit does not add the cap on ${name}: ${diff}`);
  assert.doesNotMatch(diff, /^-.*\bcredits: /m, 'the commit changed a credits value it was not asked to');
  assert.equal(git(REPO, ['rev-parse', 'HEAD']), approved, 'the approved branch moved');
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
  // "For" offers the total and the products the user has used or is capped on
  await page.waitForFunction(() => document.querySelectorAll('#request-for option').length > 1, null, { timeout: 10000 });
  const product = await page.locator('#request-for option[value^="product:"]').first().getAttribute('value');
  await fill(page, '#request-form', 'for', product);
  await submit(page, '#request-form');
  await page.locator('#my-requests', { hasText: requestReason }).waitFor({ timeout: 10000 });
  const mine = await apiOk(BASE, USER, 'GET', '/v1/requests');
  const stored = mine.data.find((r) => r.reason === requestReason);
  assert.ok(stored, 'the request is not in /v1/requests');
  assert.equal(stored.user, userEmail);
  assert.equal(micros(stored.credits), 750000000n);
  assert.equal(stored.product, product.slice('product:'.length), 'the request does not name the product chosen');
  assert.equal(stored.model, null);
  await page.close();
});

/** The user view is drawn when its gauge has the user's numbers. */
async function gaugesOrMine(page) {
  await page.waitForFunction(() => document.querySelector('#gauge-me')?.getAttribute('data-used'), null, { timeout: 10000 });
}

await check("the user view's gauge shows the user's numbers from /v1/me", async () => {
  const page = await userCtx.newPage();
  const before = await apiOk(BASE, USER, 'GET', '/v1/me');
  await page.goto(`${BASE}/console/me`);
  await gaugesOrMine(page);
  const gauge = page.locator('#gauge-me');
  const used = micros(await gauge.getAttribute('data-used'));
  const after = await apiOk(BASE, USER, 'GET', '/v1/me');
  assert.ok(micros(before.used) <= used && used <= micros(after.used), `gauge used ${used}, /v1/me said ${before.used} then ${after.used}`);
  assert.equal(micros(await gauge.getAttribute('data-limit')), micros(after.limit), 'gauge limit differs from /v1/me');
  assert.match(await page.locator('#whoami').innerText(), new RegExp(after.user.replace(/[.]/g, '\\.')), 'the page does not say who is signed in');
  await page.close();
});

await check('the admin sees the user request in #requests and turns it into an override proposal with one click', async () => {
  assert.ok(adminPage && requestReason, 'needs the admin page and the request');
  await adminPage.reload();
  const card = adminPage.locator('#requests [data-id]', { hasText: requestReason });
  await card.waitFor({ timeout: 10000 });
  assert.match(await card.innerText(), new RegExp(userEmail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the request does not name its user');
  const id = await card.getAttribute('data-id');
  const before = allCommits(REPO);
  const approved = git(REPO, ['rev-parse', 'HEAD']);
  await card.getByRole('button', { name: /propose/i }).click();
  // done when the card names a commit that is new in the repository
  const fresh = await poll(async () => {
    const made = [...allCommits(REPO)].filter((c) => !before.has(c));
    const hexes = (await card.innerText()).match(/\b[0-9a-f]{7,40}\b/g) || [];
    return made.length > 0 && hexes.some((h) => made.some((c) => c.startsWith(h))) ? made : null;
  }, 15000, 'the request card never showed a new commit of the repository');
  assert.equal(fresh.length, 1, `expected one new commit in ${REPO}, found ${fresh.length}`);
  const stored = (await apiOk(BASE, ADMIN, 'GET', '/v1/requests?status=proposed')).data.find((r) => String(r.id) === id);
  assert.ok(stored && stored.proposal, `request ${id} is not marked proposed with its proposal`);
  assert.equal(stored.proposal.commit, fresh[0], 'the stored proposal names another commit');
  assert.equal(git(REPO, ['rev-parse', `refs/heads/${stored.proposal.branch}`]), fresh[0]);
  assert.match(git(REPO, ['show', '--format=', fresh[0]]), new RegExp(`^\\+.*${userEmail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'), 'the commit does not add an override for the user');
  assert.equal(git(REPO, ['rev-parse', 'HEAD']), approved, 'the approved branch moved');
});

await check('the reconciler runs cleanly after the proposals (its next run is ok)', async () => {
  // The demo runs the reconciler every few seconds; proposals write branches and audit
  // entries, which must not disturb the reconciler of the approved branch.
  const since = Date.now();
  const status = await poll(async () => {
    const s = await apiOk(BASE, ADMIN, 'GET', '/v1/reconciler/status');
    return s.last && Date.parse(s.last.at) >= since - 1000 ? s : null;
  }, 40000, 'no reconciler run was reported');
  assert.equal(status.last.ok, true, `the reconciler failed: ${JSON.stringify(status.last.failures)}`);
  await adminPage.reload();
  assert.equal(status.last.commit, git(REPO, ['rev-parse', 'HEAD']), 'the reconciler applied another commit than the approved one');
  const shown = adminPage.locator('#reconciler[data-ok]');
  await shown.waitFor({ state: 'attached', timeout: 10000 });
  assert.equal(await shown.getAttribute('data-ok'), 'true', `#reconciler shows a failure: ${await shown.innerText()}`);
});

await check("merged and reconciled, the user's request shows its steps and moves to done on both sides", async () => {
  assert.ok(adminPage && requestReason, 'needs the admin page and the proposed request');
  const row = (await apiOk(BASE, USER, 'GET', '/v1/requests?limit=100')).data.find((r) => r.reason === requestReason);
  assert.ok(row && row.status === 'proposed' && row.proposal, `the request is not proposed: ${JSON.stringify(row)}`);
  assert.equal(row.lifecycle.proposed.branch, row.proposal.branch, 'the lifecycle names another branch');
  const page = await userCtx.newPage();
  await page.goto(`${BASE}/console/me`);
  const mine = page.locator(`#my-requests tr[data-id="${row.id}"]`);
  await mine.waitFor({ timeout: 10000 });
  assert.match(await mine.innerText(), /proposed/, 'the user does not see the request proposed');
  // An approver merges the branch into the approved one; the demo's reconciler applies it.
  git(REPO, ['-c', 'user.name=Approver', '-c', 'user.email=approver@acme.com', 'merge', '--no-ff', '-q', '-m', `Merge request ${row.id}`, row.proposal.branch]);
  const merge = git(REPO, ['rev-parse', 'HEAD']);
  // The user's list refreshes by itself: no reload.
  await poll(async () => (await mine.getAttribute('data-status')) === 'done', 60000, 'the request never showed done in #my-requests');
  const text = await mine.innerText();
  for (const step of ['proposed', 'merged', 'applied', 'done']) assert.match(text, new RegExp(step), `#my-requests does not show the step ${step}`);
  const done = (await apiOk(BASE, ADMIN, 'GET', '/v1/requests?status=done')).data.find((r) => r.id === row.id);
  assert.ok(done, 'the admin API does not list the request as done');
  assert.equal(done.lifecycle.merged.commit, merge, 'merged at another commit');
  assert.ok(Number.isInteger(done.lifecycle.applied.run), 'applied names no reconcile run');
  assert.match(done.lifecycle.proposed.by, /^admin:[0-9a-f]{12}$/, 'the proposing admin is not named by their token');
  // The admin's card shows the same.
  await adminPage.locator('#requests-status').selectOption('done');
  const card = adminPage.locator(`#requests [data-id="${row.id}"]`);
  await card.waitFor({ timeout: 10000 });
  assert.equal(await card.getAttribute('data-status'), 'done');
  assert.match(await card.innerText(), /applied/, 'the admin card does not show the applied step');
  await page.close();
});

await check('the admin view shows users, groups and reconciler status', async () => {
  assert.ok(adminPage, 'no admin page');
  await adminPage.locator('#users-table tbody tr').first().waitFor({ timeout: 10000 });
  const groups = (await apiOk(BASE, ADMIN, 'GET', '/v1/groups')).data;
  const groupsText = await adminPage.locator('#groups').innerText();
  for (const g of groups) assert.ok(groupsText.includes(g.name), `#groups does not list ${g.name}`);
  await adminPage.locator('#reconciler').waitFor();
  assert.match(await adminPage.locator('#reconciler').innerText(), /\S/, '#reconciler is empty');
});

await overridesChecks({ check, context: admin, base: BASE, admin: ADMIN, repo: REPO });
await runawayChecks({ check, context: admin, base: BASE, admin: ADMIN });

await check('no horizontal overflow at 390 px (admin and user views)', async () => {
  const mobileAdmin = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await signIn(mobileAdmin, BASE, ADMIN, '/console/');
  await gaugesRendered(page);
  await assertNoHorizontalOverflow(page);
  await mobileAdmin.close();
  const mobileUser = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const userPage = await signIn(mobileUser, BASE, USER, '/console/me');
  await gaugesOrMine(userPage);
  await assertNoHorizontalOverflow(userPage);
  await mobileUser.close();
});

await teamChecks({ check, browser, newContext, base: BASE, admin: ADMIN, repo: REPO });

await valueChecks({ check, browser, newContext, base: BASE, admin: ADMIN });
await timeChecks({ check, browser, newContext, base: BASE, admin: ADMIN, screenshot });

await polishChecks({ check, browser, newContext, base: BASE, admin: ADMIN, user: USER });

await check('no script errors on any page', async () => {
  assert.deepEqual(pageErrors, []);
});

await browser.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`\n${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
