// Proposals: a committed proposal with its plan (after a change to a team budget or an
// override for a credit request), and the latest proposals.

import {
  $, api, el, fill, shortCommit, ago, showError, markdown, lazyDetails, count, credits, signedCredits, micros, fromMicros,
} from '../common.js';

/**
 * A proposal as `POST /v1/proposals` and `POST /v1/requests/{id}/propose` answer it.
 * @typedef {object} Proposal
 * @property {string} [title]
 * @property {string} branch
 * @property {string} commit
 * @property {{ ref?: string, commit?: string }} [base]
 * @property {string} [file]
 * @property {{ summary?: unknown, markdown?: string }} [plan]
 */

/**
 * A row of `GET /v1/proposals`.
 * @typedef {object} ProposalRow
 * @property {string} [title]
 * @property {string} [subject]
 * @property {string} branch
 * @property {string} commit
 * @property {string} created_at RFC 3339
 */

/**
 * The counts of a plan (`budgit plan --format json`'s `summary`) the console shows first.
 * @typedef {object} PlanSummary
 * @property {number} [users]
 * @property {number} [users_affected]
 * @property {number} [raised]
 * @property {number} [lowered]
 * @property {number} [caps_changed]
 * @property {number} [newly_blocked]
 * @property {number} [newly_unblocked]
 * @property {number} [newly_blocked_on_caps]
 * @property {number} [newly_unblocked_on_caps]
 * @property {import('../common.js').Decimal} [exposure_before]
 * @property {import('../common.js').Decimal} [exposure_after]
 * @property {number} [errors]
 */

/** The counts shown, in order: the summary's key and how it is told. */
const COUNTS = /** @type {const} */ ([
  ['users_affected', 'affected'],
  ['raised', 'raised'],
  ['lowered', 'lowered'],
  ['caps_changed', 'caps only'],
  ['newly_blocked', 'newly blocked'],
  ['newly_unblocked', 'newly unblocked'],
  ['newly_blocked_on_caps', 'newly blocked on a cap'],
  ['newly_unblocked_on_caps', 'newly unblocked on a cap'],
]);

/** How many per-user changes show before the rest is behind a disclosure. */
const PLAN_ROWS = 10;

/**
 * The plan's counts as a compact list: each with its number in `data-count`.
 * @param {PlanSummary} s
 * @returns {HTMLElement}
 */
function planCounts(s) {
  const exposure = s.exposure_before !== undefined && s.exposure_after !== undefined
    ? el('li', { dataset: { key: 'exposure', before: String(s.exposure_before), after: String(s.exposure_after) } },
      'exposure ', el('strong', {}, credits(s.exposure_before)), ' → ', el('strong', {}, credits(s.exposure_after)),
      ` (${signedCredits(fromMicros(micros(s.exposure_after) - micros(s.exposure_before)))})`)
    : null;
  return el('ul', { class: 'plan-counts' },
    COUNTS.filter(([k]) => typeof s[k] === 'number' && (s[k] || k === 'users_affected' || k === 'raised' || k === 'lowered')).map(([k, label]) =>
      el('li', { dataset: { key: k, count: String(s[k]) } }, el('strong', {}, count(s[k])), ` ${label}`,
        k === 'users_affected' && typeof s.users === 'number' ? ` of ${count(s.users)}` : '')),
    exposure);
}

/**
 * The plan's per-user table (its markdown lines: header, rule, rows, largest change
 * first as `budgit plan` writes them) and the note of rows it left out, if any.
 * @param {string} text
 * @returns {{ head: string[], rows: string[], more: string | null }}
 */
