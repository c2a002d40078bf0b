// The console's team views in the browser: which teams use Codex most (the mix table and
// chart), the team `(no group)` wherever teams are listed, and the drill-down from a
// team to a person. Called by console.mjs with its context; every answer shown is
// compared with the API's, computed another way where it can be.
//
// The demo keeps ingesting usage while this runs: a figure on the page must lie between
// the API's answers before and after the page read it.

import assert from 'node:assert/strict';
import { apiOk, git, micros, signIn } from './lib.mjs';

const NO_GROUP = '(no group)';

/**
 * Codex credits per team, summed over every user of `/v1/dashboard/users` (each row
 * names its team and its usage per product): the mix computed without the mix.
 */
async function codexByTeam(base, admin) {
  const out = new Map();
  let after = null;
  for (let pages = 0; pages < 200; pages++) {
    const q = new URLSearchParams({ limit: '1000', sort: 'email' });
    if (after) q.set('after', after);
    const page = await apiOk(base, admin, 'GET', `/v1/dashboard/users?${q}`);
    for (const u of page.data) {
      if (!u.team) continue;
      out.set(u.team, (out.get(u.team) || 0n) + micros(String(u.products?.codex ?? 0)));
    }
    if (!page.has_more) return out;
    after = page.next;
  }
  throw new Error('/v1/dashboard/users never ended');
}

/** The page's route is drawn: the drill-down section shows `selector`. */
async function drawn(page, selector) {
  await page.locator(`#drill:not([hidden]) ${selector}`).first().waitFor({ timeout: 15000 });
}

/**
 * Runs the team checks.
 * @param {{ check: (name: string, fn: () => Promise<void>) => Promise<void>, browser: any, newContext: (browser: any, options?: object) => Promise<any>, base: string, admin: string, repo: string }} ctx
 */
