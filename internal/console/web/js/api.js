// Calls to the console's JSON endpoints (/console/api/…), with the
// session's CSRF token on every request that changes something.

let csrf = '';

export function setCSRF(token) { csrf = token; }

// ApiError is an error the server answered with: the API's code and
// message.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function call(method, path, body) {
  const opts = {method, headers: {'Accept': 'application/json'}, credentials: 'same-origin'};
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch('/console/api/' + path, opts);
  if (res.status === 401) {
    location.href = '/login';
    throw new ApiError(401, 'NotLoggedIn', 'the session ended: sign in again');
  }
  let data = null;
  try { data = await res.json(); } catch { /* an empty or non-JSON answer */ }
  if (!res.ok) {
    const e = (data && data.error) || {code: 'HTTP' + res.status, message: res.statusText};
    throw new ApiError(res.status, e.code, e.message);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const del = (path) => call('DELETE', path);

// query builds a query string of the non-empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
