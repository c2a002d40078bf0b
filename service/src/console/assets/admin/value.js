// The value panel: where credits go (by the repository, ticket or workflow an event's
// context names, per team within each) and what they produce (credits per merged pull
// request and per outcome, per team), with the upload of an outcomes file.

import { $, api, el, fill, credits, count, percent, showError, errorBox, query, ApiFailure, parseJson } from '../common.js';
import { stackedBars } from '../chart.js';
import { teamLink, NO_GROUP } from './links.js';

/** @typedef {import('../common.js').Decimal} Decimal */

/**
 * `GET /v1/dashboard/value`.
 * @typedef {object} Value
 * @property {string} by
 * @property {string} since
 * @property {Decimal} used
 * @property {number} outcomes
 * @property {ValueRow[]} rows
 * @property {number} more
 * @property {ValueTeam[]} teams
 */

/**
 * @typedef {object} ValueRow
 * @property {string | null} key
 * @property {Decimal} used
 * @property {number | null} share
 * @property {number} events
 * @property {number | null} outcomes
 * @property {Decimal | null} credits_per_outcome
 * @property {{ team: string | null, used: Decimal }[]} teams
 */

/**
 * @typedef {object} ValueTeam
 * @property {string | null} team
 * @property {Decimal} used
 * @property {number} outcomes
 * @property {Record<string, number>} kinds
 * @property {Decimal | null} credits_per_outcome
 * @property {Decimal | null} credits_per_pull_request
 */

/** What each `by` is called in the headings. */
const NAMES = /** @type {Record<string, [string, string]>} */ ({
  'context.repo': ['Repository', 'repository'],
  'context.ticket': ['Ticket', 'ticket'],
  'context.workflow': ['Workflow', 'workflow'],
});

/** Values drawn in the chart (the largest). */
const CHARTED = 12;

const by = $('value-by', HTMLSelectElement);

/**
 * A team's name as a link to its page; people in no group are the team "(no group)".
 * @param {string | null} team
 */
const teamCell = (team) => teamLink(team || NO_GROUP);

/** Loads the value view for the chosen key and draws the chart and both tables. */
export async function loadValue() {
  const table = $('value-table', HTMLTableElement);
  const teams = $('value-teams', HTMLTableElement);
  const chart = $('value-chart');
  const [name, lower] = NAMES[by.value] || ['Value', 'value'];
  /** @type {Value} */
  let v;
  try {
    v = /** @type {Value} */ (await api(`/v1/dashboard/value${query({ by: by.value })}`));
  } catch (err) {
    showError(chart, err, 'the value view');
    fill(table.tBodies[0]);
    fill(teams.tBodies[0]);
    return;
  }
  const rows = v.rows || [];
  fill($('value-key-head'), name);
  if (table.caption) fill(table.caption, `Credits this period by ${lower}, largest first, with the teams that spent them`);
  const outcomesShown = by.value !== 'context.workflow';
  fill(table.tBodies[0], rows.length ? rows.map((r) => el('tr', { dataset: { key: r.key ?? '' } },
    el('th', { scope: 'row' }, r.key ?? '(none)'),
    el('td', { class: 'num', dataset: { credits: String(r.used) } }, credits(r.used)),
    el('td', { class: 'num' }, percent(r.share)),
    el('td', { class: 'num' }, outcomesShown && r.outcomes !== null ? count(r.outcomes) : '—'),
    el('td', { class: 'num', dataset: { perOutcome: String(r.credits_per_outcome ?? '') } }, credits(r.credits_per_outcome)),
    el('td', { class: 'small' }, r.teams.slice(0, 3).flatMap((t, i) => [i ? ' · ' : '', teamCell(t.team), ` ${credits(t.used)}`]),
      r.teams.length > 3 ? ` · ${r.teams.length - 3} more` : ''))) : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'Nothing recorded for this period yet.')));
  if (v.more) table.tBodies[0].append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, `${count(v.more)} more with less spend`)));
  // a bar per value, split by team: which team's spend it is
  const charted = rows.filter((r) => r.key !== null).slice(0, CHARTED);
  const teamKeys = [...new Set(charted.flatMap((r) => r.teams.map((t) => t.team || NO_GROUP)))];
  stackedBars(chart, {
    labels: charted.map((r) => String(r.key)),
    series: teamKeys.map((t) => ({ key: t, label: t, values: charted.map((r) => r.teams.find((x) => (x.team || NO_GROUP) === t)?.used ?? 0) })),
  }, { title: `Credits per ${lower} this period, by team`, tableCaption: `Credits per ${lower} by team`, labelName: name });
  fill(teams.tBodies[0], (v.teams || []).length ? v.teams.map((t) => el('tr', { dataset: { team: t.team || NO_GROUP } },
    el('th', { scope: 'row' }, teamCell(t.team)),
    el('td', { class: 'num', dataset: { credits: String(t.used) } }, credits(t.used)),
    el('td', { class: 'num', dataset: { prs: String(t.kinds?.pull_request ?? 0) } }, count(t.kinds?.pull_request ?? 0)),
    el('td', { class: 'num' }, count(t.kinds?.ticket ?? 0)),
    el('td', { class: 'num' }, count(t.outcomes)),
    el('td', { class: 'num', dataset: { perOutcome: String(t.credits_per_outcome ?? '') } }, credits(t.credits_per_outcome)),
    el('td', { class: 'num', dataset: { perPr: String(t.credits_per_pull_request ?? '') } }, credits(t.credits_per_pull_request)))) : el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No spend or outcomes this period yet.')));
  fill($('value-outcomes-count'), v.outcomes ? `${count(v.outcomes)} outcomes this period.` : 'No outcomes this period yet: attach a file below.');
}

