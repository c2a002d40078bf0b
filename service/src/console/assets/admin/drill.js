// The console's drill-down routes, kept in the URL's fragment so they can be shared:
// `#team/<name>` and `#person/<email>` show that page in place of the panels;
// `#model/<name>` opens the breakdown by model filtered to it. Any other fragment
// (the sections' own anchors) shows the panels again.

import { $, fill } from '../common.js';
import { renderTeam } from './team.js';
import { renderPerson } from './person.js';
import { breakdown } from './breakdown.js';

const section = $('drill');
const title = $('drill-title');
const body = $('drill-body');

/**
 * The route of a fragment.
 * @param {string} hash
 * @returns {{ kind: string, name: string } | null}
 */
function routeOf(hash) {
  const m = /^#(team|person|model)\/(.+)$/.exec(hash);
  if (!m) return null;
  try {
    return { kind: m[1], name: decodeURIComponent(m[2]) };
  } catch {
    return null;
  }
}

/** Shows the page the fragment names. */
async function route() {
  const r = routeOf(location.hash);
  const drilling = r !== null && r.kind !== 'model';
  document.body.classList.toggle('drilling', drilling);
  section.hidden = !drilling;
  if (!r) {
    if (section.dataset.shown) {
      // back from a drill-down: the panels are shown again, so go to the anchor asked for
      delete section.dataset.shown;
      fill(body);
      const target = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
      (target || document.body).scrollIntoView();
    }
    return;
  }
  if (r.kind === 'model') {
    $('breakdown-by', HTMLSelectElement).value = 'model';
    $('breakdown-q', HTMLInputElement).value = r.name;
    breakdown.reset();
    $('breakdown').scrollIntoView();
    return;
  }
  section.dataset.shown = `${r.kind}/${r.name}`;
  window.scrollTo(0, 0);
  if (r.kind === 'team') await renderTeam(body, title, r.name);
  else await renderPerson(body, title, r.name);
  section.focus({ preventScroll: true });
}

/** Draws the drill-down page shown again (the range changed). */
export function rerouteDrill() {
  if (section.dataset.shown) route();
}

/** Follows the fragment from now on, starting with the one the page was opened at. */
export function startDrill() {
  window.addEventListener('hashchange', () => { route(); });
  route();
}
