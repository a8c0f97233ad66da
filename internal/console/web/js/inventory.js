// The inventory page: VPCs, their subnets, and the interfaces the agents
// registered, each with the flow logs covering it and its last record.
import {get} from './api.js';
import {h, fmtTime} from './dom.js';

export async function render(view) {
  const {inventory: inv} = await get('inventory');
  const ifaceRows = (ifs) => h('table', {class: 'interfaces'},
    h('caption', {}, `${ifs.length} interface${ifs.length === 1 ? '' : 's'}`),
    h('thead', {}, h('tr', {}, ['Interface', 'Link', 'Addresses', 'Instance', 'Agent', 'Covered by', 'Last record', 'Agent last seen'].map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, ifs.map(i => h('tr', {dataset: {id: i.id}},
      h('th', {scope: 'row'}, h('code', {}, i.id)),
      h('td', {}, i.name || '-'),
      h('td', {}, (i.addresses || []).join(', ') || '-'),
      h('td', {}, i.instanceId || '-'),
      h('td', {}, i.agent || '-'),
      h('td', {class: 'coverage'}, i.flowLogs.length
        ? i.flowLogs.map(id => h('a', {href: '#/records/' + id, class: 'tag'}, id))
        : h('span', {class: 'badge bad'}, 'not covered')),
      h('td', {}, i.lastRecord ? fmtTime(i.lastRecord) : 'none yet'),
      h('td', {}, fmtTime(i.lastSeen))))));

  const parts = [h('h1', {}, 'Inventory')];
  const covered = inv.interfaces.filter(i => i.flowLogs.length).length;
  parts.push(h('p', {id: 'inventory-summary'}, `${inv.vpcs.length} VPCs, ${inv.subnets.length} subnets, ${inv.interfaces.length} interfaces (${covered} covered by a flow log), as the agents registered them.`));
  if (!inv.vpcs.length && !inv.interfaces.length) {
    parts.push(h('p', {class: 'empty'}, 'No agent has registered yet. Start `flowlog agent` with this server\u2019s URL and keys.'));
  }
  const seenSubnets = new Set();
  const seenIfaces = new Set();
  for (const vpc of inv.vpcs) {
    const sec = h('section', {class: 'vpc', 'aria-labelledby': 'vpc-' + vpc.id},
      h('h2', {id: 'vpc-' + vpc.id}, 'VPC ', h('code', {}, vpc.id), ' ', h('span', {class: 'hint'}, (vpc.cidrBlocks || []).join(', '))));
    for (const sn of inv.subnets.filter(s => s.vpcId === vpc.id)) {
      seenSubnets.add(sn.id);
      const ifs = inv.interfaces.filter(i => i.subnetId === sn.id);
      ifs.forEach(i => seenIfaces.add(i.id));
      sec.append(h('section', {class: 'subnet', 'aria-labelledby': 'sn-' + sn.id},
        h('h3', {id: 'sn-' + sn.id}, 'Subnet ', h('code', {}, sn.id), ' ', h('span', {class: 'hint'}, (sn.cidrBlocks || []).join(', '), sn.azId ? ' · ' + sn.azId : '')),
        ifs.length ? ifaceRows(ifs) : h('p', {class: 'hint'}, 'No interfaces.')));
    }
    parts.push(sec);
  }
  const rest = inv.interfaces.filter(i => !seenIfaces.has(i.id));
  if (rest.length) {
    parts.push(h('section', {'aria-labelledby': 'other-ifs'}, h('h2', {id: 'other-ifs'}, 'Interfaces of unknown subnets'), ifaceRows(rest)));
  }
  view.replaceChildren(...parts);
}