export async function teamChecks({ check, browser, newContext, base, admin, repo }) {
  const context = await newContext(browser);
  let page = null;
  let top = null;

  await check('the mix table names the team using Codex most, with the Codex credits the users API adds up to', async () => {
    const before = await codexByTeam(base, admin);
    page = await signIn(context, base, admin, '/console/');
    const first = page.locator('#mix-table tbody tr[data-team]').first();
    await first.waitFor({ timeout: 15000 });
    assert.equal(await page.locator('#mix-product').inputValue(), 'codex', 'the mix is not sorted by Codex at first');
    assert.match(await page.locator('#mix-title').innerText(), /Which teams use Codex most/);
    top = await first.getAttribute('data-team');
    const shown = micros(await first.locator('td[data-product="codex"]').getAttribute('data-credits'));
    const after = await codexByTeam(base, admin);
    assert.ok(
      (before.get(top) || 0n) <= shown && shown <= (after.get(top) || 0n),
      `the table shows ${shown} micro-credits of Codex for ${top}; the users API adds up to ${before.get(top)} before and ${after.get(top)} after`,
    );
    for (const [team, used] of before) {
      assert.ok(used <= (after.get(top) || 0n), `${team} used ${used} of Codex before the page loaded, more than ${top} (the table's top) after`);
    }
    // the rows are in descending order of Codex credits, and the chart has one bar per row
    const codex = await page.locator('#mix-table tbody tr[data-team] td[data-product="codex"]').evaluateAll((cells) => cells.map((c) => c.getAttribute('data-credits')));
    const sorted = codex.map((c) => micros(c));
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1] >= sorted[i], `row ${i} has more Codex credits than the row above it`);
    await page.locator('#mix-chart canvas').first().waitFor({ timeout: 10000 });
    const bars = await page.locator('#mix-chart details tbody tr').count();
    assert.equal(bars, codex.length, 'the chart does not have one bar per team of the table');
    // sorting by ChatGPT asks the server again, and the first row follows
    await page.locator('#mix-product').selectOption('chatgpt');
    await page.waitForFunction(() => /ChatGPT/.test(document.querySelector('#mix-title')?.textContent || ''), null, { timeout: 10000 });
    const chatgpt = await page.locator('#mix-table tbody tr[data-team] td[data-product="chatgpt"]').evaluateAll((cells) => cells.map((c) => c.getAttribute('data-credits')));
    for (let i = 1; i < chatgpt.length; i++) assert.ok(micros(chatgpt[i - 1]) >= micros(chatgpt[i]), 'sorted by ChatGPT, a row has more than the one above it');
    await page.locator('#mix-product').selectOption('codex');
    await page.waitForFunction(() => /Codex/.test(document.querySelector('#mix-title')?.textContent || ''), null, { timeout: 10000 });
  });

  await check('the team (no group) is listed wherever teams are', async () => {
    assert.ok(page, 'no admin page');
    const summary = await apiOk(base, admin, 'GET', '/v1/dashboard/summary');
    const ungrouped = summary.teams.find((t) => t.group === NO_GROUP);
    assert.ok(ungrouped && ungrouped.members > 0, `the demo has no user with a limit and no group: ${JSON.stringify(summary.teams.map((t) => t.group))}`);
    const q = (s) => s.replace(/"/g, '\\"');
    await page.locator(`.gauge-team[data-group="${q(NO_GROUP)}"]`).waitFor({ timeout: 10000 });
    await page.locator(`#mix-table tr[data-team="${q(NO_GROUP)}"]`).waitFor({ timeout: 10000 });
    await page.locator(`#groups [data-group="${q(NO_GROUP)}"]`).waitFor({ timeout: 10000 });
    for (const select of ['#activity-team', '#users-group']) {
      assert.equal(await page.locator(`${select} option[value="${q(NO_GROUP)}"]`).count(), 1, `${select} does not offer ${NO_GROUP}`);
    }
    // the breakdown by team
    await page.locator('#breakdown-by').selectOption('team');
    await page.locator(`#breakdown-table tr[data-key="${q(NO_GROUP)}"]`).waitFor({ timeout: 10000 });
    // the users table filtered to it: every row says so in its team column
    await page.locator('#users-group').selectOption(NO_GROUP);
    await page.waitForFunction(() => /in \(no group\)/.test(document.querySelector('#users-caption')?.textContent || ''), null, { timeout: 10000 });
    const teams = await page.locator('#users-table tbody tr[data-user] td:nth-child(2)').evaluateAll((cells) => cells.map((c) => c.textContent));
    assert.ok(teams.length > 0, 'the users table shows nobody in (no group)');
    assert.deepEqual([...new Set(teams)], [NO_GROUP], 'a row of the filtered users table names another team');
    const api = await apiOk(base, admin, 'GET', `/v1/dashboard/users?group=${encodeURIComponent(NO_GROUP)}&limit=1`);
    assert.equal(api.data[0].team, NO_GROUP);
    await page.locator('#users-group').selectOption('');
  });

  let member = null;
  await check('clicking a team of the mix opens its page, with the member count and Codex credits of the API', async () => {
    assert.ok(page && top, 'needs the mix table');
    await page.evaluate(() => window.scrollTo(0, 0));
    const before = await apiOk(base, admin, 'GET', `/v1/dashboard/teams/${encodeURIComponent(top)}`);
    await page.locator(`#mix-table tr[data-team] a.team-link[data-team="${top}"]`).click();
    await drawn(page, '#team-gauge');
    assert.equal(decodeURIComponent(new URL(page.url()).hash), `#team/${top}`, 'the URL does not name the team');
    const gauge = page.locator('#team-gauge');
    assert.equal(await gauge.getAttribute('data-team'), top);
    const after = await apiOk(base, admin, 'GET', `/v1/dashboard/teams/${encodeURIComponent(top)}`);
    const members = Number(await gauge.getAttribute('data-members'));
    assert.ok([before.members, after.members].includes(members), `the page shows ${members} members, the API ${before.members} then ${after.members}`);
    assert.equal(await page.locator('#team-members').innerText(), String(members).replace(/\B(?=(\d{3})+(?!\d))/g, ','), 'the member count shown differs from the gauge');
    const codex = micros(await gauge.getAttribute('data-codex'));
    const lo = micros(String(before.products.codex ?? 0));
    const hi = micros(String(after.products.codex ?? 0));
    assert.ok(lo <= codex && codex <= hi, `the page shows ${codex} micro-credits of Codex, the API ${lo} then ${hi}`);
    // the panels give way to the page, and its members are listed with their standings
    assert.equal(await page.locator('#users').isVisible(), false, 'the users panel is still shown under the team page');
    const rows = page.locator('#team-members-table tbody tr[data-user]');
    assert.ok((await rows.count()) > 0, 'the team page lists no member');
    member = await rows.first().getAttribute('data-user');
    await page.locator('#team-chart canvas').first().waitFor({ timeout: 10000 });
  });

  await check("clicking a member opens their page, whose total is their gauge's and the API's", async () => {
    assert.ok(page && member, 'needs the team page');
    const before = await apiOk(base, admin, 'GET', `/v1/dashboard/people/${encodeURIComponent(member)}`);
    await page.locator(`#team-members-table a.person-link[data-person="${member}"]`).click();
    await drawn(page, '#person-gauge');
    assert.equal(decodeURIComponent(new URL(page.url()).hash), `#person/${member}`);
    const gauge = page.locator('#person-gauge');
    const used = micros(await gauge.getAttribute('data-used'));
    const byProduct = await page.locator('#person-products tbody tr[data-credits]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-credits')));
    const sum = byProduct.reduce((s, c) => s + micros(c), 0n);
    assert.equal(sum, used, `the page's usage by product adds up to ${sum}, its gauge says ${used}`);
    const after = await apiOk(base, admin, 'GET', `/v1/dashboard/people/${encodeURIComponent(member)}`);
    assert.ok(micros(String(before.used)) <= used && used <= micros(String(after.used)), `the gauge shows ${used}, the API ${before.used} then ${after.used}`);
    assert.match(await page.locator('#person-used').innerText(), /\d/);
    assert.equal(micros(await gauge.getAttribute('data-limit')), micros(String(after.limit)), 'the gauge limit differs from the API');
    // where the limit comes from, from the applied limit's source
    const kind = after.applied && after.applied.source ? after.applied.source.kind : '';
    assert.equal(await page.locator('#person-source').getAttribute('data-kind'), kind, 'the page names another source of the limit');
    // the team link leads back to the team
    await page.locator('#drill-body a.team-link').first().click();
    await drawn(page, `#team-gauge[data-team="${top}"]`);
  });

  await check('a team page is shared by its URL, and a model links to the breakdown filtered to it', async () => {
    assert.ok(top, 'needs a team');
    const fresh = await newContext(browser);
    const shared = await signIn(fresh, base, admin, '/console/');
    await shared.goto(`${base}/console/#team/${encodeURIComponent(NO_GROUP)}`);
    await drawn(shared, `#team-gauge[data-team="${NO_GROUP}"]`);
    const model = shared.locator('#team-models a.model-link').first();
    assert.ok((await model.count()) > 0, `the page of ${NO_GROUP} names no model`);
    const name = await model.getAttribute('data-model');
    await model.click();
    await shared.waitForFunction((name) => {
      const rows = [...document.querySelectorAll('#breakdown-table tbody tr[data-key]')];
      return document.querySelector('#breakdown-by')?.value === 'model' && rows.length > 0 && rows.every((r) => r.getAttribute('data-key').includes(name));
    }, name, { timeout: 10000 });
    assert.equal(await shared.locator('#breakdown').isVisible(), true, 'the breakdown is hidden');
    // the browser's back button returns to the team's page
    await shared.goBack();
    await drawn(shared, `#team-gauge[data-team="${NO_GROUP}"]`);
    // back to the overview: the panels are shown again
    await shared.locator('#drill-back').click();
    await shared.locator('#users').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await shared.locator('#drill').isVisible(), false);
    await fresh.close();
  });

  await check('a team page lists the proposals for it until one is merged', async () => {
    assert.ok(page, 'no admin page');
    // the proposals console.mjs made (a credits change, then a model cap), newest first
    const made = (await apiOk(base, admin, 'GET', '/v1/proposals?limit=50')).data.filter((p) => p.kind === 'group');
    assert.ok(made.length >= 2, `expected two group proposals from the earlier checks, found ${made.length}`);
    const [newest, older] = made;
    assert.equal(newest.subject, older.subject, 'the two proposals are for different groups');
    const group = newest.subject;
    const shown = async () => {
      // a new load of the page: going to the address it is at would change nothing
      await page.goto(`${base}/console/#team/${encodeURIComponent(group)}`);
      await page.reload();
      await drawn(page, `#team-gauge[data-team="${group}"]`);
      return page.locator('#team-proposals li[data-id]').evaluateAll((items) => items.map((i) => Number(i.getAttribute('data-id'))));
    };
    const before = await shown();
    assert.ok(before.includes(newest.id) && before.includes(older.id), `the page of ${group} lists proposals ${before}, not ${newest.id} and ${older.id}`);
    // an approver merges the newest: the page lists only the other one
    git(repo, ['-c', 'user.name=Approver', '-c', 'user.email=approver@acme.com', 'merge', '--no-ff', '-q', '-m', `Merge proposal ${newest.id}`, newest.branch]);
    const after = await shown();
    assert.ok(!after.includes(newest.id), `the merged proposal ${newest.id} is still listed as open`);
    assert.ok(after.includes(older.id), `the proposal ${older.id}, not merged, is no longer listed`);
    const api = await apiOk(base, admin, 'GET', `/v1/dashboard/teams/${encodeURIComponent(group)}`);
    assert.deepEqual(api.proposals.map((p) => p.id), after, 'the page lists other proposals than the API');
  });

  await context.close();
}
