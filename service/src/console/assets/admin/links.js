// Links to the console's drill-down pages, kept in the URL's fragment so a page can be
// shared: `#team/<name>`, `#person/<email>`, `#model/<name>` (the breakdown by model,
// filtered to it). Every team, person and model name in the console's tables is one.

import { el } from '../common.js';

/** The team of users with a limit and no group, as the API names it. */
export const NO_GROUP = '(no group)';

/**
 * The fragment of a drill-down page.
 * @param {'team' | 'person' | 'model'} kind
 * @param {string} name
 * @returns {string}
 */
export function drillHref(kind, name) {
  return `#${kind}/${encodeURIComponent(name)}`;
}

/**
 * A link to a team's page.
 * @param {string | null | undefined} name
 * @returns {HTMLAnchorElement | string}
 */
export function teamLink(name) {
  if (!name) return '—';
  return el('a', { href: drillHref('team', name), class: 'drill team-link', dataset: { team: name } }, name);
}

/**
 * A link to a person's page.
 * @param {string | null | undefined} email
 * @returns {HTMLAnchorElement | string}
 */
export function personLink(email) {
  if (!email) return '—';
  return el('a', { href: drillHref('person', email), class: 'drill person-link mono', dataset: { person: email } }, email);
}

/**
 * A link to the breakdown by model, filtered to one model.
 * @param {string | null | undefined} name
 * @returns {HTMLAnchorElement | string}
 */
export function modelLink(name) {
  if (!name) return '—';
  return el('a', { href: drillHref('model', name), class: 'drill model-link', dataset: { model: name } }, name);
}
