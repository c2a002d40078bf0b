// The team budgets panel: each group's limit, caps, pool and members as the policies at
// the approved revision define them, and the form that proposes a change to one (a
// branch commit with its plan, never a direct write).

import {
  $, api, el, fill, credits, count, shortCommit, showError, errorBox, productName, PRODUCT_NAMES,
} from '../common.js';
import { loadProposals, proposalView } from './proposals.js';
import { summaryTeams } from './overview.js';
import { teamLink, drillHref, NO_GROUP } from './links.js';

/** @typedef {import('../common.js').Decimal} Decimal */

/**
 * A group of `GET /v1/groups`.
 * @typedef {object} Group
 * @property {string} name
 * @property {string} [description]
 * @property {GroupLimit | null} [limit]
 * @property {Decimal | null} [pool]
 * @property {Decimal | null} [pool_used]
 * @property {number} [members]
 * @property {Decimal} [used]
 * @property {string[]} [owners]
 * @property {string} file the policy file that defines it
 * @property {number} [line]
 * @property {number} [limit_line]
 * @property {string} [commit]
 */

/**
 * @typedef {object} GroupLimit
 * @property {Decimal | null} [credits]
 * @property {Record<string, Decimal>} [products]
 * @property {Record<string, Decimal>} [models]
 */

/** `GET /v1/groups`: the groups, and how many validation errors the policies have. */
/** @typedef {import('../common.js').Page<Group> & { errors?: number }} Groups */

/** A kind of cap, as the proposal body names it. */
/** @typedef {'products' | 'models'} CapKind */

/**
 * A cap of the group being edited: kept (maybe with a new value), removed, or new
 * (`original` null).
 * @typedef {object} CapEdit
 * @property {CapKind} kind
 * @property {string} name
 * @property {string | null} original
 * @property {string} value
 * @property {boolean} removed
 */

/** The groups of the last load. */
let groups = /** @type {Group[]} */ ([]);

const form = $('propose-form', HTMLFormElement);
const groupSelect = $('propose-group', HTMLSelectElement);
const creditsInput = $('propose-credits', HTMLInputElement);
const poolInput = $('propose-pool', HTMLInputElement);
const reasonInput = $('propose-reason', HTMLTextAreaElement);
const submit = $('propose-submit', HTMLButtonElement);
const capKindSelect = $('cap-kind', HTMLSelectElement);
const capName = $('cap-name', HTMLInputElement);
const capCredits = $('cap-credits', HTMLInputElement);

/** Loads the groups into their cards and the form's group choice. */
export async function loadGroups() {
  const node = $('groups');
  /** @type {Groups} */
  let r;
  try {
    r = /** @type {Groups} */ (await api('/v1/groups'));
  } catch (err) {
    showError(node, err, 'the team budgets');
    submit.disabled = true;
    return;
  }
  groups = r.data || [];
  submit.disabled = false;
  const current = groupSelect.value;
  fill(groupSelect, groups.map((g) => el('option', { value: g.name }, g.name)));
  if (groups.some((g) => g.name === current)) groupSelect.value = current;
  prefill();
  // The cards in the order of the team gauges above them, so a team is found at the same
  // place in both; a group without members (no gauge) comes after, in the policies' order.
  const teams = summaryTeams();
  const place = new Map(teams.map((t, i) => [t.group, i]));
  const at = (/** @type {string} */ name) => place.get(name) ?? teams.length;
  const ungrouped = teams.find((t) => t.group === NO_GROUP);
  const cards = [...groups.map((g) => ({ name: g.name, card: groupCard(g) })),
    ...(ungrouped ? [{ name: NO_GROUP, card: noGroupCard(ungrouped) }] : [])];
  cards.sort((a, b) => at(a.name) - at(b.name));
  fill(node, cards.length ? cards.map((c) => c.card) : el('p', { class: 'muted' }, 'The policies define no group.'));
  if (r.errors) node.prepend(el('p', { class: 'error', role: 'alert' }, `The policies at the approved revision have ${count(r.errors)} validation error${r.errors === 1 ? '' : 's'}.`));
}

/**
 * Caps as "ChatGPT 500 · Codex 300", or null when there is none.
 * @param {Record<string, Decimal> | undefined} m
 * @returns {string | null}
 */
function caps(m) {
  const e = Object.entries(m || {});
  return e.length ? e.map(([k, v]) => `${productName(k)} ${credits(v)}`).join(' · ') : null;
}

/**
 * A group's card.
 * @param {Group} g
 * @returns {HTMLElement}
 */
