// Charts drawn as SVG from numbers the server computed. Every chart is a
// <figure> with a caption, an SVG with role="img" and a description, and
// its numbers in a table for screen readers and copying.
import {h, s, fmtTime} from './dom.js';

let uid = 0;

const W = 760, H = 260, M = {l: 64, r: 12, t: 12, b: 46};

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(ms, spanMs) {
  const iso = new Date(ms).toISOString();
  return spanMs > 2 * 86400e3 ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 16);
}

// stackedBars draws values per time bucket, stacked by series, with
// gaps (NODATA, SKIPDATA windows) marked on the time axis.
//   points: [{t: RFC3339, [key]: n}], series: [[key, label, cssClass]],
//   from, to: RFC3339, bucketSeconds, gaps: [{kind, start, end, interface}]
export function stackedBars({id, title, desc, points, series, from, to, bucketSeconds, gaps = [], fmt}) {
  // A series with nothing in it (records without an action field) stays
  // out of the legend and the table, except the first two.
  series = series.filter(([k], i) => i < 2 || points.some(p => p[k]));
  const t0 = Date.parse(from), t1 = Date.parse(to);
  const span = Math.max(t1 - t0, 1);
  const x = (ms) => M.l + (ms - t0) / span * (W - M.l - M.r);
  const totals = points.map(p => series.reduce((a, [k]) => a + (p[k] || 0), 0));
  const ymax = niceMax(Math.max(0, ...totals));
  const y = (v) => H - M.b - v / ymax * (H - M.t - M.b);
  const tid = `ct-${++uid}`, did = `cd-${uid}`;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${tid} ${did}`, class: 'chart', id},
    s('title', {id: tid}, title), s('desc', {id: did}, desc));
  // Gaps first, so bars draw over their band.
  for (const g of gaps) {
    const a = Math.max(Date.parse(g.start), t0), b = Math.min(Date.parse(g.end) + 1000, t1);
    if (b <= a) continue;
    const w = Math.max(x(b) - x(a), 2);
    svg.append(s('g', {class: 'gap gap-' + g.kind.toLowerCase(), dataset: {kind: g.kind}},
      s('title', {}, `${g.kind} on ${g.interface}: ${fmtTime(g.start)} \u2013 ${fmtTime(g.end)} (${g.windows} window(s))`),
      s('rect', {x: x(a), y: M.t, width: w, height: H - M.t - M.b, class: 'gap-band'}),
      s('rect', {x: x(a), y: H - M.b + 2, width: w, height: 6, class: 'gap-mark'})));
  }
  // Y grid and labels.
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    svg.append(s('line', {x1: M.l, x2: W - M.r, y1: y(v), y2: y(v), class: 'grid'}),
      s('text', {x: M.l - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end'}, fmt(v)));
  }
  // Bars.
  const bw = Math.max((W - M.l - M.r) * bucketSeconds * 1000 / span - 1, 1);
  points.forEach((p, i) => {
    let base = 0;
    const g = s('g', {class: 'bar'});
    const tip = [fmtTime(p.t)];
    for (const [k, label, cls] of series) {
      const v = p[k] || 0;
      tip.push(`${label}: ${fmt(v)}`);
      if (!v) continue;
      g.append(s('rect', {x: x(Date.parse(p.t)), y: y(base + v), width: bw, height: Math.max(y(base) - y(base + v), 0.5), class: cls}));
      base += v;
    }
    if (totals[i]) { g.prepend(s('title', {}, tip.join('\n'))); svg.append(g); }
  });
  // Time axis.
  svg.append(s('line', {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis'}));
  const nt = 6;
  for (let i = 0; i <= nt; i++) {
    const ms = t0 + span * i / nt;
    svg.append(s('text', {x: x(ms), y: H - M.b + 22, class: 'tick', 'text-anchor': i === 0 ? 'start' : i === nt ? 'end' : 'middle'}, timeLabel(ms, span)));
  }
  svg.append(s('text', {x: M.l, y: H - 6, class: 'tick'}, 'UTC'));
  const legend = h('ul', {class: 'legend'},
    series.map(([, label, cls]) => h('li', {}, h('span', {class: 'swatch ' + cls, 'aria-hidden': 'true'}), label)),
    gaps.some(g => g.kind === 'NODATA') ? h('li', {}, h('span', {class: 'swatch gap-nodata', 'aria-hidden': 'true'}), 'NODATA (no traffic)') : null,
    gaps.some(g => g.kind === 'SKIPDATA') ? h('li', {}, h('span', {class: 'swatch gap-skipdata', 'aria-hidden': 'true'}), 'SKIPDATA (records lost)') : null);
  const rows = points.filter((_, i) => totals[i]).map(p => h('tr', {}, h('th', {scope: 'row'}, fmtTime(p.t)), series.map(([k]) => h('td', {}, fmt(p[k] || 0)))));
  const data = h('details', {}, h('summary', {}, 'Numbers'),
    h('table', {}, h('caption', {}, title),
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Bucket start'), series.map(([, l]) => h('th', {scope: 'col'}, l)))),
      h('tbody', {}, rows)));
  return h('figure', {class: 'chart-box'}, h('figcaption', {}, title), svg, legend, data);
}

// hbars draws labelled horizontal bars, largest first.
export function hbars({id, title, desc, items, fmt}) {
  const rowH = 24, lw = 260;
  const height = Math.max(items.length, 1) * rowH + 8;
  const max = Math.max(1, ...items.map(i => i.value));
  const tid = `ct-${++uid}`, did = `cd-${uid}`;
  const svg = s('svg', {viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-labelledby': `${tid} ${did}`, class: 'chart', id},
    s('title', {id: tid}, title), s('desc', {id: did}, desc));
  if (!items.length) svg.append(s('text', {x: 8, y: 20, class: 'tick'}, 'nothing to show'));
  items.forEach((it, i) => {
    const w = (W - lw - 90) * it.value / max;
    svg.append(s('g', {class: 'hbar'}, s('title', {}, `${it.label}: ${fmt(it.value)}`),
      s('text', {x: lw - 8, y: i * rowH + 17, 'text-anchor': 'end', class: 'label'}, it.label),
      s('rect', {x: lw, y: i * rowH + 4, width: Math.max(w, 1), height: rowH - 8, class: it.cls || 'accept'}),
      s('text', {x: lw + w + 6, y: i * rowH + 17, class: 'tick'}, fmt(it.value))));
  });
  const data = h('details', {}, h('summary', {}, 'Numbers'),
    h('table', {}, h('caption', {}, title), h('tbody', {}, items.map(it => h('tr', {}, h('th', {scope: 'row'}, it.label), h('td', {}, fmt(it.value)))))));
  return h('figure', {class: 'chart-box'}, h('figcaption', {}, title), svg, data);
}
