// The console's time range in the browser: the range picker, the previous period beside
// each figure, the view kept in the URL (reload, share, back and forward), times in the
// workspace's time zone, the pagers' totals and a team's trend per product. Called by
// console.mjs with its `check` runner.
//
// The figures of a range are checked against the Costs API (`/v1/organization/costs`),
// which sums the stored events itself: the range is made of whole past days, so the
// demo's live usage (always "now") does not move them while the test reads.

import assert from 'node:assert/strict';
import { apiOk, micros, signIn } from './lib.mjs';

/** Every credit of the Costs API over `[start, end)` (unix seconds), in micro-credits. */
async function costsBetween(base, admin, start, end) {
  let total = 0n;
  let page = null;
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams({ start_time: String(start), end_time: String(end), bucket_width: '1d', limit: '180' });
    if (page) q.set('page', page);
    const body = await apiOk(base, admin, 'GET', `/v1/organization/costs?${q}`);
    for (const bucket of body.data) for (const r of bucket.results) total += micros(String(r.amount.value));
    if (!body.has_more) return total;
    page = body.next_page;
  }
  throw new Error('the Costs API never ended');
}

/** A local date (YYYY-MM-DD) of an instant in `timeZone`. */
const localDate = (t, timeZone) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(t));

/** The date `n` days after a YYYY-MM-DD date. */
function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Unix seconds of an RFC 3339 instant. */
const unix = (t) => Math.floor(Date.parse(t) / 1000);

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

/** A count as the console writes it (`3,000`). */
const counted = (n) => new Intl.NumberFormat('en-US').format(n);

/**
 * Runs the checks.
 * @param {{ check: (name: string, fn: () => Promise<void>) => Promise<void>, browser: any, newContext: (browser: any, options?: object) => Promise<any>, base: string, admin: string, screenshot: (page: any, name: string) => Promise<void> }} ctx
 */
