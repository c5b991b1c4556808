// Small DOM helpers. Text is always set as text (never as HTML), so data from the API cannot
// become markup; together with the Content-Security-Policy no injected script can run.

/** h('a', {href: '/', class: 'x', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (name === 'value') {
      element.value = value;
      element.setAttribute('value', value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Replaces an element's children; null, undefined and false are skipped (replaceChildren would write "null"). */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A <time> element with the instant in its datetime attribute and a local reading as text. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: iso }, dateTime.format(new Date(iso)));
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status.replace('_', ' '));
}

/** Says something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  // A new text node after a tick is announced even when the words repeat.
  setTimeout(() => { region.textContent = text; }, 50);
}

export function isOverdue(device, now = Date.now()) {
  return device.next_maintenance !== null && device.operational_status !== 'decommissioned'
    && new Date(device.next_maintenance).getTime() < now;
}

/** Calls fn at most once per wait, after the last call: many events, one refresh. */
export function debounce(fn, wait) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

/** Shows the event stream's state in the header, in words (not only a colour). */
export function setLive(state, detail) {
  const element = document.getElementById('live-state');
  element.hidden = false;
  element.dataset.state = state;
  element.textContent = state === 'live' ? 'Live' : state === 'reconnecting' ? 'Reconnecting…' : `Not live${detail ? ': ' + detail : ''}`;
}

/**
 * Runs render(), which replaces part of the page, and puts the keyboard focus back on the
 * equivalent control if it was inside: a live refresh must not throw a keyboard user's place
 * back to the top of the page.
 */
export function keepFocus(container, render) {
  const active = document.activeElement;
  const selector = active && active !== container && container.contains(active) ? focusSelector(active) : null;
  const result = render();
  if (selector) container.querySelector(selector)?.focus();
  return result;
}

function focusSelector(element) {
  if (element.id) return `#${CSS.escape(element.id)}`;
  const owner = element.closest('[data-operation], [data-device]');
  const scope = owner?.dataset.operation ? `[data-operation="${CSS.escape(owner.dataset.operation)}"] `
    : owner?.dataset.device ? `[data-device="${CSS.escape(owner.dataset.device)}"] ` : '';
  if (element.dataset.sort) return `[data-sort="${CSS.escape(element.dataset.sort)}"]`;
  if (element.dataset.action) return `${scope}[data-action="${CSS.escape(element.dataset.action)}"]`;
  if (element.tagName === 'A') return `${scope}a[href="${CSS.escape(element.getAttribute('href'))}"]`;
  if (element.dataset.focus) return `[data-focus="${CSS.escape(element.dataset.focus)}"]`;
  return null;
}
