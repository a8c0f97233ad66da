// The records explorer: a page of the records of a flow log's
// destination that match the time range and filter, and a CSV download.
import {get, query} from './api.js';
import {h, fmtTime, append} from './dom.js';
import {queryBar, notes} from './querybar.js';
import {go} from './app.js';

const PAGE = 50;

export async function render(view, id, params) {
  const qb = await queryBar(view, 'records', 'Records', id, params);
  if (!qb) return;
  const offset = Number(params.get('offset') || 0);
  // next: where the previous page stopped (a token the server signs, for
  // kafka flow logs), so this page does not read the topic from its start.
  const next = params.get('next') || '';
  const data = await get(`flowlogs/${encodeURIComponent(qb.id)}/records` + query({...qb.p, offset, next, limit: PAGE}));
  const csv = h('a', {class: 'button secondary', id: 'csv-download', download: qb.id + '.csv',
    href: `/console/api/flowlogs/${encodeURIComponent(qb.id)}/records.csv` + query(qb.p)}, 'Download CSV');
  const timeCols = new Set(['start', 'end']);
  const tbl = h('table', {id: 'records-table', class: 'records'},
    h('caption', {}, data.rows.length
      ? `Records ${offset + 1}\u2013${offset + data.rows.length}` + (data.more ? '' : ` of ${data.total}`)
      : 'No records match'),
    h('thead', {}, h('tr', {}, data.columns.map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, data.rows.map(r => h('tr', {class: rowClass(data.columns, r)}, r.map((v, i) =>
      h('td', {title: timeCols.has(data.columns[i]) && v !== null ? fmtTime(Number(v)) : null}, v === null ? '-' : String(v)))))));
  const nav = h('nav', {class: 'pager', 'aria-label': 'Pages of records'},
    h('button', {type: 'button', id: 'prev-page', disabled: offset === 0, onclick: () => go(`#/records/${qb.id}` + query({...qb.p, offset: Math.max(0, offset - PAGE) || ''}))}, 'Previous'),
    h('button', {type: 'button', id: 'next-page', disabled: !data.more, onclick: () => go(`#/records/${qb.id}` + query({...qb.p, offset: offset + PAGE, next: data.next || ''}))}, 'Next'));
  append(view, h('div', {class: 'title-row'}, h('p', {}, `Format: `, h('code', {class: 'format'}, qb.fl.logFormat || '(default)')), csv),
    notes(data.stats), h('div', {class: 'scroll'}, tbl), nav);
}

function rowClass(cols, r) {
  const a = cols.indexOf('action');
  const s = cols.indexOf('log-status');
  if (s >= 0 && r[s] && r[s] !== 'OK') return 'status-' + String(r[s]).toLowerCase();
  if (a >= 0 && r[a] === 'REJECT') return 'reject';
  return null;
}
