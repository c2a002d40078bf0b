// What users notice of the console's polish, in the browser: a proposal's plan stays
// compact however many people it affects, numbers read the same in every panel, team
// cards follow the gauges and open the team, the pager says which rows it shows, the
// user's own caps have meters, axe-core finds nothing serious, and a phone clips no
// table. Called by console.mjs with its context; every figure checked is compared with
// the API's answer.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { apiOk, gaugesRendered, ingest, micros, signIn } from './lib.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A number as the console writes it in en-US: `12,346`, `12.35`, `0.0001235`, `−7`. */
const FORMATTED = /^[+−-]?\d{1,3}(,\d{3})*(\.\d+)?$/;

/** The number a formatted count stands for (`3,000` → 3000). */
const parseCount = (text) => Number(String(text).replace(/,/g, ''));

/** Runs axe-core on the page; the serious and critical violations, one line each. */
async function axeViolations(page) {
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.join(' | ')}`);
}

export async function polishChecks({ check, browser, newContext, base, admin, user }) {
  // One admin page in en-US, so the formats checked are the ones a reader of that locale sees.
  const context = await newContext(browser, { locale: 'en-US' });
  const page = await signIn(context, base, admin, '/console/');
  await gaugesRendered(page);

  await check("a proposal affecting many people shows the plan's counts and stays under 3,000 px", async () => {
    const groups = (await apiOk(base, admin, 'GET', '/v1/groups')).data;
    const group = groups.filter((g) => g.limit && g.limit.credits != null).sort((a, b) => (b.members || 0) - (a.members || 0))[0];
    assert.ok(group, 'no group with a credits limit');
    await page.locator(`#propose-form [name="group"] option[value="${group.name}"]`).waitFor({ state: 'attached', timeout: 10000 });
    await page.locator('#propose-form [name="group"]').selectOption(group.name);
    // every member's limit goes up by one credit: the plan names each of them
    await page.locator('#propose-form [name="credits"]').fill((micros(String(group.limit.credits)) / 1000000n + 1n).toString());
    await page.locator('#propose-form [name="reason"]').fill(`Browser test: one more credit for everyone in ${group.name}`);
    const heightBefore = await page.evaluate(() => document.documentElement.scrollHeight);
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/proposals' && r.request().method() === 'POST', { timeout: 20000 });
    await page.locator('#propose-submit').click();
    const response = await answered;
    assert.ok(response.ok(), `the proposal failed (${response.status()}): ${await response.text()}`);
    const summary = (await response.json()).plan.summary;
    const result = page.locator('#proposal-result .proposal');
    await result.waitFor({ timeout: 15000 });
    assert.ok(summary.users_affected > 10, `the proposal affects only ${summary.users_affected} people: pick a larger group`);
    const heightAfter = await page.evaluate(() => document.documentElement.scrollHeight);
    const box = await result.evaluate((e) => e.getBoundingClientRect().height);
    console.log(`     ${summary.users_affected} people affected: the result is ${Math.round(box)} px tall, the page grew ${heightAfter - heightBefore} px`);
    assert.ok(box < 3000, `the proposal's result is ${Math.round(box)} px tall`);
    assert.ok(heightAfter - heightBefore < 3000, `the page grew by ${heightAfter - heightBefore} px`);
    // the counts shown are the API's, as data and as the text a person reads
    const shown = await result.locator('.plan-counts li[data-count]').evaluateAll((els) =>
      els.map((e) => ({ key: e.dataset.key, count: Number(e.dataset.count), text: e.querySelector('strong')?.textContent || '' })));
    const keys = shown.map((s) => s.key);
    for (const key of ['users_affected', 'raised', 'lowered']) assert.ok(keys.includes(key), `the counts do not show ${key}: ${keys}`);
    for (const s of shown) {
      assert.equal(s.count, summary[s.key], `${s.key} shown ${s.count}, the plan says ${summary[s.key]}`);
      assert.equal(parseCount(s.text), summary[s.key], `${s.key} reads ${s.text}`);
      assert.match(s.text, FORMATTED, `${s.key} is not formatted: ${s.text}`);
    }
    for (const key of ['newly_blocked', 'newly_unblocked', 'newly_blocked_on_caps', 'newly_unblocked_on_caps']) {
      if (summary[key]) assert.ok(keys.includes(key), `${summary[key]} ${key} in the plan, not shown`);
    }
    // the ten largest per-user changes, the rest behind a closed disclosure built only when opened
    const people = result.locator('.plan-users');
    assert.equal(await people.locator('.table-wrap').first().locator('tbody tr').count(), 10, 'the per-user table does not show ten rows');
    const more = people.locator(':scope > details.more');
    assert.equal(await more.getAttribute('open'), null, 'the rest of the people is open');
    assert.equal(await more.locator('tr').count(), 0, 'the rest of the people was built before it was asked for');
    for (const closed of await result.locator(':scope > details.more').all()) {
      assert.equal(await closed.getAttribute('open'), null, 'a disclosure of the plan is open');
      assert.equal(await closed.locator(':scope > :not(summary)').count(), 0, 'a disclosure was built before it was asked for');
    }
    await more.locator('summary').click();
    await more.locator('tbody tr').first().waitFor({ timeout: 5000 });
    const rest = await more.locator('tbody tr').count();
    assert.equal(rest, parseCount((await more.locator('summary').innerText()).match(/[\d,]+/)[0]), 'the disclosure holds another number of rows than it says');
    const listed = 10 + rest;
    const cut = await people.locator('p', { hasText: /more/ }).count();
    assert.ok(cut ? listed < summary.users_affected : listed === summary.users_affected,
      `${listed} people listed, the plan affects ${summary.users_affected}${cut ? ' (the plan cut its list)' : ''}`);
    // the largest changes first: each row changes by at least as much as the next
    const changes = await people.locator('tbody tr').evaluateAll((rows) =>
      rows.map((r) => {
        const at = [...r.closest('table').tHead.rows[0].cells].findIndex((c) => c.textContent.trim() === 'change');
        return Math.abs(Number(r.cells[at].textContent.replace(/[,+]/g, '').replace('−', '-')));
      }));
    assert.ok(changes.every(Number.isFinite), `a change is not a number: ${changes.slice(0, 12)}`);
    assert.equal(changes.length, listed);
    for (let i = 1; i < changes.length; i++) assert.ok(changes[i - 1] >= changes[i], `row ${i + 1} changes more than row ${i}: ${changes.slice(0, 12)}`);
  });

  await check('numbers read the same in every panel: one formatter, never in exponent form', async () => {
    const samples = await page.evaluate(async () => {
      const { number, credits } = await import('/assets/common.js');
      return [12345.678, 100, 99.999, 12.3456, 1, 0.5, 0.000123456, 0.000001, '9007199254.740993', -2500.5, 0].map((v) => [String(v), number(v), credits(v)]);
    });
    const want = {
      '12345.678': '12,346', 100: '100', 99.999: '100', 12.3456: '12.35', 1: '1', 0.5: '0.5', 0.000123456: '0.0001235',
      0.000001: '0.000001', '9007199254.740993': '9,007,199,255', '-2500.5': '-2,501', 0: '0',
    };
    for (const [v, n, c] of samples) {
      assert.equal(n, want[v], `number(${v})`);
      assert.equal(c, n, `credits(${v}) differs from number(${v})`);
    }
    // what the panels rendered: the workspace figures, the team gauges, the users table
    const texts = await page.evaluate(() => [
      ...[...document.querySelectorAll('#workspace-stats dd')].map((e) => e.childNodes[0]?.textContent || ''),
      ...[...document.querySelectorAll('#users-table tbody td.num')].map((e) => e.textContent || ''),
    ].map((t) => t.trim()).filter((t) => /^[\d,.+−-]+$/.test(t)));
    assert.ok(texts.length > 5, `too few numbers read: ${texts}`);
    for (const t of texts) assert.match(t, FORMATTED, `a number is not formatted: ${t}`);
    const body = await page.locator('main').innerText();
    assert.doesNotMatch(body, /\b\d(\.\d+)?e[-+]?\d+\b/, 'a number is shown in exponent form');
  });

  await check('team cards follow the order of the team gauges, and a click on one opens its team', async () => {
    await page.locator('#groups article[data-group]').first().waitFor({ timeout: 10000 });
    const gauges = await page.locator('.gauge-team[data-group]').evaluateAll((els) => els.map((e) => e.dataset.group));
    const cards = await page.locator('#groups article[data-group]').evaluateAll((els) => els.map((e) => e.dataset.group));
    const both = cards.filter((c) => gauges.includes(c));
    assert.deepEqual(both, gauges.filter((g) => cards.includes(g)), 'the cards are in another order than the gauges');
    assert.deepEqual(cards.slice(0, both.length), both, 'a card without a gauge comes before one with');
    const name = both[1] || both[0];
    await page.evaluate(() => { location.hash = ''; });
    await page.locator(`#groups article[data-group="${name}"] dl`).click({ position: { x: 5, y: 5 } });
    await page.waitForFunction((n) => decodeURIComponent(location.hash) === `#team/${n}`, name, { timeout: 5000 });
    await page.evaluate(() => { location.hash = ''; });
  });

  await check('the users pager says which rows it shows of how many', async () => {
    const label = page.locator('#users-page');
    await page.waitForFunction(() => /\d/.test(document.querySelector('#users-page')?.textContent || ''), null, { timeout: 10000 });
    const rows = await page.locator('#users-table tbody tr').count();
    const size = await page.locator('#users-size').inputValue().catch(() => '');
    const first = await apiOk(base, admin, 'GET', `/v1/dashboard/users?limit=${size || rows}&sort=used&order=desc`);
    const text = (await label.innerText()).trim();
    // the page counted before the API was asked: the total only grows (someone spending
    // for the first time), by a few people at most in between
    const of = (t) => Number(t.replace(/^.* of /, '').replace(/,/g, ''));
    assert.match(text, new RegExp(`^1–${rows.toLocaleString('en-US')} of [\\d,]+$`));
    assert.ok(of(text) <= first.total && of(text) >= first.total - 5, `the pager counts ${of(text)}, the API ${first.total}`);
    if (first.has_more) {
      await page.locator('#users-next').click();
      await page.waitForFunction(() => /^\d+–/.test(document.querySelector('#users-page')?.textContent || '') && !/^1–/.test(document.querySelector('#users-page')?.textContent || ''), null, { timeout: 10000 });
      const second = await page.locator('#users-table tbody tr').count();
      assert.match((await label.innerText()).trim(), new RegExp(`^${rows + 1}–${rows + second} of [\\d,]+$`));
      await page.locator('#users-prev').click();
      await page.waitForFunction(() => /^1–/.test(document.querySelector('#users-page')?.textContent || ''), null, { timeout: 10000 });
    }
  });

  await check("the user's view meters each capped product and says blocked when its cap is used up", async () => {
    const me = await apiOk(base, user, 'GET', '/v1/me');
    const [product, cap] = Object.entries(me.caps?.products || {})[0] || [];
    assert.ok(product, `the demo user has no product cap: ${JSON.stringify(me.caps)}`);
    const used = micros(String(me.products?.[product] ?? 0));
    const left = micros(String(cap)) - used;
    if (left > 0n) {
      const whole = left / 1000000n + 1n;
      await ingest(base, admin, `browser-polish-${Date.now().toString(36)}`, me.user, product, 'gpt-5-codex', whole.toString());
    }
    const after = await apiOk(base, user, 'GET', '/v1/me');
    assert.ok(micros(String(after.products[product])) >= micros(String(cap)), `${product} usage did not reach its cap`);
    const userCtx = await newContext(browser, { locale: 'en-US' });
    const mine = await signIn(userCtx, base, user, '/console/me');
    const row = mine.locator(`#my-products tr[data-key="${product}"]`);
    await row.waitFor({ timeout: 10000 });
    assert.equal(await row.getAttribute('data-blocked'), 'true', `${product} is not shown blocked`);
    assert.match(await row.innerText(), /Blocked/, 'the row does not say blocked');
    assert.equal(await row.locator('[role="meter"]').getAttribute('aria-valuenow'), '100.0');
    // the request form lets the person ask for that product
    await mine.waitForFunction((p) => [...document.querySelectorAll('#request-for option')].some((o) => o.value === `product:${p}`), product, { timeout: 10000 });
    await userCtx.close();
  });

  await check('axe-core finds no serious or critical violation on the admin, user and login pages', async () => {
    const found = [];
    for (const [token, landing] of [[admin, '/console/'], [user, '/console/me'], [null, '/console/login']]) {
      // the pages' CSP allows only their own scripts: axe is injected around it
      const ctx = await newContext(browser, { bypassCSP: true, locale: 'en-US' });
      const p = token ? await signIn(ctx, base, token, landing) : await ctx.newPage();
      if (!token) await p.goto(base + landing);
      if (landing === '/console/') {
        await gaugesRendered(p);
        await p.locator('#groups article').first().waitFor({ timeout: 10000 });
        await p.locator('#users-table tbody tr').first().waitFor({ timeout: 10000 });
      } else if (landing === '/console/me') {
        await p.waitForFunction(() => document.querySelector('#gauge-me')?.getAttribute('data-used'), null, { timeout: 10000 });
      }
      for (const v of await axeViolations(p)) found.push(`${landing}: ${v}`);
      await ctx.close();
    }
    assert.deepEqual(found, []);
  });

  await check('at 390 × 844 no table is clipped (each scrolls in a focusable region) and charts are 300 px wide or more', async () => {
    for (const [token, landing] of [[admin, '/console/'], [user, '/console/me']]) {
      const ctx = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'en-US' });
      const p = await signIn(ctx, base, token, landing);
      if (landing === '/console/') {
        await gaugesRendered(p);
        await p.locator('#users-table tbody tr').first().waitFor({ timeout: 10000 });
      }
      await p.locator('.chart').first().waitFor({ timeout: 15000 });
      const problems = await p.evaluate(() => {
        const out = [];
        for (const table of document.querySelectorAll('table')) {
          if (!table.getClientRects().length) continue;
          const wrap = table.closest('.table-wrap');
          const name = table.id || table.caption?.textContent || 'a table';
          if (!wrap) {
            if (table.getBoundingClientRect().right > window.innerWidth + 1) out.push(`${name} is wider than the screen and has no scrolling wrapper`);
            continue;
          }
          const style = getComputedStyle(wrap);
          if (!['auto', 'scroll'].includes(style.overflowX)) out.push(`${name}: its wrapper does not scroll (${style.overflowX})`);
          if (wrap.scrollWidth > wrap.clientWidth + 1 && wrap.tabIndex < 0) out.push(`${name} scrolls in a region the keyboard cannot focus`);
          if (wrap.getBoundingClientRect().right > window.innerWidth + 1) out.push(`${name}: its wrapper is wider than the screen`);
        }
        for (const chart of document.querySelectorAll('.chart')) {
          if (!chart.getClientRects().length) continue;
          const w = chart.getBoundingClientRect().width;
          if (w < 300) out.push(`a chart (${chart.getAttribute('aria-label')}) is ${Math.round(w)} px wide`);
          const canvas = chart.querySelector('canvas');
          if (canvas && canvas.getBoundingClientRect().width < 300) out.push(`a chart's drawing (${chart.getAttribute('aria-label')}) is ${Math.round(canvas.getBoundingClientRect().width)} px wide`);
        }
        return out;
      });
      assert.deepEqual(problems, [], `on ${landing}`);
      await ctx.close();
    }
  });

  await context.close();
}