export async function timeChecks({ check, browser, newContext, base, admin, screenshot }) {
  // the browser in another zone than the workspace's: every time shown must still be the workspace's
  const context = await newContext(browser, { timezoneId: 'Asia/Tokyo', locale: 'en-US' });
  const period = (await apiOk(base, admin, 'GET', '/v1/dashboard/summary')).period;
  const zone = period.timezone;
  // two whole past days of this period with usage on each, the later one shown and the
  // earlier one its previous period; early in a month, yesterday and the day before
  const trends = await apiOk(base, admin, 'GET', '/v1/dashboard/trends');
  const today = localDate(period.now, zone);
  const used = new Map(trends.days.map((d, i) => [d, trends.series.reduce((s, x) => s + micros(String(x.values[i] ?? 0)), 0n)]));
  const candidates = trends.days.filter((d) => d < today && used.get(d) > 0n && used.get(addDays(d, -1)) > 0n);
  const shownDay = candidates.length ? candidates[candidates.length - 1] : addDays(today, -1);
  const range = { from: shownDay, to: shownDay };
  let page = null;
  let expected = null;

  await check('the range picker shows the figures of the range chosen: the Costs API\'s sum over it', async () => {
    page = await signIn(context, base, admin, '/console/');
    await page.locator('#gauge-workspace[data-used]:not([data-used=""])').waitFor({ timeout: 15000 });
    await page.locator('#range-preset').selectOption('custom');
    await page.locator('#range-from').fill(range.from);
    await page.locator('#range-to').fill(range.to);
    await page.locator('#range-apply').click();
    await poll(() => new URL(page.url()).searchParams.get('range') === 'custom', 5000, 'the URL does not hold the range');
    expected = await apiOk(base, admin, 'GET', `/v1/dashboard/summary?from=${range.from}&to=${range.to}`);
    // the range's bounds are the local midnights of its day in the workspace's zone
    assert.equal(localDate(expected.period.start, zone), range.from, 'the range does not start on its day');
    assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(expected.period.start)), '00:00');
    assert.equal(unix(expected.period.end) - unix(expected.period.start) <= 25 * 3600, true, 'one day is at most 25 hours long');
    const costs = await costsBetween(base, admin, unix(expected.period.start), unix(expected.period.end));
    assert.equal(micros(String(expected.workspace.used)), costs, 'the summary of the range differs from the Costs API over it');
    assert.ok(costs > 0n || candidates.length === 0, 'the day chosen had usage in the trend, none in the Costs API');
    await poll(async () => micros(await page.locator('#gauge-workspace').getAttribute('data-used') || '0') === costs, 10000,
      `the workspace gauge does not show the range's ${costs} micro-credits`);
    // the lists and the trend read the same range
    const users = await apiOk(base, admin, 'GET', `/v1/dashboard/users?from=${range.from}&to=${range.to}&limit=50`);
    await poll(async () => (await page.locator('#users-page').innerText()).endsWith(`of ${counted(users.total)}`), 10000,
      `the users pager does not count the range's ${users.total} people`);
    await poll(async () => (await page.locator('#trend-chart details .table-wrap:first-of-type tbody tr').count()) === 1, 10000, 'the trend does not show the one day of the range');
    assert.match(await page.locator('#range-shown').innerText(), /\d/, 'the range is not named');
    await screenshot(page, 'console-range.png');
  });

  await check('period over period: the workspace, its teams and its models beside the previous period (the Costs API\'s sum over it)', async () => {
    assert.ok(page && expected, 'needs the range');
    const before = expected.previous_period;
    assert.equal(unix(before.end), unix(expected.period.start), 'the previous period does not end where the range starts');
    assert.equal(unix(before.end) - unix(before.start), unix(expected.period.end) - unix(expected.period.start), 'the previous period is not as long');
    const costs = await costsBetween(base, admin, unix(before.start), unix(before.end));
    assert.equal(micros(String(expected.workspace.previous)), costs, 'the previous figure differs from the Costs API over the previous period');
    const shown = page.locator('#workspace-used .previous');
    await poll(async () => micros(await shown.getAttribute('data-previous') || '-1') === costs, 10000, 'the overview does not show the previous figure');
    assert.match(await shown.innerText(), /previous/);
    if (expected.workspace.change !== null) assert.match(await shown.innerText(), /[+−±]\d/, 'the change is not shown signed');
    // every team: its previous figure as the API answers it
    for (const t of expected.teams) {
      const cell = page.locator(`.gauge-team[data-group="${t.group.replace(/"/g, '\\"')}"] .previous`);
      assert.equal(micros(await cell.getAttribute('data-previous') || '-1'), micros(String(t.previous)), `${t.group}'s previous figure`);
    }
    // the models table: one row per model of either period, with both figures
    const rows = page.locator('#models-table tbody tr[data-model]');
    assert.equal(await rows.count(), expected.models.length, 'the models table does not list every model of either period');
    let sum = 0n;
    for (const m of expected.models) {
      const row = page.locator(`#models-table tr[data-model="${m.model}"]`);
      assert.equal(micros(await row.getAttribute('data-previous')), micros(String(m.previous)), `${m.model}'s previous figure`);
      sum += micros(String(m.previous));
    }
    assert.equal(sum, costs, 'the models\' previous figures do not add up to the previous period');
  });

  await check('a shared URL shows the same view: range, sort, page and drill-down; back and forward step through them', async () => {
    assert.ok(page, 'needs the range');
    // the mix sorted by ChatGPT and the trend split by model
    await page.locator('#mix-product').selectOption('chatgpt');
    await page.locator('input[name="trend-by"][value="model"]').check();
    await poll(() => new URL(page.url()).searchParams.get('trends.by') === 'model', 5000, 'the URL does not hold the trend\'s split');
    // sort the users by email, then go to their second page
    await page.locator('#users-table th[data-sort="email"] button').click();
    await poll(async () => (await page.locator('#users-table th[data-sort="email"]').getAttribute('aria-sort')) === 'ascending', 10000, 'not sorted by email');
    const firstPage = await page.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user');
    const next = page.locator('#users-next');
    if (await next.isEnabled()) {
      await next.click();
      await poll(async () => (await page.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user')) !== firstPage, 10000, 'the second page did not load');
    }
    const url = page.url();
    assert.equal(new URL(url).searchParams.get('mix.product'), 'chatgpt', 'the URL does not hold the mix\'s sort');
    const firstRow = await page.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user');
    const pager = await page.locator('#users-page').innerText();
    // the same URL in a new tab
    const shared = await context.newPage();
    await shared.goto(url);
    await shared.locator('#users-table tbody tr[data-user]').first().waitFor({ timeout: 15000 });
    await poll(async () => (await shared.locator('#users-page').innerText()) === pager, 10000, `the shared URL's pager is not "${pager}"`);
    assert.equal(await shared.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user'), firstRow, 'the shared URL shows another first row');
    assert.equal(await shared.locator('#range-preset').inputValue(), 'custom');
    assert.equal(await shared.locator('#range-from').inputValue(), range.from);
    assert.equal(micros(await shared.locator('#gauge-workspace').getAttribute('data-used') || '-1'), micros(String(expected.workspace.used)), 'the shared URL shows another range');
    assert.equal(await shared.locator('#users-table th[data-sort="email"]').getAttribute('aria-sort'), 'ascending');
    assert.equal(await shared.locator('#mix-product').inputValue(), 'chatgpt', 'the shared URL does not sort the mix by ChatGPT');
    assert.ok(await shared.locator('input[name="trend-by"][value="model"]').isChecked(), 'the shared URL does not split the trend by model');
    await shared.close();
    // back: the first page again
    if (firstRow !== firstPage) {
      await page.goBack();
      await poll(async () => (await page.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user')) === firstPage, 10000, 'back did not show the first page');
      await page.goForward();
      await poll(async () => (await page.locator('#users-table tbody tr[data-user]').first().getAttribute('data-user')) === firstRow, 10000, 'forward did not show the second page');
    }
    // a team's page in the range, by its URL
    const team = expected.teams.find((t) => t.group !== '(no group)') || expected.teams[0];
    const teamUrl = new URL(url);
    teamUrl.hash = `#team/${encodeURIComponent(team.group)}`;
    const drill = await context.newPage();
    await drill.goto(teamUrl.toString());
    await drill.locator('#drill:not([hidden]) #team-gauge').waitFor({ timeout: 15000 });
    const api = await apiOk(base, admin, 'GET', `/v1/dashboard/teams/${encodeURIComponent(team.group)}?from=${range.from}&to=${range.to}`);
    assert.equal(micros(await drill.locator('#team-gauge').getAttribute('data-used')), micros(String(api.used)), 'the team page does not show the range');
    await drill.close();
  });

  await check('a team\'s trend is per product, with a legend and a table of the same figures', async () => {
    const summary = await apiOk(base, admin, 'GET', '/v1/dashboard/summary');
    const team = [...summary.teams].sort((a, b) => Number(b.used) - Number(a.used))[0];
    const drill = await context.newPage();
    await drill.goto(`${base}/console/#team/${encodeURIComponent(team.group)}`);
    await drill.locator('#drill:not([hidden]) #team-chart').waitFor({ timeout: 15000 });
    const api = await apiOk(base, admin, 'GET', `/v1/dashboard/teams/${encodeURIComponent(team.group)}`);
    assert.ok(api.daily.products.length >= 2, `the demo's busiest team uses one product only: ${JSON.stringify(api.daily.products.map((p) => p.product))}`);
    // a day's products add up to its total
    api.daily.days.forEach((d, i) => {
      const sum = api.daily.products.reduce((s, p) => s + micros(String(p.values[i])), 0n);
      assert.equal(sum, micros(String(api.daily.values[i])), `${d}: the products do not add up to the day`);
    });
    const heads = await drill.locator('#team-chart details thead th').evaluateAll((ths) => ths.map((th) => th.textContent));
    for (const name of ['ChatGPT', 'Codex']) assert.ok(heads.includes(name), `the table has no ${name} column: ${heads}`);
    const legend = await drill.locator('#team-chart .u-legend').innerText().catch(() => '');
    assert.match(legend, /ChatGPT/, 'the chart has no legend naming ChatGPT');
    await drill.locator('#team-chart').scrollIntoViewIfNeeded();
    await screenshot(drill, 'console-team-trend.png');
    await drill.close();
  });

  await check('times are in the workspace\'s time zone whatever the browser\'s, in one format', async () => {
    assert.ok(page, 'needs the page');
    await page.goto(`${base}/console/`);
    const times = page.locator('#activity time.when');
    await times.first().waitFor({ timeout: 20000 });
    const shown = await times.evaluateAll((ts) => ts.slice(0, 10).map((t) => [t.getAttribute('datetime'), t.textContent]));
    const inZone = new Intl.DateTimeFormat('en-US', { timeZone: zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    for (const [at, text] of shown) assert.equal(text, inZone.format(new Date(at)), `${at} is not shown in ${zone}`);
    // the browser's own zone would read differently (Tokyo is 13 or 14 hours ahead of New York)
    const tokyo = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    assert.notEqual(shown[0][1], tokyo.format(new Date(shown[0][0])), 'the time is the browser\'s zone');
    assert.equal(await page.evaluate(async () => (await import('/assets/common.js')).timeZone()), zone, 'the page did not learn the workspace\'s zone');
  });

  await check('the pagers count every row: "51–100 of N" with the total the API answers', async () => {
    assert.ok(page, 'needs the page');
    const api = await apiOk(base, admin, 'GET', '/v1/dashboard/users?limit=50');
    assert.ok(Number.isInteger(api.total) && api.total > 50, `the users list has no total: ${api.total}`);
    const label = page.locator('#users-page');
    await poll(async () => /^1–50 of /.test(await label.innerText()), 10000, 'the first page does not say 1–50 of N');
    await page.locator('#users-next').click();
    await poll(async () => /^51–100 of [\d,]+$/.test(await label.innerText()), 10000, 'the second page does not say 51–100 of N');
    const total = Number((await label.innerText()).replace(/^.* of /, '').replace(/,/g, ''));
    const after = await apiOk(base, admin, 'GET', '/v1/dashboard/users?limit=1');
    assert.ok(api.total <= total && total <= after.total, `the pager says ${total} people, the API ${api.total} then ${after.total}`);
    const breakdown = await apiOk(base, admin, 'GET', '/v1/dashboard/breakdown?by=product&limit=25');
    await poll(async () => (await page.locator('#breakdown-page').innerText()) === `1–${breakdown.data.length} of ${counted(breakdown.total)}`, 10000, 'the breakdown pager does not count its rows');
  });

  await context.close();
}
