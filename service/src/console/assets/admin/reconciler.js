// The reconciler's status in the page header: its last run, the commit it applied,
// drift and failures.

import { $, api, el, fill, count, shortCommit, when, ago, ApiFailure } from '../common.js';

/**
 * `GET /v1/reconciler/status`: the last run reported, if any.
 * @typedef {object} ReconcilerStatus
 * @property {ReconcilerRun | null} [last]
 */

/**
 * @typedef {object} ReconcilerRun
 * @property {boolean} [ok]
 * @property {string} at RFC 3339
 * @property {string | null} [commit]
 * @property {number} [applied]
 * @property {number} [drift]
 * @property {string[]} [failures]
 */

/** Loads the status into the header (its error code when it cannot). */
export async function loadReconciler() {
  const node = $('reconciler');
  /** @type {ReconcilerStatus | null} */
  let r;
  try {
    r = /** @type {ReconcilerStatus | null} */ (await api('/v1/reconciler/status'));
  } catch (err) {
    fill(node, 'Reconciler: status unavailable ', el('code', {}, `(${err instanceof ApiFailure ? err.code : undefined})`));
    return;
  }
  const last = r && r.last;
  if (!last) {
    fill(node, 'Reconciler: no run reported yet');
    return;
  }
  const failures = Array.isArray(last.failures) ? last.failures : [];
  const ok = last.ok && failures.length === 0;
  fill(node, 'Reconciler: ',
    el('span', { class: ok ? 'good' : 'bad' }, ok ? '✓ ok' : '✕ failing'),
    ` · last run `, el('time', { datetime: last.at, title: when(last.at) }, ago(last.at)),
    ` · applied commit `, el('code', { title: last.commit || '' }, shortCommit(last.commit)),
    ` · ${count(last.applied)} applied · drift ${count(last.drift)} · `,
    failures.length ? el('span', { class: 'bad', title: failures.slice(0, 5).join('\n') }, `${count(failures.length)} failure${failures.length === 1 ? '' : 's'}: ${failures[0]}`) : 'no failures');
  node.dataset.ok = String(ok);
  node.dataset.commit = last.commit || '';
}
