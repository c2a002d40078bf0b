// Runaway spend in the browser: a burst generated through the API makes a person
// runaway (far above their own baseline, docs/console.md), and the activity view
// shows it: in the runaway list above the events, and as a badge on their events.
//
// `runawayChecks` is called by console.mjs with its `check` runner, so these checks
// are counted and reported with the rest.

import assert from 'node:assert/strict';
import { apiOk, ingest } from './lib.mjs';

/** Every alert, oldest first, page by page. */
async function allAlerts(base, admin) {
  const out = [];
  let after = 0;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await apiOk(base, admin, 'GET', `/v1/alerts?limit=1000&after=${after}`);
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.next;
  }
  throw new Error('/v1/alerts never ended');
}

/**
 * Runs the checks.
 * @param {{ check: (name: string, fn: () => Promise<void>) => Promise<void>, context: import('playwright-core').BrowserContext, base: string, admin: string }} options
 */
export async function runawayChecks({ check, context, base, admin }) {
  // a person with no spend before: any hour of at least the floor is runaway
  const user = `loop.agent+${Date.now()}@example.com`;

  await check('a burst generated through the API is flagged in the activity view, as the API says', async () => {
    const before = await apiOk(base, admin, 'GET', '/v1/dashboard/runaway');
    assert.ok(!before.people.some((p) => p.name === user), 'flagged before spending');
    // an agent loop: six tasks over the last few minutes, each in its own second (one
    // large task in a single second is not a loop, docs/console.md)
    for (let i = 0; i < 6; i++) {
      await ingest(base, admin, `burst-${user}-${i}`, user, 'codex', 'gpt-5-codex', 15, 30 * (6 - i));
    }
    const flagged = await apiOk(base, admin, 'GET', '/v1/dashboard/runaway');
    const finding = flagged.people.find((p) => p.name === user);
    assert.ok(finding, `the API does not list ${user}: ${JSON.stringify(flagged.people)}`);
    assert.equal(String(finding.last_hour), '90');

    const page = await context.newPage();
    await page.goto(`${base}/console/`);
    const row = page.locator(`#runaway:not([hidden]) #runaway-list li[data-name="${user}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.match(await row.innerText(), /90 credits in the last hour/);
    // a new event of the person carries the badge in the live list
    await ingest(base, admin, `burst-${user}-6`, user, 'codex', 'gpt-5-codex', 15);
    const badge = page.locator('#activity li.event').filter({ hasText: user }).locator('.status.exceeded');
    await badge.first().waitFor({ timeout: 15000 });
    assert.match(await badge.first().innerText(), /runaway/);

    // and one alert, not one per event
    const alerts = (await allAlerts(base, admin)).filter((a) => a.kind === 'runaway' && a.user === user);
    assert.equal(alerts.length, 1, `runaway alerts for ${user}: ${JSON.stringify(alerts)}`);
    await page.close();
  });
}
