// The default limit: the Workspace's amount, caps, period and where it is written;
// a new default is proposed as a group's limit is (a branch commit with its plan).

import { $, api, el, fill, credits, showError, errorBox } from '../common.js';
import { loadProposals, proposalView } from './proposals.js';

/**
 * `GET /v1/workspace/default`.
 * @typedef {object} DefaultLimit
 * @property {string} workspace
 * @property {import('../common.js').Decimal} credits
 * @property {Record<string, import('../common.js').Decimal>} [products]
 * @property {Record<string, import('../common.js').Decimal>} [models]
 * @property {string} period
 * @property {string} timezone
 * @property {string} file
 * @property {number} line
 * @property {string} commit
 */

const form = $('default-form', HTMLFormElement);

/**
 * Caps as `name: credits` text.
 * @param {Record<string, import('../common.js').Decimal> | undefined} caps
 * @returns {string}
 */
function capsText(caps) {
  const entries = Object.entries(caps || {});
  return entries.length ? entries.map(([k, v]) => `${k}: ${credits(v)}`).join(', ') : 'none';
}

/** Loads the default limit. */
export async function loadDefault() {
  const node = $('default-view');
  try {
    const d = /** @type {DefaultLimit} */ (await api('/v1/workspace/default'));
    fill(node, el('dl', { class: 'default', dataset: { credits: String(d.credits), commit: d.commit } },
      el('dt', {}, 'Credits per user'), el('dd', { id: 'default-amount' }, credits(d.credits)),
      el('dt', {}, 'Period'), el('dd', {}, `${d.period} (${d.timezone})`),
      el('dt', {}, 'Product caps'), el('dd', {}, capsText(d.products)),
      el('dt', {}, 'Model caps'), el('dd', {}, capsText(d.models)),
      el('dt', {}, 'Written in'), el('dd', {}, el('code', {}, `${d.file}:${d.line}`))));
    const input = $('default-credits', HTMLInputElement);
    if (!input.value) input.value = String(d.credits);
  } catch (err) {
    showError(node, err, 'the default limit');
  }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const result = $('default-result');
  const button = $('default-submit', HTMLButtonElement);
  const data = new FormData(form);
  button.disabled = true;
  try {
    const p = /** @type {import('./proposals.js').Proposal} */ (await api('/v1/workspace/default/propose', {
      method: 'POST',
      body: { credits: Number(data.get('credits')), reason: String(data.get('reason') || '') },
    }));
    fill(result, proposalView(p, 'Proposed'));
    loadProposals();
  } catch (err) {
    fill(result, errorBox(err, 'the proposal'));
  } finally {
    button.disabled = false;
  }
});
