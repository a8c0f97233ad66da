// Conversations: the TCP conversations `flowlog analyze connections`
// reconstructs, and one conversation's records of both directions on a
// timeline with their flags and its verdict.
import {get, query} from './api.js';
import {h, s, fmtBytes, fmtNum, fmtTime, append} from './dom.js';
import {queryBar, notes, recordParams} from './querybar.js';

export async function list(view, id, params) {
  const qb = await queryBar(view, 'connections', 'Conversations', id, params);
  if (!qb) return;
  const d = await get(`flowlogs/${encodeURIComponent(qb.id)}/connections` + query(qb.p));
  const link = (c) => `#/conversation/${qb.id}` + query({...qb.p, client: c.client, server: c.server, interface: c.interface});
  const tbl = h('table', {id: 'connections-table'},
    h('caption', {}, d.total > d.connections.length ? `First ${d.connections.length} of ${d.total} TCP conversations` : `${d.total} TCP conversation${d.total === 1 ? '' : 's'}`),
    h('thead', {}, h('tr', {}, ['Client', 'Server', 'Interface', 'Verdict', 'Handshake', 'First', 'Last', 'Client \u2192 server', 'Server \u2192 client'].map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, d.connections.map(c => h('tr', {},
      h('th', {scope: 'row'}, h('a', {href: link(c), class: 'conv-link'}, c.client)),
      h('td', {}, c.server), h('td', {}, c.interface || '-'),
      h('td', {}, h('span', {class: 'verdict ' + verdictClass(c.verdict)}, c.verdict)),
      h('td', {}, c.handshake || '-'), h('td', {}, fmtTime(c.first)), h('td', {}, fmtTime(c.last)),
      h('td', {}, dirText(c.client_to_server, c.counts_known)), h('td', {}, dirText(c.server_to_client, c.counts_known))))));
  append(view, notes(d.stats), d.connections.length ? h('div', {class: 'scroll'}, tbl) : h('p', {class: 'empty'}, 'No TCP conversations in these records.'));
}

function dirText(dsum, known) {
  if (!known) return '-';
  return `${fmtNum(dsum.packets)} pkts, ${fmtBytes(dsum.bytes)}` + (dsum.tcp_flags && dsum.tcp_flags.length ? ` [${dsum.tcp_flags.join(' ')}]` : '');
}

function verdictClass(v) {
  if (/^(established|closed|answered$)/.test(v)) return 'good';
  if (/reject|reset|RST|no answer/.test(v)) return 'bad';
  return 'neutral';
}

// flagNames decodes a tcp-flags value (spec §3: FIN 1, SYN 2, RST 4,
// ACK 16 reported only with SYN).
function flagNames(n) {
  if (n === null || n === undefined) return [];
  const out = [];
  if (n & 2) out.push(n & 16 ? 'SYN-ACK' : 'SYN');
  if (n & 1) out.push('FIN');
  if (n & 4) out.push('RST');
  return out;
}

export async function render(view, id, params) {
  const p = recordParams(params);
  const client = params.get('client'), server = params.get('server'), iface = params.get('interface') || '';
  const d = await get(`flowlogs/${encodeURIComponent(id)}/conversation` + query({...p, client, server, interface: iface}));
  const c = d.conversation;
  const back = h('a', {href: `#/connections/${id}` + query(p)}, '\u2190 All conversations');
  const card = h('dl', {class: 'verdict-card', id: 'conversation-verdict'},
    h('dt', {}, 'Verdict'), h('dd', {}, h('span', {class: 'verdict ' + verdictClass(c.verdict)}, c.verdict)),
    h('dt', {}, 'Handshake'), h('dd', {}, c.handshake || '-'),
    h('dt', {}, 'Initiator found by'), h('dd', {}, c.initiator_by),
    h('dt', {}, 'Interface'), h('dd', {}, c.interface || '-'),
    h('dt', {}, 'Client \u2192 server'), h('dd', {}, dirText(c.client_to_server, c.counts_known)),
    h('dt', {}, 'Server \u2192 client'), h('dd', {}, dirText(c.server_to_client, c.counts_known)),
    h('dt', {}, 'Time'), h('dd', {}, `${fmtTime(c.first)} \u2013 ${fmtTime(c.last)}`));
  const recs = d.records;
  const isC2S = (r) => r.srcaddr === c.client_addr && r.srcport === c.client_port;
  view.replaceChildren();
  append(view,
    h('h1', {}, 'Conversation ', h('code', {}, c.client), ' \u2192 ', h('code', {}, c.server)),
    h('p', {}, back), card, notes(d.stats),
    timeline(recs, isC2S, c),
    h('div', {class: 'scroll'}, h('table', {id: 'conversation-records'},
      h('caption', {}, `${recs.length} records of both directions`),
      h('thead', {}, h('tr', {}, ['Direction', 'Start', 'End', 'Packets', 'Bytes', 'Flags', 'Action', 'Interface'].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, recs.map(r => h('tr', {class: r.action === 'REJECT' ? 'reject' : null},
        h('th', {scope: 'row'}, isC2S(r) ? 'client \u2192 server' : 'server \u2192 client'),
        h('td', {}, fmtTime(r.start)), h('td', {}, fmtTime(r.end)), h('td', {}, r.packets ?? '-'), h('td', {}, r.bytes ?? '-'),
        h('td', {}, flagNames(r['tcp-flags']).join(' ') || (r['tcp-flags'] === undefined ? 'not in format' : '-')),
        h('td', {}, r.action ?? '-'), h('td', {}, r['interface-id'] ?? '-')))))));
}

// flagLabel writes a record's flags above its bar: from the bar's start,
// or ending at the bar's end when the bar is in the right third, so a
// label never runs off the chart.
function flagLabel(x0, x1, y, text, width) {
  const right = x0 > width * 2 / 3;
  return s('text', {x: right ? x1 : x0, y, class: 'flag', 'text-anchor': right ? 'end' : 'start'}, text);
}

// timeline draws each record as a bar over its window, client to server
// on the upper lane and server to client on the lower one, labelled with
// its flags.
function timeline(recs, isC2S, c) {
  const W = 760, H = 170, L = 130, R = 16;
  const starts = recs.filter(r => r.start != null).map(r => r.start), ends = recs.filter(r => r.end != null).map(r => r.end);
  const t0 = Math.min(...starts), t1 = Math.max(...ends, t0 + 1);
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const lanes = [['client \u2192 server', 30], ['server \u2192 client', 100]];
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart timeline', id: 'conversation-timeline', 'aria-labelledby': 'tl-title tl-desc'},
    s('title', {id: 'tl-title'}, 'Timeline of the conversation'),
    s('desc', {id: 'tl-desc'}, `${recs.length} records from ${fmtTime(t0)} to ${fmtTime(t1)}; client to server above, server to client below; verdict ${c.verdict}.`));
  for (const [label, y] of lanes) {
    svg.append(s('text', {x: 8, y: y + 20, class: 'label'}, label), s('line', {x1: L, x2: W - R, y1: y + 40, y2: y + 40, class: 'grid'}));
  }
  for (const r of recs) {
    if (r.start == null || r.end == null) continue;
    const y = isC2S(r) ? lanes[0][1] : lanes[1][1];
    const flags = flagNames(r['tcp-flags']);
    const w = Math.max(x(r.end) - x(r.start), 3);
    svg.append(s('g', {class: 'rec'},
      s('title', {}, `${fmtTime(r.start)} \u2013 ${fmtTime(r.end)}: ${r.packets ?? '-'} packets, ${r.bytes ?? '-'} bytes, ${r.action ?? ''} ${flags.join(' ')}`),
      s('rect', {x: x(r.start), y: y + 8, width: w, height: 24, class: r.action === 'REJECT' ? 'reject' : 'accept'}),
      flags.length ? flagLabel(x(r.start), x(r.start) + w, y + 4, flags.join(' '), W) : null));
  }
  svg.append(s('text', {x: L, y: H - 4, class: 'tick'}, fmtTime(t0)), s('text', {x: W - R, y: H - 4, class: 'tick', 'text-anchor': 'end'}, fmtTime(t1)));
  return h('figure', {class: 'chart-box'}, h('figcaption', {}, 'Records on a timeline'), svg);
}