/**
 * Sends an outcomes file as it is (CSV or JSON Lines).
 * @param {File} file
 * @returns {Promise<{ received: number, stored: number, unchanged: number }>}
 */
async function upload(file) {
  const path = '/v1/outcomes';
  const jsonl = /\.(jsonl|ndjson)$/i.test(file.name);
  let response;
  try {
    response = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json', 'X-Budgit-Console': '1', 'Content-Type': jsonl ? 'application/x-ndjson' : 'text/csv' },
      body: file,
    });
  } catch {
    throw new ApiFailure('POST', path, 0, 'network', 'the server could not be reached');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const answer = /** @type {import('../common.js').ErrorAnswer & { diagnostics?: import('../common.js').Diagnostic[] } | null} */ (data);
    const err = answer && answer.error ? answer.error : {};
    const failure = new ApiFailure('POST', path, response.status, err.code || `http/${response.status}`, err.message || `the server answered ${response.status}`);
    failure.body = answer;
    throw failure;
  }
  return /** @type {{ received: number, stored: number, unchanged: number }} */ (data);
}

const form = $('value-upload', HTMLFormElement);
const input = $('value-file', HTMLInputElement);
const result = $('value-upload-result');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const file = input.files?.[0];
  if (!file) {
    fill(result, el('div', { class: 'error', role: 'alert' }, 'Choose an outcomes file first.'));
    return;
  }
  fill(result, el('p', { class: 'loading' }, `Uploading ${file.name}…`));
  try {
    const done = await upload(file);
    fill(result, el('p', { class: 'success', role: 'status' },
      `${file.name}: ${count(done.received)} outcomes, ${count(done.stored)} new, ${count(done.unchanged)} already stored.`));
    await loadValue();
  } catch (err) {
    fill(result, uploadError(err, file.name));
  }
});

/**
 * Why an upload was refused, with each bad row's line and column.
 * @param {unknown} err
 * @param {string} name the file's name
 * @returns {HTMLDivElement}
 */
function uploadError(err, name) {
  if (!(err instanceof ApiFailure)) return errorBox(err, `the upload of ${name}`);
  const box = el('div', { class: 'error', role: 'alert', dataset: { code: err.code } },
    `${name} was not stored: ${err.message} `, el('code', {}, `(${err.code}${err.status ? `, HTTP ${err.status}` : ''})`));
  /** @type {{ message?: string, line?: number, column?: number }[]} */
  const rows = Array.isArray(err.body?.diagnostics) ? err.body.diagnostics : [];
  if (rows.length) {
    box.append(el('ul', {}, rows.slice(0, 20).map((d) => el('li', {}, `${name}:${d.line ?? '?'}:${d.column ?? '?'}: ${d.message || ''}`))));
  }
  return box;
}

by.addEventListener('change', loadValue);