function groupCard(g) {
  const line = g.limit_line || g.line;
  /**
   * @param {string} label
   * @param {...import('../common.js').Child} value
   */
  const dd = (label, ...value) => [el('dt', {}, label), el('dd', {}, ...value)];
  return el('article', { class: 'card team-card', dataset: { group: g.name }, 'aria-labelledby': `group-${cssId(g.name)}`, onclick: openTeam(g.name) },
    el('h3', { id: `group-${cssId(g.name)}` }, teamLink(g.name)),
    g.description ? el('p', { class: 'small muted' }, g.description) : null,
    el('dl', {},
      dd('Limit', g.limit?.credits !== null && g.limit?.credits !== undefined ? `${credits(g.limit.credits)} credits per member` : 'none'),
      caps(g.limit?.products) ? dd('Product caps', caps(g.limit?.products)) : null,
      caps(g.limit?.models) ? dd('Model caps', caps(g.limit?.models)) : null,
      dd('Pool', g.pool !== null && g.pool !== undefined ? `${credits(g.pool)} credits${g.pool_used !== null && g.pool_used !== undefined ? ` (${credits(g.pool_used)} used)` : ''}` : 'none'),
      dd('Members', count(g.members)),
      dd('Used', `${credits(g.used)} credits`),
      g.owners && g.owners.length ? dd('Owners', g.owners.join(', ')) : null,
      dd('Defined in', el('code', {}, `${g.file}${line ? `:${line}` : ''}`)),
      dd('Commit', el('code', { title: g.commit || '' }, shortCommit(g.commit)))),
    el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => startProposal(g.name), 'aria-label': `Propose change for ${g.name}` }, 'Propose change')));
}

/**
 * The card of the users with a limit and no group: no group of the policies (nothing to
 * propose), but a team the views count like any other.
 * @param {import('./overview.js').Team} t
 * @returns {HTMLElement}
 */
function noGroupCard(t) {
  return el('article', { class: 'card team-card', dataset: { group: t.group }, 'aria-labelledby': 'group-no-group', onclick: openTeam(t.group) },
    el('h3', { id: 'group-no-group' }, teamLink(t.group)),
    el('p', { class: 'small muted' }, 'Users with an applied limit and no group: their limit is the workspace default or an override.'),
    el('dl', {},
      el('dt', {}, 'Members'), el('dd', {}, count(t.members)),
      el('dt', {}, 'Used'), el('dd', {}, `${credits(t.used)} credits`),
      el('dt', {}, 'Sum of member limits'), el('dd', {}, `${credits(t.budget)} credits`)));
}

/**
 * A click anywhere on a team's card opens the team's page (`#team/<name>`), as its
 * heading's link does for the keyboard; a click on a control of the card stays that
 * control's, and selecting text does not navigate.
 * @param {string} name
 * @returns {(e: MouseEvent) => void}
 */
function openTeam(name) {
  return (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (target?.closest('a, button, input, select, textarea, summary, label')) return;
    if (String(window.getSelection() || '')) return;
    location.hash = drillHref('team', name);
  };
}

/**
 * A name made safe for an element id.
 * @param {string} s
 * @returns {string}
 */
function cssId(s) {
  return String(s).replace(/[^a-zA-Z0-9_-]/g, '-');
}

/** Fills the form with the chosen group's current values. */
function prefill() {
  const g = groups.find((x) => x.name === groupSelect.value);
  if (!g) return;
  creditsInput.value = String(g.limit?.credits ?? '');
  poolInput.value = String(g.pool ?? '');
  form.dataset.credits = String(g.limit?.credits ?? '');
  form.dataset.pool = String(g.pool ?? '');
  /** @type {CapKind[]} */
  const kinds = ['products', 'models'];
  capEdits = kinds.flatMap((kind) => Object.entries(g.limit?.[kind] || {})
    .map(([name, value]) => ({ kind, name, original: String(value), value: String(value), removed: false })));
  renderCaps();
}

// Caps of the group being edited: each one kept (maybe with a new value), removed, or new.
let capEdits = /** @type {CapEdit[]} */ ([]);
const CAP_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;
/** @param {CapKind} kind */
const capKind = (kind) => (kind === 'models' ? 'model' : 'product');

/** The kind of cap the new-cap fields add. */
const chosenCapKind = () => /** @type {CapKind} */ (capKindSelect.value);

function renderCaps() {
  fill($('propose-caps'), capEdits.length ? capEdits.map((c) => {
    const id = `cap-${c.kind}-${cssId(c.name)}`;
    const state = c.original === null ? 'new' : c.removed ? 'removed' : 'kept';
    const input = el('input', { id, inputmode: 'decimal', value: c.value, disabled: c.removed, dataset: { cap: c.name } });
    input.addEventListener('input', () => { c.value = input.value; });
    const toggle = el('button', { type: 'button', 'aria-label': `${c.removed ? 'Keep' : 'Remove'} the ${capKind(c.kind)} cap on ${c.name}` }, c.removed ? 'Keep' : 'Remove');
    toggle.addEventListener('click', () => {
      if (c.original === null) capEdits = capEdits.filter((x) => x !== c);
      else c.removed = !c.removed;
      renderCaps();
    });
    return el('li', { dataset: { kind: c.kind, name: c.name, state } },
      el('label', { for: id }, `${productName(c.name)} (${capKind(c.kind)})`,
        state === 'new' ? el('span', { class: 'muted small' }, ' · new') : null,
        state === 'removed' ? el('span', { class: 'muted small' }, ' · removed') : null),
      input, toggle);
  }) : el('li', { class: 'muted small' }, 'No cap: the whole limit is shared by every product and model.'));
  // names already used as caps somewhere, as suggestions for a new one
  const kind = chosenCapKind();
  const names = new Set(kind === 'products' ? Object.keys(PRODUCT_NAMES) : []);
  for (const g of groups) Object.keys(g.limit?.[kind] || {}).forEach((n) => names.add(n));
  fill($('cap-names'), [...names].sort().map((n) => el('option', { value: n })));
}

