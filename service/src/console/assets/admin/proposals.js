// Proposals: a committed proposal with its plan (after a change to a team budget or an
// override for a credit request), and the latest proposals.

import { $, api, el, fill, shortCommit, ago, showError, markdown } from '../common.js';

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
 * A proposal: branch, commit and its plan.
 * @param {Proposal} p
 * @param {string} heading
 * @returns {HTMLDivElement}
 */
export function proposalView(p, heading) {
  const summary = p.plan?.summary && typeof p.plan.summary === 'object'
    ? Object.entries(p.plan.summary).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join(' · ')
    : '';
  return el('div', { class: 'success', dataset: { commit: p.commit || '', branch: p.branch || '' } },
    el('h3', {}, heading, p.title ? `: ${p.title}` : ''),
    el('dl', {},
      el('dt', {}, 'Branch'), el('dd', {}, el('code', { class: 'branch' }, p.branch || '—')),
      el('dt', {}, 'Commit'), el('dd', {}, el('code', { class: 'commit' }, p.commit || '—')),
      p.base ? [el('dt', {}, 'Based on'), el('dd', {}, el('code', {}, `${p.base.ref || ''} ${shortCommit(p.base.commit)}`))] : null,
      p.file ? [el('dt', {}, 'File'), el('dd', {}, el('code', {}, p.file))] : null,
      summary && !p.plan?.markdown ? [el('dt', {}, 'Plan'), el('dd', {}, summary)] : null),
    p.plan?.markdown ? el('details', { open: true }, el('summary', {}, 'The plan'), markdown(p.plan.markdown),
      el('details', {}, el('summary', {}, 'Plan as text'), el('pre', { class: 'plan' }, p.plan.markdown))) : null,
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
