// The overrides, review, default limit and reconciler runs panels in the browser,
// checked against the API and against git on the demo's policy repository.
//
// `overridesChecks` is called by console.mjs with its `check` runner, so these checks
// are counted and reported with the rest.

import assert from 'node:assert/strict';
import { apiOk, git } from './lib.mjs';

/** Calls `fn` every 200 ms until it returns something truthy; fails with `what` after `timeout` ms. */
async function poll(fn, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} (waited ${timeout} ms)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs the checks.
 * @param {{ check: (name: string, fn: () => Promise<void>) => Promise<void>, context: import('playwright-core').BrowserContext, base: string, admin: string, repo: string }} options
 */
export async function overridesChecks({ check, context, base, admin, repo }) {
  const page = await context.newPage();
  await page.goto(`${base}/console/`);

  await check('the overrides panel lists the overrides of main with the status counts the API and git give', async () => {
    const all = (await apiOk(base, admin, 'GET', '/v1/overrides?limit=1000')).data;
    const files = git(repo, ['ls-tree', '--name-only', 'main', 'policies/overrides/']).split('\n').filter(Boolean);
    assert.deepEqual(all.map((o) => o.file).sort(), files.sort(), 'the API does not list the override files of main');
    const counts = { active: 0, upcoming: 0, expired: 0 };
    for (const o of all) counts[o.status] += 1;
    assert.ok(counts.active > 0 && counts.upcoming > 0, `the demo should have active and upcoming overrides: ${JSON.stringify(counts)}`);
    await page.locator('#overrides-counts strong[data-status="active"]').waitFor({ timeout: 15000 });
    for (const [status, n] of Object.entries(counts)) {
      assert.equal(await page.locator(`#overrides-counts strong[data-status="${status}"]`).getAttribute('data-count'), String(n), `${status} count`);
    }
    const rows = page.locator('#overrides-table tbody tr[data-name]');
    await poll(async () => (await rows.count()) === all.length, 10000, `#overrides-table does not show ${all.length} overrides`);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-name')}:${tr.getAttribute('data-status')}`));
    assert.deepEqual(shown, all.map((o) => `${o.name}:${o.status}`), 'the table differs from the API (order or status)');
    // the status filter asks the server
    await page.locator('#overrides-status').selectOption('upcoming');
    await poll(async () => {
      const s = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
      return s.length === counts.upcoming && s.every((x) => x === 'upcoming');
    }, 10000, 'the upcoming filter does not show exactly the upcoming overrides');
    await page.locator('#overrides-status').selectOption('');
  });

  await check('"let it lapse" on a flagged override makes a branch whose diff removes exactly that override', async () => {
    const review = await apiOk(base, admin, 'GET', '/v1/overrides/review');
    assert.ok(review.findings.length > 0, `the demo's review has nothing to show: ${JSON.stringify(review).slice(0, 400)}`);
    const finding = review.findings.find((f) => f.user === 'alice.nguyen@acme.com') || review.findings[0];
    assert.ok(finding.reasons.some((r) => r.code === 'review/renewed'), `no renewal found through history: ${JSON.stringify(finding)}`);
    const card = page.locator(`#overrides-review .finding[data-name="${finding.name}"]`);
    await card.waitFor({ timeout: 15000 });
    assert.match(await card.innerText(), /back to back/, 'the card does not say why');
    const main = git(repo, ['rev-parse', 'main']);
    await card.locator('button.lapse').click();
    const result = page.locator('#overrides-result [data-branch]');
    await result.waitFor({ timeout: 20000 });
    const branch = await result.getAttribute('data-branch');
    const commit = await result.getAttribute('data-commit');
    assert.match(branch, /^budgit\/lapse\//);
    assert.equal(git(repo, ['rev-parse', `refs/heads/${branch}`]), commit, 'the branch does not point at the shown commit');
    assert.equal(git(repo, ['rev-parse', `${commit}~1`]), main, 'the proposal is not one commit on main');
    assert.equal(git(repo, ['diff', '--name-status', main, commit]), `D\t${finding.file}`, 'the diff is not exactly the removal of that override');
    assert.equal(git(repo, ['rev-parse', 'main']), main, 'main moved: a proposal must stay on its branch');
  });

  await check('"move into group" on a flagged override makes a branch that adds its person to the group and removes the override', async () => {
    const review = await apiOk(base, admin, 'GET', '/v1/overrides/review');
    assert.ok(review.findings.length > 0, 'the demo\'s review has nothing to show');
    // another finding than the one let lapse above, when there is one
    const finding = review.findings.find((f) => f.user !== 'alice.nguyen@acme.com') || review.findings[0];
    const groups = (await apiOk(base, admin, 'GET', '/v1/groups')).data;
    // a group that lists its members by name: the person is added to that list
    const group = groups.find((g) => git(repo, ['show', `main:${g.file}`]).includes('members:')) || groups[0];
    const card = page.locator(`#overrides-review .finding[data-name="${finding.name}"]`);
    await card.waitFor({ timeout: 15000 });
    await card.locator('select[name="group"]').selectOption(group.name);
    const main = git(repo, ['rev-parse', 'main']);
    const shown = page.locator('#overrides-result [data-branch]');
    const earlier = (await shown.count()) ? await shown.getAttribute('data-branch') : null;
    await card.locator('button.move').click();
    const branch = await poll(async () => {
      const b = (await shown.count()) ? await shown.getAttribute('data-branch') : null;
      return b && b !== earlier ? b : null;
    }, 20000, 'no proposal shown after "Move into group"');
    const commit = await shown.getAttribute('data-commit');
    assert.match(branch, /^budgit\/move\//);
    assert.equal(git(repo, ['rev-parse', `refs/heads/${branch}`]), commit, 'the branch does not point at the shown commit');
    assert.equal(git(repo, ['rev-parse', `${commit}~1`]), main, 'the proposal is not one commit on main');
    const diff = git(repo, ['diff', '--name-status', main, commit]).split('\n').sort();
    assert.deepEqual(diff, [`D\t${finding.file}`, `M\t${group.file}`].sort(), 'the diff is not the override removed and the group edited');
    assert.ok(!git(repo, ['show', `${main}:${group.file}`]).includes(finding.user), `${finding.user} was already in ${group.file}`);
    assert.ok(git(repo, ['show', `${commit}:${group.file}`]).includes(finding.user), `${finding.user} is not added to ${group.file}`);
    assert.equal(git(repo, ['rev-parse', 'main']), main, 'main moved: a proposal must stay on its branch');
  });

  await check('the default limit panel shows the Workspace\'s amount (API and file)', async () => {
    const d = await apiOk(base, admin, 'GET', '/v1/workspace/default');
    const text = git(repo, ['show', `main:${d.file}`]);
    const written = text.match(/^default:\s*\n\s+credits:\s*([0-9.]+)/m);
    assert.ok(written, `no default credits in ${d.file}`);
    assert.equal(Number(written[1]), Number(d.credits), 'the API and the file differ');
    const amount = page.locator('#default-amount');
    await amount.waitFor({ timeout: 15000 });
    assert.equal((await amount.innerText()).replace(/[^0-9.]/g, ''), String(d.credits).replace(/[^0-9.]/g, ''), 'the panel shows another amount');
    assert.match(await page.locator('#default-view').innerText(), new RegExp(`${d.file}:${d.line}`), 'the panel does not say where it is written');
  });

  await check('the runs list shows a run that applied the head of main', async () => {
    const head = git(repo, ['rev-parse', 'main']);
    const api = await poll(async () => {
      const runs = (await apiOk(base, admin, 'GET', '/v1/reconciler/runs?limit=50')).data;
      return runs.find((r) => r.commit === head);
    }, 60000, `no reconciler run applied ${head}`);
    assert.ok(Number.isInteger(api.writes) && Number.isInteger(api.errors), `a run without writes or errors: ${JSON.stringify(api)}`);
    await poll(async () => {
      await page.reload();
      return page.locator(`#runs-table tr[data-commit="${head}"]`).first().waitFor({ timeout: 5000 }).then(() => true, () => false);
    }, 30000, `#runs-table shows no run of ${head}`);
  });

  await page.close();
}
