// The console's value view in the browser: where credits go (the repository with the
// most spend, per team within it) and what they produce (credits per merged pull
// request of a team, computed here from the team's usage in another endpoint and the
// pull requests the view counts), and the upload of an outcomes file: a bad row shown
// with its line and column, a good file stored and counted once, a conflicting one
// refused. Called by console.mjs with its context; also runs alone
// (`node value.mjs`, with the same environment as console.mjs).
//
// The demo keeps ingesting usage while this runs: a figure on the page must lie between
// the API's answers before and after the page read it.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiOk, api, env, installRecorder, launch, micros, signIn } from './lib.mjs';

const NO_GROUP = '(no group)';
const SHOTS = process.env.BUDGIT_SCREENSHOTS === '1';
const SHOT_DIR = process.env.BUDGIT_SCREENSHOT_DIR || join(dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');

/** `used / n` rounded down to a micro-credit, as the API divides: exact micro-credits. */
const perOutcome = (used, n) => (n > 0 ? used / BigInt(n) : null);

/** A team's credits this period from the breakdown by team (another read model). */
async function teamUsed(base, admin, team) {
  // `fresh`: a view holding every event answered before, so it is not behind the value view
  const page = await apiOk(base, admin, 'GET', `/v1/dashboard/breakdown?by=team&limit=1000&fresh=true&q=${encodeURIComponent(team)}`);
  const row = page.data.find((r) => r.key === team);
  return row ? micros(String(row.used)) : 0n;
}

/**
 * Runs the value checks.
 * @param {{ check: (name: string, fn: () => Promise<void>) => Promise<void>, browser: any, newContext: (browser: any, options?: object) => Promise<any>, base: string, admin: string }} ctx
 */
export async function valueChecks({ check, browser, newContext, base, admin }) {
  const context = await newContext(browser, { locale: 'en-US' });
  const page = await signIn(context, base, admin, '/console/');
  const table = page.locator('#value-table');
  const teams = page.locator('#value-teams');

  await check('the value view names the repository with the most spend, as the API does, with its teams', async () => {
    const before = await apiOk(base, admin, 'GET', '/v1/dashboard/value?by=context.repo');
    const top = before.rows.find((r) => r.key !== null);
    assert.ok(top, 'no repository has spend in the demo');
    await table.locator('tbody tr[data-key]').first().waitFor({ timeout: 20000 });
    // the first named row is the repository with the most spend
    const first = table.locator('tbody tr[data-key]:not([data-key=""])').first();
    assert.equal(await first.getAttribute('data-key'), top.key, 'the first repository shown is not the API\'s largest');
    const shown = micros(await first.locator('td[data-credits]').getAttribute('data-credits'));
    const after = await apiOk(base, admin, 'GET', '/v1/dashboard/value?by=context.repo');
    const later = after.rows.find((r) => r.key === top.key);
    assert.ok(micros(String(top.used)) <= shown && shown <= micros(String(later.used)), `${top.key}: ${shown} shown, the API said ${top.used} then ${later.used}`);
    // the number a person reads is the one formatter's
    assert.match(await first.locator('td[data-credits]').innerText(), /^\d{1,3}(,\d{3})*(\.\d+)?$/);
    // every team named is a link to its page
    const links = first.locator('a.team-link');
    assert.ok(await links.count() >= 1, 'the repository names no team');
    const team = await links.first().getAttribute('data-team');
    assert.equal(await links.first().getAttribute('href'), `#team/${encodeURIComponent(team)}`);
    // the chart draws the same repositories
    await page.locator('#value-chart canvas').first().waitFor({ timeout: 10000 });
    // the demo's story: the burning repository costs the most per outcome of the named ones
    const named = after.rows.filter((r) => r.key !== null && r.credits_per_outcome !== null);
    const worst = named.reduce((a, b) => (micros(String(b.credits_per_outcome)) > micros(String(a.credits_per_outcome)) ? b : a));
    assert.equal(worst.key, 'acme/payments-service', `the repository with the most credits per outcome is ${worst.key}`);
  });

  await check('credits per merged pull request of a team equal its usage over its pull requests, computed apart', async () => {
    const v = await apiOk(base, admin, 'GET', '/v1/dashboard/value');
    const team = v.teams.find((t) => t.team === 'platform-infra') || v.teams.find((t) => t.team && (t.kinds.pull_request || 0) > 0);
    assert.ok(team, 'no team has merged pull requests');
    const prs = team.kinds.pull_request;
    const row = teams.locator(`tbody tr[data-team="${team.team}"]`);
    await row.waitFor({ timeout: 20000 });
    assert.equal(Number(await row.locator('td[data-prs]').getAttribute('data-prs')), prs, 'merged pull requests shown differ from the API');
    // the team's usage from the breakdown by team, before and after the page read it
    const low = await teamUsed(base, admin, team.team);
    // the view read again now, between the two reads of the breakdown
    for (const by of ['context.ticket', 'context.repo']) {
      const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/dashboard/value', { timeout: 10000 });
      await page.locator('#value-by').selectOption(by);
      await answered;
    }
    await page.waitForFunction(() => document.querySelector('#value-key-head')?.textContent === 'Repository');
    const shown = micros(await row.locator('td[data-per-pr]').getAttribute('data-per-pr'));
    const high = await teamUsed(base, admin, team.team);
    const [a, b] = [perOutcome(low, prs), perOutcome(high, prs)];
    // the breakdown counts the team by today's group, the value view by the group at
    // the time of each event: the same in the demo, whose people stay in their groups
    assert.ok(a <= shown && shown <= b, `${team.team}: ${shown} µcredits per merged PR shown, ${a} to ${b} computed from the breakdown over ${prs} PRs`);
    // and the efficient team spends less per merged pull request than Engineering
    const eng = v.teams.find((t) => t.team === 'engineering');
    const plat = v.teams.find((t) => t.team === 'platform-infra');
    if (eng && plat && eng.credits_per_pull_request && plat.credits_per_pull_request) {
      assert.ok(micros(String(plat.credits_per_pull_request)) < micros(String(eng.credits_per_pull_request)), 'platform-infra is not the efficient team');
    }
  });

  await check('an outcomes file uploads from the console: a bad row is shown with its line and column, a good one is counted once, a conflict refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'budgit-value-'));
    try {
      const id = `browser/test#${Date.now()}`;
      const when = new Date(Date.now() - 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
      const bad = join(dir, 'bad.csv');
      writeFileSync(bad, `time,kind,id,repo,user,team\n${when},pull_request,${id},acme/platform-infra,,platform-infra\n${when},Merged,x,,,\n`);
      const good = join(dir, 'good.csv');
      writeFileSync(good, `time,kind,id,repo,user,team\n${when},pull_request,${id},acme/platform-infra,,platform-infra\n`);
      const conflict = join(dir, 'conflict.jsonl');
      writeFileSync(conflict, `${JSON.stringify({ time: when, kind: 'pull_request', id, repo: 'acme/identity', team: 'platform-infra' })}\n`);
      const result = page.locator('#value-upload-result');
      const send = async (file) => {
        await page.locator('#value-file').setInputFiles(file);
        const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/outcomes', { timeout: 15000 });
        await page.locator('#value-upload-button').click();
        return answered;
      };
      const before = await apiOk(base, admin, 'GET', '/v1/dashboard/value');
      assert.equal((await send(bad)).status(), 422);
      const error = result.locator('.error[role=alert]');
      await error.waitFor({ timeout: 5000 });
      assert.match(await error.innerText(), /bad\.csv:3:\d+: `kind` `Merged` must be a lowercase name/);
      assert.equal((await apiOk(base, admin, 'GET', '/v1/dashboard/value')).outcomes, before.outcomes, 'a refused upload stored something');
      assert.equal((await send(good)).status(), 200);
      await result.locator('.success').waitFor({ timeout: 5000 });
      assert.match(await result.innerText(), /1 outcomes, 1 new, 0 already stored/);
      const once = await apiOk(base, admin, 'GET', '/v1/dashboard/value');
      assert.equal(once.outcomes, before.outcomes + 1);
      // again: the same outcome is not counted twice
      assert.equal((await send(good)).status(), 200);
      await page.locator('#value-upload-result .success', { hasText: '0 new, 1 already stored' }).waitFor({ timeout: 5000 });
      assert.equal((await apiOk(base, admin, 'GET', '/v1/dashboard/value')).outcomes, once.outcomes);
      // the same id for another repository is refused, and the page says why
      assert.equal((await send(conflict)).status(), 409);
      await result.locator('.error[data-code="outcomes/conflict"]').waitFor({ timeout: 5000 });
      // the view was reloaded with the new outcome: the team's count went up
      const plat = once.teams.find((t) => t.team === 'platform-infra');
      const row = teams.locator('tbody tr[data-team="platform-infra"] td[data-prs]');
      assert.equal(Number(await row.getAttribute('data-prs')), plat.kinds.pull_request);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  await check('the value view is on the admin page for admins only: a user token is refused', async () => {
    const r = await api(base, process.env.BUDGIT_USER_TOKEN || 'bgt_user_nope', 'GET', '/v1/dashboard/value');
    assert.ok(r.status === 403 || r.status === 401, `a user token read the value view (${r.status})`);
  });

  if (SHOTS) {
    await check('a screenshot of the value view', async () => {
      mkdirSync(SHOT_DIR, { recursive: true });
      await page.locator('#value-upload-result').evaluate((e) => { e.textContent = ''; });
      await page.locator('#value').scrollIntoViewIfNeeded();
      await page.evaluate(() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))));
      await page.locator('#value').screenshot({ path: join(SHOT_DIR, 'console-value.png') });
      console.log(`     wrote ${join(SHOT_DIR, 'console-value.png')}`);
    });
  }
  await context.close();
}

// Alone: `node value.mjs` with BUDGIT_URL and BUDGIT_ADMIN_TOKEN.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = [];
  const check = async (name, fn) => {
    try {
      await fn();
      results.push(true);
      console.log(`ok   ${name}`);
    } catch (e) {
      results.push(false);
      console.log(`FAIL ${name}\n     ${String(e && e.stack ? e.stack : e).replace(/\n/g, '\n     ')}`);
    }
  };
  const newContext = async (b, options = {}) => {
    const c = await b.newContext({ viewport: { width: 1280, height: 900 }, ...options });
    await installRecorder(c);
    return c;
  };
  const browser = await launch();
  await valueChecks({ check, browser, newContext, base: env('BUDGIT_URL').replace(/\/$/, ''), admin: env('BUDGIT_ADMIN_TOKEN') });
  await browser.close();
  const failed = results.filter((ok) => !ok).length;
  console.log(`\n${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
