// The charts page: traffic over time (accepted and rejected stacked) with
// NODATA and SKIPDATA windows marked, top talkers and top rejected ports;
// every number comes from flowlog analyze on the server.
import {get, query} from './api.js';
import {h, fmtBytes, fmtNum, append} from './dom.js';
import {queryBar, notes} from './querybar.js';
import {stackedBars, hbars} from './svg.js';

const protoNames = {1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6'};

export async function render(view, id, params) {
  const qb = await queryBar(view, 'charts', 'Charts', id, params);
  if (!qb) return;
  const d = await get(`flowlogs/${encodeURIComponent(qb.id)}/charts` + query(qb.p));
  const sum = d.summary;
  append(view, h('p', {id: 'charts-summary'},
    `${fmtNum(sum.records)} records (${fmtNum(sum.accepted_records)} accepted, ${fmtNum(sum.rejected_records)} rejected, ${fmtNum(sum.nodata_records)} NODATA, ${fmtNum(sum.skipdata_records)} SKIPDATA), ${fmtBytes(sum.bytes)} in ${fmtNum(sum.packets)} packets.`),
  notes(d.stats));
  if (!d.series.length) {
    append(view, h('p', {class: 'empty'}, 'No records in this range.'));
    return;
  }
  const gaps = [
    ...(sum.nodata_windows || []).map(g => ({...g, kind: 'NODATA'})),
    ...(sum.skipdata_windows || []).map(g => ({...g, kind: 'SKIPDATA'})),
  ];
  const series = (unit) => [[`accept${unit}`, 'Accepted', 'accept'], [`reject${unit}`, 'Rejected', 'reject'], [`other${unit}`, 'No action field', 'other']];
  const bucket = d.bucketSeconds >= 3600 ? `${d.bucketSeconds / 3600} h` : `${d.bucketSeconds / 60} min`;
  const gapText = gaps.length ? ` ${gaps.length} window(s) without records are marked on the time axis.` : '';
  append(view, 
    h('div', {class: 'charts'},
      stackedBars({id: 'chart-bytes', title: `Bytes per ${bucket}`, desc: `Bytes per ${bucket} bucket, accepted and rejected stacked.` + gapText,
        points: d.series, series: series('Bytes'), from: d.from, to: d.to, bucketSeconds: d.bucketSeconds, gaps, fmt: fmtBytes}),
      stackedBars({id: 'chart-packets', title: `Packets per ${bucket}`, desc: `Packets per ${bucket} bucket, accepted and rejected stacked.` + gapText,
        points: d.series, series: series('Packets'), from: d.from, to: d.to, bucketSeconds: d.bucketSeconds, gaps, fmt: fmtNum}),
      hbars({id: 'chart-talkers', title: 'Top talkers (bytes)', desc: 'The source and destination pairs that sent the most bytes.',
        items: d.topTalkers.map(g => ({label: `${g.srcaddr ?? '-'} \u2192 ${g.dstaddr ?? '-'}`, value: g.bytes})), fmt: fmtBytes}),
      hbars({id: 'chart-rejected', title: 'Top rejected ports (packets)', desc: 'Destination ports of the most rejected packets.',
        items: d.rejectedPorts.map(g => ({label: `${g.dstport ?? '-'}/${protoNames[g.protocol] ?? g.protocol ?? '-'}`, value: g.packets, cls: 'reject'})), fmt: fmtNum})));
}
