// The login page: exchanges a token for a session cookie, then opens the view of its role.
//
// A link may carry the token in the URL fragment (`/console/login#token=...`): the
// fragment never reaches the server or the Referer header, and it is removed from
// the address bar and history before signing in.

import { $, api, el, fill, errorBox, ApiFailure } from './common.js';

const form = $('login-form', HTMLFormElement);
const input = $('token', HTMLInputElement);
const message = $('login-message');
const button = $('sign-in', HTMLButtonElement);

/**
 * Opens a session with `token` and goes to the view of its role.
 * @param {string} token
 */
async function signIn(token) {
  if (!token) {
    fill(message, el('div', { class: 'error', role: 'alert' }, 'enter a token'));
    input.focus();
    return;
  }
  button.disabled = true;
  fill(message, el('p', { class: 'loading' }, 'Signing in…'));
  try {
    const who = /** @type {{ role: 'admin' | 'user', user: string | null } | null} */ (
      await api('/console/session', { method: 'POST', body: { token }, redirectOn401: false }));
    location.replace(who && who.role === 'admin' ? '/console/' : '/console/me');
  } catch (err) {
    button.disabled = false;
    if (err instanceof ApiFailure && err.status === 401) {
      fill(message, el('div', { class: 'error', role: 'alert' }, 'this token is not known to this server (it may have been revoked)'));
    } else {
      fill(message, errorBox(err, 'the session'));
    }
    input.focus();
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  signIn(input.value.trim());
});

const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
const fromLink = fragment.get('token');
if (fromLink) {
  history.replaceState(null, '', location.pathname);
  signIn(fromLink.trim());
} else {
  input.focus();
}
