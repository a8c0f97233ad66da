// Small helpers to build the DOM. Text always goes in as text nodes:
// nothing from the server is ever parsed as HTML.

// h builds an element: h('a', {href: '#'}, 'text', child, …). Attributes
// starting with "on" are event listeners; null and false are left out.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendList(el, children);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';

// s builds an SVG element.
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  appendList(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

// append adds children (nodes, text, arrays; null and false are left
// out) to el.
export function append(el, ...children) {
  appendList(el, children);
  return el;
}

function appendList(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// field is a labelled form control.
export function field(label, control, hint) {
  const id = control.id || (control.id = 'f-' + Math.random().toString(36).slice(2));
  let hintEl = null;
  if (hint) {
    hintEl = h('p', {class: 'hint', id: id + '-hint'}, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', {class: 'field'}, h('label', {for: id}, label), control, hintEl);
}

// select builds a <select> of [value, text] pairs.
export function select(attrs, options, selected) {
  return h('select', attrs, options.map(([v, t]) => h('option', {value: v, selected: v === selected}, t)));
}

// table builds a table with a caption, header cells with scope and rows
// of cells (strings or nodes).
export function table(caption, head, rows, attrs = {}) {
  return h('table', attrs,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map(r => h('tr', {}, r.map(c => h('td', {}, c))))));
}

// fmtBytes renders a byte count for people.
export function fmtBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

// fmtNum renders a count with thousands separators.
export function fmtNum(n) {
  return Number(n).toLocaleString('en-US');
}

// fmtTime renders an RFC 3339 time or Unix seconds as UTC.
export function fmtTime(t) {
  if (t === null || t === undefined || t === '') return '-';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