function addCap() {
  const kind = chosenCapKind();
  const name = capName.value.trim();
  const value = capCredits.value.trim();
  const problem = $('cap-problem');
  const problems = [];
  if (!CAP_NAME.test(name)) problems.push('name a product or model (letters, digits and . _ - : / @ +)');
  if (!DECIMAL.test(value)) problems.push('give the cap in credits, like `500` or `500.5`');
  problem.hidden = !problems.length;
  problem.textContent = problems.join('; ');
  if (problems.length) return;
  const same = capEdits.find((c) => c.kind === kind && c.name === name);
  if (same) Object.assign(same, { value, removed: false });
  else capEdits.push({ kind, name, original: null, value, removed: false });
  capName.value = '';
  capCredits.value = '';
  renderCaps();
  capName.focus();
}

$('cap-add', HTMLButtonElement).addEventListener('click', addCap);
capKindSelect.addEventListener('change', renderCaps);
// Enter in the new-cap fields adds the cap rather than submitting the proposal
[capName, capCredits].forEach((input) => input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    addCap();
  }
}));

/**
 * The caps part of a proposal: `{products: {name: value|null}, models: {...}}`, and problems.
 * @param {string[]} problems where a cap that is not a number is reported
 * @returns {Partial<Record<CapKind, Record<string, string | null>>>}
 */
function capChanges(problems) {
  /** @type {Partial<Record<CapKind, Record<string, string | null>>>} */
  const out = {};
  for (const c of capEdits) {
    const value = c.value.trim();
    /** @type {string | null | undefined} */
    let change;
    if (c.removed) change = c.original === null ? undefined : null;
    else if (!DECIMAL.test(value)) problems.push(`the ${capKind(c.kind)} cap on ${c.name} must be a number like \`500\``);
    else if (value !== c.original) change = value;
    if (change !== undefined) (out[c.kind] ||= {})[c.name] = change;
  }
  return out;
}

/**
 * Opens the form on a group (its card's button).
 * @param {string} name
 */
function startProposal(name) {
  groupSelect.value = name;
  prefill();
  form.scrollIntoView({ behavior: 'smooth', block: 'center' });
  creditsInput.focus({ preventScroll: true });
}

groupSelect.addEventListener('change', prefill);

const DECIMAL = /^\d+(\.\d{1,6})?$/;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('proposal-result');
  /**
   * The body of `POST /v1/proposals`: only what changes (a null pool or cap removes it).
   * @type {{ group: string, reason: string, credits?: string, pool?: string | null, products?: Record<string, string | null>, models?: Record<string, string | null> }}
   */
  const body = { group: groupSelect.value, reason: reasonInput.value.trim() };
  const c = creditsInput.value.trim();
  const p = poolInput.value.trim();
  /** @type {string[]} */
  const problems = [];
  if (!body.group) problems.push('choose a group');
  if (c && !DECIMAL.test(c)) problems.push('credits must be a number like `2500` or `2500.5`');
  if (p && !DECIMAL.test(p)) problems.push('the pool must be a number, or empty to remove it');
  if (!body.reason) problems.push('give a reason (it goes into the commit message)');
  if (c && c !== form.dataset.credits) body.credits = c;
  if (p !== form.dataset.pool) body.pool = p ? p : null;
  Object.assign(body, capChanges(problems));
  if (!problems.length && body.credits === undefined && body.pool === undefined && !body.products && !body.models) problems.push('change the credits, the pool or a cap first');
  if (problems.length) {
    fill(result, el('div', { class: 'error', role: 'alert' }, el('ul', {}, problems.map((x) => el('li', {}, x)))));
    return;
  }
  submit.disabled = true;
  fill(result, el('p', { class: 'loading' }, 'Writing the branch and computing the plan…'));
  try {
    const made = /** @type {import('./proposals.js').Proposal} */ (await api('/v1/proposals', { method: 'POST', body }));
    fill(result, proposalView(made, 'Proposal committed'));
    reasonInput.value = '';
    loadProposals();
  } catch (err) {
    fill(result, errorBox(err, 'the proposal'));
  } finally {
    submit.disabled = false;
  }
});
