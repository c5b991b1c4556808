// The console's entry: sign-in, the header, and a router over two pages — the fleet overview
// (/) and a device (/devices/DEV-001). Links marked data-nav change the page without a reload.

import { api, ApiError, paths, session, signIn, signOut } from './api.js';
import { h, fill, announce } from './dom.js';
import { overviewPage } from './overview.js';
import { devicePage } from './device.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');
const liveState = document.getElementById('live-state');
let leave = null;
let visits = 0;

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route({ focus: true });
}

async function route({ focus = false } = {}) {
  leave?.();
  leave = null;
  liveState.hidden = true;
  if (!session.token) {
    showSignIn();
    return;
  }
  if (!session.me) {
    try {
      session.me = (await api(paths.me)).data;
    } catch (error) {
      signOut();
      showSignIn(error instanceof ApiError ? error.message : 'The server could not be reached.');
      return;
    }
  }
  showWho();
  const device = location.pathname.match(/^\/devices\/([^/]+)\/?$/);
  // Each visit renders into a container of its own, so a slow page that finishes after the
  // next navigation writes into a detached element, not over the new page.
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  const visit = ++visits;
  try {
    const stop = device ? await devicePage(view, decodeURIComponent(device[1]))
      : location.pathname === '/' ? await overviewPage(view) : notFound(view);
    // Another navigation started while this page loaded: this one is already gone.
    if (visit !== visits) stop?.();
    else leave = stop;
  } catch (error) {
    if (visit !== visits) return;
    fill(view, h('h1', { tabindex: '-1' }, 'Could not load this page'),
      h('p', { class: 'form-error', role: 'alert' }, error instanceof ApiError ? error.message : 'The server could not be reached.'),
      h('p', null, h('a', { href: '/', 'data-nav': true }, 'Back to the fleet overview')));
  }
  // After a navigation, start reading at the new page's heading, as a full load would — unless
  // the user already moved into the page while it loaded: focus is never taken from them.
  const untouched = !document.activeElement || document.activeElement === document.body;
  if (focus && untouched && visit === visits) {
    (main.querySelector('h1') ?? main).focus({ preventScroll: false });
  }
}

function notFound(view) {
  view.append(h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, h('a', { href: '/', 'data-nav': true }, 'Back to the fleet overview')));
  return null;
}

function showWho() {
  const me = session.me;
  const organizations = me.organizations.length ? me.organizations.join(', ') : 'all organizations';
  fill(who, h('span', { class: 'user' }, me.user), ' · ', h('span', { class: 'scopes' }, me.scopes.join(' ')), ' · ', organizations);
  signOutButton.hidden = false;
}

function showSignIn(reason) {
  who.replaceChildren();
  signOutButton.hidden = true;
  const error = h('p', { id: 'token-error', class: 'field-error', role: 'alert' }, reason ?? '');
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help token-error', 'aria-invalid': reason ? 'true' : false,
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card sign-in', novalidate: true },
    h('h1', { tabindex: '-1' }, 'Sign in to DeviceOps'),
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'API token'),
      input,
      h('p', { id: 'token-help', class: 'help' },
        'Paste a token made by "token create" or POST /api/v1/token/ (it starts with dop_). ',
        'It is kept in this browser tab only and sent as a bearer header; closing the tab forgets it.'),
      error),
    button);
  form.addEventListener('submit', async event => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      fail('Paste a token first.');
      return;
    }
    button.disabled = true;
    try {
      const me = (await api(paths.me, { token })).data;
      signIn(token, me);
      announce(`Signed in as ${me.user}.`);
      navigate(location.pathname + location.search, { replace: true });
    } catch (caught) {
      fail(caught instanceof ApiError ? `Refused: ${caught.message}` : 'The server could not be reached.');
    } finally {
      button.disabled = false;
    }
  });
  function fail(message) {
    error.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  fill(main, form);
  input.focus();
}

document.addEventListener('click', event => {
  const link = event.target.closest('a[data-nav]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', () => route({ focus: true }));
window.addEventListener('deviceops:unauthorized', event => {
  leave?.();
  leave = null;
  signOut();
  showSignIn(`Signed out: ${event.detail}`);
});
signOutButton.addEventListener('click', () => {
  leave?.();
  leave = null;
  signOut();
  liveState.hidden = true;
  showSignIn('Signed out.');
});

route();