function userTable(text) {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^\|\s*user\s*\|/.test(l));
  if (at < 0) return { head: [], rows: [], more: null };
  let end = at + 2;
  while (end < lines.length && /^\s*\|/.test(lines[end])) end += 1;
  const more = lines.slice(end, end + 3).find((l) => /^…and \d+ more/.test(l.trim())) || null;
  // the change beside the person: on a narrow column it stays in sight as the table scrolls
  const cells = (/** @type {string} */ l) => l.trim().replace(/^\||\|$/g, '').split('|');
  const order = cells(lines[at]).map((c) => c.trim());
  const change = order.indexOf('change');
  /** @param {string} l */
  const moved = (l) => {
    if (change < 2) return l;
    const c = cells(l);
    return `|${[c[0], c[change], ...c.slice(1, change), ...c.slice(change + 1)].join('|')}|`;
  };
  return { head: lines.slice(at, at + 2).map(moved), rows: lines.slice(at + 2, end).map(moved), more };
}

/**
 * A proposal: branch, commit and its plan, compact: the counts, the largest per-user
 * changes, and the rest (the other people, the whole plan, the plan as text) behind
 * disclosures built when opened, so a plan of 100,000 people stays a screenful.
 * @param {Proposal} p
 * @param {string} heading
 * @returns {HTMLDivElement}
 */
export function proposalView(p, heading) {
  const summary = p.plan?.summary && typeof p.plan.summary === 'object' ? /** @type {PlanSummary} */ (p.plan.summary) : null;
  const text = p.plan?.markdown || '';
  const users = userTable(text);
  const people = users.rows.length;
  return el('div', { class: 'success proposal', dataset: { commit: p.commit || '', branch: p.branch || '' } },
    el('h3', {}, heading, p.title ? `: ${p.title}` : ''),
    el('dl', {},
      el('dt', {}, 'Branch'), el('dd', {}, el('code', { class: 'branch' }, p.branch || '—')),
      el('dt', {}, 'Commit'), el('dd', {}, el('code', { class: 'commit' }, p.commit || '—')),
      p.base ? [el('dt', {}, 'Based on'), el('dd', {}, el('code', {}, `${p.base.ref || ''} ${shortCommit(p.base.commit)}`))] : null,
      p.file ? [el('dt', {}, 'File'), el('dd', {}, el('code', {}, p.file))] : null),
    summary ? planCounts(summary) : null,
    people ? el('div', { class: 'plan-users' },
      el('h4', {}, people > PLAN_ROWS ? `The ${count(PLAN_ROWS)} largest changes` : 'Changes per person'),
      markdown([...users.head, ...users.rows.slice(0, PLAN_ROWS)].join('\n')),
      people > PLAN_ROWS ? lazyDetails(`${count(people - PLAN_ROWS)} more people`, () =>
        markdown([...users.head, ...users.rows.slice(PLAN_ROWS)].join('\n'))) : null,
      // the plan lists at most a few hundred people; the counts above hold everyone
      users.more ? el('p', { class: 'small muted' }, users.more.trim(), ' (', el('code', {}, 'budgit plan'), ' on the branch lists everyone)') : null) : null,
    text ? lazyDetails('The whole plan', () => markdown(text, { rows: PLAN_ROWS })) : null,
    text ? lazyDetails('Plan as text', () => el('pre', { class: 'plan' }, text)) : null,
    el('p', { class: 'small' }, 'Review and merge the branch to apply it; the reconciler applies what is merged.'));
}

/** Loads the five latest proposals. */
export async function loadProposals() {
  const node = $('proposals');
  try {
    const r = /** @type {import('../common.js').Page<ProposalRow>} */ (await api('/v1/proposals?limit=5'));
    const rows = r.data || [];
    fill(node, rows.length ? el('ul', {}, rows.map((p) => el('li', { dataset: { commit: p.commit } },
      el('strong', {}, p.title || p.subject), ' · ', el('code', {}, p.branch), ' @ ', el('code', { title: p.commit }, shortCommit(p.commit)),
      el('span', { class: 'muted small' }, ` · ${ago(p.created_at)}`)))) : el('p', { class: 'muted' }, 'No proposal yet.'));
  } catch (err) {
    showError(node, err, 'the proposals');
  }
}
