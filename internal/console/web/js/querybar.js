// The bar the record pages share: which flow log, the time range and the
// filter expression of `flowlog analyze --where`.
import {get, query} from './api.js';
import {h, field, select, append} from './dom.js';
import {go} from './app.js';

// recordParams are the query parameters of the record endpoints.
export function recordParams(params) {
  return {since: params.get('since') || '', until: params.get('until') || '', where: params.get('where') || ''};
}

// queryBar renders the bar; it returns null (after saying so in view)
// when there are no flow logs to choose from.
export async function queryBar(view, page, title, id, params) {
  const {flowLogs} = await get('flowlogs');
  const readable = flowLogs.filter(f => ['file', 's3', 'cloud-watch-logs', 'kinesis-data-firehose', 'kafka'].includes(f.destinationType));
  if (!id && readable.length) id = readable[0].id;
  const p = recordParams(params);
  const fl = flowLogs.find(f => f.id === id);
  const picker = select({name: 'flowlog', id: 'qb-flowlog'}, readable.map(f => [f.id, `${f.id} · ${f.resourceId} · ${f.destinationType} ${f.destination || f.logGroupName || ''}`]), id);
  const since = h('input', {name: 'since', id: 'qb-since', value: p.since, placeholder: '2h, 2024-06-20T16:00:00Z'});
  const until = h('input', {name: 'until', id: 'qb-until', value: p.until, placeholder: 'now'});
  const where = h('input', {name: 'where', id: 'qb-where', value: p.where, class: 'wide', spellcheck: 'false',
    placeholder: 'action = REJECT and dstport in (22, 3389)'});
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Choose records', onsubmit: (e) => {
    e.preventDefault();
    go(`#/${page}/${picker.value}` + query({since: since.value.trim(), until: until.value.trim(), where: where.value.trim()}));
  }},
  field('Flow log', picker),
  field('Since', since, 'a duration back (2h, 3d), an RFC 3339 time, a date or Unix seconds'),
  field('Until', until),
  field('Filter', where, 'the expression language of flowlog analyze --where'),
  h('div', {class: 'actions'}, h('button', {type: 'submit', id: 'qb-apply'}, 'Apply')));
  view.replaceChildren(h('h1', {}, title), form);
  if (!readable.length) {
    append(view, h('p', {class: 'empty'}, 'No flow log delivers to a destination this console can read (file, s3, cloud-watch-logs, kinesis-data-firehose, kafka).'));
    return null;
  }
  if (!fl) {
    append(view, h('p', {class: 'error', role: 'alert'}, `No flow log ${id}.`));
    return null;
  }
  if (!readable.includes(fl)) {
    append(view, h('p', {class: 'error', role: 'alert'}, `Flow log ${id} delivers to ${fl.destinationType}: its records cannot be read back here.`));
    return null;
  }
  const tabs = h('nav', {class: 'tabs', 'aria-label': 'Views of ' + id},
    [['records', 'Records'], ['charts', 'Charts'], ['connections', 'Conversations']].map(([pg, t]) =>
      h('a', {href: `#/${pg}/${id}` + query(p), 'aria-current': pg === page ? 'page' : null}, t)));
  append(view, tabs);
  return {id, fl, p};
}

// notes renders what a report says about what it read.
export function notes(stats) {
  if (!stats) return null;
  const items = [...(stats.notes || [])];
  if (stats.skipdataRecords) items.unshift(`EVIDENCE GAP: ${stats.skipdataRecords} SKIPDATA record(s): records were lost in these windows.`);
  for (const f of stats.failed || []) items.push('could not read ' + f);
  for (const l of stats.lineErrors || []) items.push(l);
  if (!items.length) return null;
  return h('ul', {class: 'notes', 'aria-label': 'Notes about the records read'}, items.map(n => h('li', {}, n)));
}
