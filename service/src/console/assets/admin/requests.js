// The credit requests panel: people's requests for more credits, each with its context;
// a pending one can be turned into an override proposal (a branch commit with its
// plan) or declined with a reason.

import { $, api, el, fill, credits, count, shortCommit, when, ago, showError, errorBox, query, lifecycleView, requestNeed } from '../common.js';
import { loadProposals, proposalView } from './proposals.js';

/**
 * A request of `GET /v1/requests`.
 * @typedef {object} CreditRequest
 * @property {number | string} id
 * @property {string} user
 * @property {import('../common.js').Decimal} credits
 * @property {number} days
 * @property {string} reason
 * @property {unknown} [context] what the person's page attached (their standing, a note)
 * @property {string} created_at RFC 3339
 * @property {string} status `pending`, `proposed`, `declined`…
 * @property {string | null} [decision_reason]
 * @property {{ branch?: string, commit?: string } | null} [proposal]
 * @property {string | null} [product]
 * @property {string | null} [model]
 * @property {import('../common.js').RequestLifecycle} [lifecycle]
 */

/** The cursor of the next page of requests, when there is one. */
let requestsAfter = /** @type {string | null} */ (null);

const statusSelect = $('requests-status', HTMLSelectElement);
const moreButton = $('requests-more', HTMLButtonElement);

/**
 * A request's context: its fields as a list.
 * @param {unknown} c
 * @returns {Node | string}
 */
function contextView(c) {
  if (c === null || c === undefined) return el('span', { class: 'muted' }, 'none given');
  if (typeof c !== 'object') return String(c);
  return el('dl', {}, Object.entries(c).map(([k, v]) => [el('dt', {}, k.replace(/_/g, ' ')),
    el('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : decimalText(v))]));
}

/**
 * A value as text; decimal strings (credits) are shown rounded for reading.
 * @param {unknown} v
 * @returns {string}
 */
function decimalText(v) {
  return typeof v === 'string' && /^-?\d+\.\d{3,}$/.test(v) ? credits(v) : String(v);
}

/**
 * A request's card, with the propose and decline actions while it is pending.
 * @param {CreditRequest} r
 * @returns {HTMLElement}
 */
function requestCard(r) {
  const result = el('div', { class: 'result', 'aria-live': 'polite' });
  const actions = el('div', { class: 'actions' });
  const statusCell = el('dd', {}, el('span', { class: 'request-status' }, r.status), r.decision_reason ? ` (${r.decision_reason})` : '',
    lifecycleView(r.lifecycle));
  const card = el('article', { class: 'card request', dataset: { id: r.id, status: r.status, user: r.user } },
    el('h3', {}, `#${r.id} · ${r.user}`),
    el('dl', {},
      el('dt', {}, 'Asks for'), el('dd', {}, `${credits(r.credits)} credits for ${count(r.days)} day${r.days === 1 ? '' : 's'}`),
      el('dt', {}, 'For'), el('dd', { class: 'request-need' }, requestNeed(r)),
      el('dt', {}, 'Reason'), el('dd', {}, r.reason),
      el('dt', {}, 'Context'), el('dd', {}, contextView(r.context)),
      el('dt', {}, 'Asked'), el('dd', {}, el('time', { datetime: r.created_at, title: when(r.created_at) }, ago(r.created_at))),
      el('dt', {}, 'Status'), statusCell,
      r.proposal?.branch ? [el('dt', {}, 'Proposal'), el('dd', {}, el('code', {}, r.proposal.branch), ' @ ', el('code', { class: 'commit' }, shortCommit(r.proposal.commit)))] : null),
    actions, result);
  if (r.status === 'pending') {
    const propose = el('button', { type: 'button', class: 'primary', 'aria-label': `Propose an override for request ${r.id}` }, 'Propose override');
    const declineReason = el('textarea', { id: `decline-${r.id}`, required: true, maxlength: 2000 });
    const declineForm = el('form', { class: 'stack', hidden: true },
      el('div', { class: 'field' }, el('label', { for: `decline-${r.id}` }, 'Why decline?'), declineReason),
      el('div', {}, el('button', { type: 'submit', class: 'danger' }, 'Decline request'), ' ',
        el('button', { type: 'button', onclick: () => { declineForm.hidden = true; decline.focus(); } }, 'Cancel')));
    const decline = el('button', { type: 'button', class: 'danger', 'aria-label': `Decline request ${r.id}`, 'aria-expanded': 'false' }, 'Decline');
    propose.addEventListener('click', async () => {
      propose.disabled = true;
      decline.disabled = true;
      fill(result, el('p', { class: 'loading' }, 'Writing the override and computing the plan…'));
      try {
        const made = /** @type {import('./proposals.js').Proposal} */ (await api(`/v1/requests/${encodeURIComponent(r.id)}/propose`, { method: 'POST' }));
        fill(result, el('p', { class: 'success', role: 'status' }, 'Proposed on ', el('code', {}, made.branch), ' @ ',
          el('code', { class: 'commit', title: made.commit }, shortCommit(made.commit)), ' (the plan is below the requests)'));
        fill($('request-result'), proposalView(made, `Override proposed for request #${r.id}`));
        card.dataset.status = 'proposed';
        fill(statusCell, el('span', { class: 'request-status' }, 'proposed'));
        actions.replaceChildren();
        loadProposals();
      } catch (err) {
        fill(result, errorBox(err, 'the override proposal'));
        propose.disabled = false;
        decline.disabled = false;
      }
    });
    decline.addEventListener('click', () => {
      declineForm.hidden = !declineForm.hidden;
      decline.setAttribute('aria-expanded', String(!declineForm.hidden));
      if (!declineForm.hidden) declineReason.focus();
    });
    declineForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const reason = declineReason.value.trim();
      if (!reason) {
        fill(result, el('div', { class: 'error', role: 'alert' }, 'say why the request is declined'));
        declineReason.focus();
        return;
      }
      try {
        await api(`/v1/requests/${encodeURIComponent(r.id)}/decline`, { method: 'POST', body: { reason } });
        card.dataset.status = 'declined';
        fill(statusCell, `declined (${reason})`);
        actions.replaceChildren();
        fill(result, el('p', { class: 'notice', role: 'status' }, `Declined: ${reason}`));
      } catch (err) {
        fill(result, errorBox(err, 'declining'));
      }
    });
    actions.append(propose, decline, declineForm);
  }
  return card;
}

/**
 * Loads the first page of requests with the chosen status, or (`more`) the next page.
 * @param {boolean} [more]
 */
export async function loadRequests(more = false) {
  const node = $('requests');
  if (!more) requestsAfter = null;
  /** @type {import('../common.js').Page<CreditRequest>} */
  let r;
  try {
    r = /** @type {import('../common.js').Page<CreditRequest>} */ (await api(`/v1/requests${query({ status: statusSelect.value, limit: 50, after: requestsAfter })}`));
  } catch (err) {
    showError(node, err, 'the credit requests');
    return;
  }
  const rows = r.data || [];
  const cards = rows.map(requestCard);
  if (more) node.append(...cards);
  else fill(node, cards.length ? cards : el('p', { class: 'muted' }, `No ${statusSelect.value || ''} request.`));
  requestsAfter = r.has_more ? r.next ?? null : null;
  moreButton.hidden = !r.has_more;
}

statusSelect.addEventListener('change', () => loadRequests());
moreButton.addEventListener('click', () => loadRequests(true));
