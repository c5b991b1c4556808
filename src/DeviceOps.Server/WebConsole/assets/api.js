// The API as the console uses it: the token from sessionStorage as a bearer header (no cookies,
// so no cross-site request can act as the user), problem+json bodies as ApiError.

const TokenKey = 'deviceops.token';

export const session = {
  token: sessionStorage.getItem(TokenKey),
  /** GET /api/v1/token/me/: user, scopes, organizations. */
  me: null,
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

export function signIn(token, me) {
  session.token = token;
  session.me = me;
  sessionStorage.setItem(TokenKey, token);
}

export function signOut() {
  session.token = null;
  session.me = null;
  sessionStorage.removeItem(TokenKey);
}

/** Whether the signed-in token holds a scope; admin holds every scope, as on the server. */
export function can(scope) {
  const scopes = session.me?.scopes ?? [];
  return scopes.includes(scope) || scopes.includes('admin');
}

function idempotencyKey() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'console-' + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Calls the API. Resolves to {data, etag}; rejects with ApiError. A 401 on a signed-in session
 * (the token was revoked or expired meanwhile) also tells the app to show the sign-in form.
 */
export async function api(path, { method = 'GET', body, ifMatch, token = session.token, signal } = {}) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = ifMatch;
  // A retried write (the browser may resend after a network error) applies once.
  if (method !== 'GET') headers['Idempotency-Key'] = idempotencyKey();
  const response = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit',
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: `HTTP ${response.status}`, detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && token === session.token && session.me) {
      window.dispatchEvent(new CustomEvent('deviceops:unauthorized', { detail: error.message }));
    }
    throw error;
  }
  return { data, etag: response.headers.get('ETag') };
}

export const paths = {
  me: '/api/v1/token/me/',
  transitions: '/api/v1/transitions/',
  devices: '/api/v1/inventory_device/',
  summary: '/api/v1/inventory_device/summary/',
  operations: '/api/v1/inventory_device_operation/',
  log: '/api/v1/inventory_device_log/',
  organizations: '/api/v1/organization/',
};

/** The status rules, fetched once per page load from the server that enforces them. */
let rules = null;
export async function transitions() {
  rules ??= (await api(paths.transitions)).data;
  return rules;
}
