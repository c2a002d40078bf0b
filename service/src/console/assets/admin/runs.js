// The reconciler's runs, newest first: when, whether it succeeded, the commit it
// applied, its writes and errors (from the run reports the reconciler sends).

import { $, api, el, fill, count, shortCommit, when, ago, errorBox, query } from '../common.js';

/**
 * A row of `GET /v1/reconciler/runs`.
 * @typedef {object} RunRow
 * @property {number} seq
 * @property {string} at RFC 3339
 * @property {boolean} [ok]
 * @property {string | null} [commit]
 * @property {number} [writes]
 * @property {number} [unchanged]
 * @property {number} [drift]
 * @property {string[]} [failures]
 */

const moreButton = $('runs-more', HTMLButtonElement);
let after = /** @type {string | null} */ (null);
moreButton.addEventListener('click', () => loadRuns(true));

/**
 * @param {RunRow} r
 * @returns {HTMLTableRowElement}
 */
function rowView(r) {
  const failures = r.failures || [];
  const ok = Boolean(r.ok) && failures.length === 0;
  return /** @type {HTMLTableRowElement} */ (el('tr', { dataset: { seq: String(r.seq), commit: r.commit || '', ok: String(ok) } },
    el('td', {}, el('time', { datetime: r.at, title: when(r.at) }, ago(r.at))),
    el('td', {}, el('span', { class: ok ? 'status ok' : 'status exceeded' }, ok ? '✓ ok' : '✕ failed')),
    el('td', {}, el('code', { title: r.commit || '' }, shortCommit(r.commit))),
    el('td', { class: 'num' }, count(r.writes)),
    el('td', { class: 'num' }, count(r.unchanged)),
    el('td', { class: 'num' }, count(r.drift)),
    el('td', { title: failures.slice(0, 5).join('\n') }, failures.length ? `${count(failures.length)}: ${failures[0]}` : 'none')));
}

/**
 * Loads the newest runs (or the next page, appended).
 * @param {boolean} [more]
 */
export async function loadRuns(more = false) {
  const body = $('runs-table', HTMLTableElement).tBodies[0];
  if (!more) after = null;
  /** @type {import('../common.js').Page<RunRow>} */
  let page;
  try {
    page = /** @type {import('../common.js').Page<RunRow>} */ (await api(`/v1/reconciler/runs${query({ limit: 20, after })}`));
  } catch (err) {
    fill(body, el('tr', {}, el('td', { colspan: 7 }, errorBox(err, 'the runs'))));
    return;
  }
  const rows = (page.data || []).map(rowView);
  if (more) body.append(...rows);
  else fill(body, rows.length ? rows : el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No run reported yet.')));
  after = page.has_more && page.next !== null && page.next !== undefined ? String(page.next) : null;
  moreButton.hidden = !after;
}
