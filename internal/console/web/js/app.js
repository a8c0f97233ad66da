// The console's entry module: the session, the hash router, and the
// status line every page reports to.
import {get, setCSRF, ApiError} from './api.js';
import {h} from './dom.js';
import * as flowlogs from './flowlogs.js';
import * as inventory from './inventory.js';
import * as records from './records.js';
import * as charts from './charts.js';
import * as conversations from './conversations.js';

// Routes: #/page[/id][?query]. The page's module renders into <main>.
const pages = {
  flowlogs: flowlogs.list,
  create: flowlogs.create,
  inventory: inventory.render,
  records: records.render,
  charts: charts.render,
  connections: conversations.list,
  conversation: conversations.render,
};

export function announce(msg, isError = false) {
  const st = document.getElementById('status');
  st.textContent = msg;
  st.className = 'status' + (isError ? ' error' : msg ? ' ok' : '');
  st.setAttribute('role', isError ? 'alert' : 'status');
}

// showError reports an error of an action in the status line.
export function showError(e) {
  announce(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e.message || e), true);
}

let flash = '';

// announceNext says msg once the next page has rendered (a route change
// clears the status line).
export function announceNext(msg) { flash = msg; }

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [p, qs] = raw.split('?');
  const [page, ...rest] = p.split('/');
  return {page: page || 'flowlogs', id: rest.join('/'), params: new URLSearchParams(qs || '')};
}

let routing = 0;

async function route() {
  const {page, id, params} = parseHash();
  const render = pages[page];
  const main = document.getElementById('main');
  const seq = ++routing;
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.dataset.page === page || (page === 'create' && a.dataset.page === 'flowlogs') || (page === 'conversation' && a.dataset.page === 'connections');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  announce('');
  if (!render) {
    main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No page ' + page + '.'));
    return;
  }
  const view = h('div', {class: 'page', 'aria-busy': 'true'});
  main.replaceChildren(view);
  try {
    await render(view, id, params);
  } catch (e) {
    if (seq === routing) showError(e);
  }
  view.setAttribute('aria-busy', 'false');
  if (seq === routing) {
    if (flash) { announce(flash); flash = ''; }
    const h1 = view.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({preventScroll: true}); }
    document.title = (h1 ? h1.textContent + ' · ' : '') + 'flowlog console';
  }
}

async function start() {
  const sess = await get('session');
  setCSRF(sess.csrfToken);
  document.getElementById('logout-csrf').value = sess.csrfToken;
  document.getElementById('who').textContent = sess.principal;
  window.addEventListener('hashchange', route);
  await route();
  document.body.dataset.ready = 'true';
}

start().catch(showError);
