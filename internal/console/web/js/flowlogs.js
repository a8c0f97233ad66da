// The flow logs page: the list with filters, deletion with confirmation,
// and the create form with its resource picker and format builder.
import {get, post, del, query, ApiError} from './api.js';
import {h, field, select, fmtTime} from './dom.js';
import {announce, announceNext, showError, go} from './app.js';

const trafficTypes = [['ALL', 'All'], ['ACCEPT', 'Accepted'], ['REJECT', 'Rejected']];
const destTypes = [
  ['file', 'Directory on the agents\u2019 hosts (file)'],
  ['s3', 'Amazon S3 or S3-compatible bucket (s3)'],
  ['cloud-watch-logs', 'CloudWatch Logs (cloud-watch-logs)'],
  ['kinesis-data-firehose', 'Kinesis Data Firehose (kinesis-data-firehose)'],
  ['kafka', 'Kafka topic (kafka)'],
];

export function destinationText(fl) {
  return fl.destination || fl.logGroupName || '-';
}

// list renders the flow logs page.
export async function list(view, _id, params) {
  const filters = {
    q: params.get('q') || '', resource: params.get('resource') || '', trafficType: params.get('trafficType') || '',
    destinationType: params.get('destinationType') || '', status: params.get('status') || '',
  };
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter flow logs', onsubmit: (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    go('#/flowlogs' + query(Object.fromEntries(fd.entries())));
  }},
  field('Search', h('input', {name: 'q', type: 'search', value: filters.q, id: 'filter-q'}), 'id, destination, format or tag'),
  field('Resource', h('input', {name: 'resource', value: filters.resource, id: 'filter-resource', placeholder: 'vpc-…, subnet-…, eni-…'})),
  field('Traffic type', select({name: 'trafficType', id: 'filter-traffic'}, [['', 'Any'], ...trafficTypes], filters.trafficType)),
  field('Destination type', select({name: 'destinationType', id: 'filter-dest'}, [['', 'Any'], ...destTypes.map(([v]) => [v, v])], filters.destinationType)),
  field('Delivery status', select({name: 'status', id: 'filter-status'}, [['', 'Any'], ['SUCCESS', 'SUCCESS'], ['FAILED', 'FAILED']], filters.status)),
  h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Apply filters'), h('a', {href: '#/flowlogs', class: 'button secondary'}, 'Clear')));

  const data = await get('flowlogs' + query(filters));
  const dialog = confirmDialog();
  const rows = data.flowLogs.map(fl => h('tr', {dataset: {id: fl.id}},
    h('th', {scope: 'row'}, h('a', {href: '#/records/' + fl.id}, fl.id)),
    h('td', {}, fl.resourceId),
    h('td', {}, fl.trafficType),
    h('td', {class: 'dest'}, h('span', {class: 'tag'}, fl.destinationType), ' ', destinationText(fl)),
    h('td', {}, h('span', {class: 'badge ' + (fl.deliverLogsStatus === 'FAILED' ? 'bad' : 'good'), title: fl.deliverLogsErrorMessage || null}, fl.deliverLogsStatus || '-'),
      fl.deliverLogsErrorMessage ? h('div', {class: 'hint'}, fl.deliverLogsErrorMessage) : null),
    h('td', {}, formatCell(fl.logFormat, data.defaultFormat)),
    h('td', {}, fl.maxAggregationInterval === 60 ? '1 min' : '10 min'),
    h('td', {}, (fl.tags || []).map(t => h('span', {class: 'tag'}, t.key + '=' + t.value))),
    h('td', {class: 'row-actions'},
      h('a', {href: '#/records/' + fl.id}, 'Records'), ' ',
      h('a', {href: '#/charts/' + fl.id}, 'Charts'), ' ',
      h('a', {href: '#/connections/' + fl.id}, 'Conversations'), ' ',
      h('button', {type: 'button', class: 'danger', 'aria-label': 'Delete ' + fl.id, dataset: {delete: fl.id}, onclick: () => dialog.ask(fl)}, 'Delete'))));
  const tbl = h('table', {id: 'flowlogs-table'},
    h('caption', {}, `${data.flowLogs.length} flow log${data.flowLogs.length === 1 ? '' : 's'}`),
    h('thead', {}, h('tr', {}, ['ID', 'Resource', 'Traffic', 'Destination', 'Status', 'Format', 'Interval', 'Tags', 'Actions'].map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows));
  view.replaceChildren(
    h('div', {class: 'title-row'}, h('h1', {}, 'Flow logs'), h('a', {href: '#/create', class: 'button', id: 'create-link'}, 'Create flow log')),
    form,
    data.flowLogs.length ? h('div', {class: 'scroll'}, tbl) : h('p', {class: 'empty', id: 'flowlogs-empty'}, 'No flow logs', filters.q || filters.resource ? ' match these filters.' : ' yet.'),
    dialog.el);
}

// formatCell shows a format as its field names (the header line it
// writes), the ${} text in its title; def is the default format.
export function formatCell(f, def) {
  if (!f || f === def) return h('span', {class: 'hint', title: def}, 'default');
  const code = h('code', {class: 'format', title: f});
  showTokens(code, f.replace(/\$\{([^}]+)\}/g, '$1'));
  return code;
}

// confirmDialog is the delete confirmation (a modal <dialog>: focus is
// trapped in it and Escape cancels).
function confirmDialog() {
  let current = null;
  const msg = h('p', {id: 'confirm-msg'});
  const el = h('dialog', {id: 'confirm-delete', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-msg'},
    h('h2', {id: 'confirm-title'}, 'Delete flow log?'), msg,
    h('form', {method: 'dialog', class: 'actions'},
      h('button', {value: 'cancel', class: 'secondary', id: 'confirm-cancel'}, 'Cancel'),
      h('button', {value: 'delete', class: 'danger', id: 'confirm-ok'}, 'Delete')));
  el.addEventListener('close', async () => {
    if (el.returnValue !== 'delete' || !current) return;
    const id = current.id;
    try {
      await del('flowlogs/' + encodeURIComponent(id));
      announce(`Deleted flow log ${id}.`);
      await list(el.closest('.page') || document.querySelector('.page'), '', new URLSearchParams(location.hash.split('?')[1] || ''));
      announce(`Deleted flow log ${id}.`);
    } catch (e) { showError(e); }
  });
  return {el, ask(fl) {
    current = fl;
    msg.textContent = `Delete ${fl.id} (${fl.resourceId}, ${fl.trafficType} to ${destinationText(fl)})? Agents stop writing its records; records already delivered stay where they are.`;
    el.returnValue = '';
    el.showModal();
    el.querySelector('#confirm-cancel').focus();
  }};
}

// create renders the create form.
export async function create(view) {
  const [inv, fieldsData] = await Promise.all([get('inventory'), get('fields')]);
  const inventory = inv.inventory;
  const errorBox = h('div', {id: 'create-errors', class: 'error-box', role: 'alert', hidden: true});

  // Resources: the picker lists what the agents registered.
  const resType = select({id: 'resource-type', name: 'resourceType'}, [['VPC', 'VPC'], ['Subnet', 'Subnet'], ['NetworkInterface', 'Network interface']], 'VPC');
  const picker = h('fieldset', {id: 'resource-picker', class: 'picker'});
  const extraIds = h('input', {id: 'resource-extra', placeholder: 'vpc-…', spellcheck: 'false'});
  function drawPicker() {
    const t = resType.value;
    const items = t === 'VPC' ? inventory.vpcs.map(v => [v.id, (v.cidrBlocks || []).join(', ')])
      : t === 'Subnet' ? inventory.subnets.map(s => [s.id, `${s.vpcId} · ${(s.cidrBlocks || []).join(', ')}`])
      : inventory.interfaces.map(i => [i.id, `${i.name || ''} ${(i.addresses || []).join(', ')} · ${i.subnetId} · ${i.instanceId || ''}`]);
    picker.replaceChildren(h('legend', {}, 'Resources discovered by the agents'),
      ...(items.length ? items.map(([id, desc]) => h('div', {class: 'check'},
        h('input', {type: 'checkbox', name: 'resource', value: id, id: 'res-' + id}),
        h('label', {for: 'res-' + id}, h('code', {}, id), ' ', h('span', {class: 'hint'}, desc))))
        : [h('p', {class: 'hint'}, 'No agent has registered a resource of this type yet.')]));
  }
  resType.addEventListener('change', drawPicker);
  drawPicker();

  const traffic = select({id: 'traffic-type', name: 'trafficType'}, trafficTypes, 'ALL');
  const interval = h('fieldset', {class: 'radios'}, h('legend', {}, 'Maximum aggregation interval'),
    radio('interval', '60', '1 minute', false, 'interval-60'), radio('interval', '600', '10 minutes', true, 'interval-600'));

  // Destination: the target's label and the options follow the type.
  const destType = select({id: 'destination-type', name: 'destinationType'}, destTypes, 'file');
  const target = h('input', {id: 'destination', name: 'destination', spellcheck: 'false'});
  const targetLabel = h('label', {for: 'destination'});
  const targetHint = h('p', {class: 'hint', id: 'destination-hint'});
  target.setAttribute('aria-describedby', 'destination-hint');
  const role = h('input', {id: 'role-arn', spellcheck: 'false', placeholder: 'arn:aws:iam::123456789012:role/flow-logs'});
  const roleField = field('IAM role ARN (DeliverLogsPermissionArn)', role, 'the role the logs are delivered with; required for CloudWatch Logs');
  const fileFormat = select({id: 'file-format'}, [['plain-text', 'Text (gzip)'], ['parquet', 'Parquet']], 'plain-text');
  const hive = h('input', {type: 'checkbox', id: 'hive'});
  const perHour = h('input', {type: 'checkbox', id: 'per-hour'});
  const objectOpts = h('fieldset', {id: 'object-options'}, h('legend', {}, 'Object options'),
    field('Log file format', fileFormat),
    h('div', {class: 'check'}, hive, h('label', {for: 'hive'}, 'Hive-compatible S3 prefixes')),
    h('div', {class: 'check'}, perHour, h('label', {for: 'per-hour'}, 'Partition logs by hour')));
  const targets = {
    'file': ['Directory', 'an absolute path on the agents\u2019 hosts, e.g. /var/log/flowlog', '/var/log/flowlog'],
    's3': ['S3 bucket ARN', 'arn:aws:s3:::bucket or arn:aws:s3:::bucket/prefix', 'arn:aws:s3:::my-bucket/flow-logs'],
    'cloud-watch-logs': ['Log group name', 'the CloudWatch Logs group records are delivered to (or its ARN)', 'my-flow-logs'],
    'kinesis-data-firehose': ['Delivery stream ARN', 'arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME', 'arn:aws:firehose:us-east-1:123456789012:deliverystream/flows'],
    'kafka': ['Kafka topic URL', 'kafka://broker:9092/topic', 'kafka://127.0.0.1:9092/flows'],
  };
  function drawDest() {
    const [label, hint, ph] = targets[destType.value];
    targetLabel.textContent = label;
    targetHint.textContent = hint;
    target.placeholder = ph;
    roleField.hidden = destType.value !== 'cloud-watch-logs';
    objectOpts.hidden = !(destType.value === 's3' || destType.value === 'file');
  }
  destType.addEventListener('change', drawDest);
  drawDest();

  // Format: default, or the builder: fields checked in the order they
  // are chosen, reordered with buttons, previewed by the server.
  const builder = formatBuilder(fieldsData);
  const fmtDefault = radio('format-kind', 'default', 'AWS default format', true, 'format-default');
  const fmtCustom = radio('format-kind', 'custom', 'Custom format', false, 'format-custom');
  const formatKind = h('fieldset', {class: 'radios'}, h('legend', {}, 'Log record format'), fmtDefault, fmtCustom);
  const syncFormat = () => { builder.el.hidden = !fmtCustom.querySelector('input').checked; builder.preview(); };
  formatKind.addEventListener('change', syncFormat);

  const tags = tagEditor();
  const submit = h('button', {type: 'submit', id: 'create-submit'}, 'Create flow log');
  const form = h('form', {id: 'create-form', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    errorBox.hidden = true;
    const ids = [...picker.querySelectorAll('input[name=resource]:checked')].map(c => c.value)
      .concat(extraIds.value.split(/[\s,]+/).filter(Boolean));
    const dt = destType.value;
    const req = {
      resourceType: resType.value, resourceIds: ids, trafficType: traffic.value,
      destinationType: dt, destination: dt === 'cloud-watch-logs' ? '' : target.value.trim(),
      logGroupName: dt === 'cloud-watch-logs' ? target.value.trim() : '',
      deliverLogsPermissionArn: dt === 'cloud-watch-logs' ? role.value.trim() : '',
      logFormat: fmtCustom.querySelector('input').checked ? builder.format() : '',
      maxAggregationInterval: Number(interval.querySelector('input:checked').value),
      fileFormat: (dt === 's3' || dt === 'file') ? fileFormat.value : '',
      hiveCompatiblePartitions: hive.checked, perHourPartition: perHour.checked, tags: tags.value(),
    };
    if (dt === 'cloud-watch-logs' && req.logGroupName.startsWith('arn:')) { req.destination = req.logGroupName; req.logGroupName = ''; }
    submit.disabled = true;
    try {
      const res = await post('flowlogs', req);
      if (res.unsuccessful.length) {
        errorBox.replaceChildren(h('h2', {}, res.flowLogIds.length ? 'Some resources failed' : 'No flow log was created'),
          h('ul', {}, res.unsuccessful.map(u => h('li', {}, h('code', {}, u.resourceId), ` ${u.code}: ${u.message}`))));
        errorBox.hidden = false;
        errorBox.focus();
      }
      if (res.flowLogIds.length) {
        announce('Created ' + res.flowLogIds.join(', ') + '.');
        if (!res.unsuccessful.length) { announceNext('Created ' + res.flowLogIds.join(', ') + '.'); go('#/flowlogs'); }
      }
    } catch (err) {
      errorBox.replaceChildren(h('h2', {}, 'The flow log was not created'), h('p', {}, err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)));
      errorBox.hidden = false;
      errorBox.focus();
    } finally {
      submit.disabled = false;
    }
  }},
  errorBox,
  h('section', {'aria-labelledby': 'sec-res'}, h('h2', {id: 'sec-res'}, 'Resources'),
    field('Resource type', resType), picker,
    field('Other resource IDs', extraIds, 'comma-separated; resources the inventory does not list yet')),
  h('section', {'aria-labelledby': 'sec-filter'}, h('h2', {id: 'sec-filter'}, 'Filter and interval'),
    field('Traffic type', traffic, 'which records to log: accepted, rejected or all traffic'), interval),
  h('section', {'aria-labelledby': 'sec-dest'}, h('h2', {id: 'sec-dest'}, 'Destination'),
    field('Destination type', destType),
    h('div', {class: 'field'}, targetLabel, target, targetHint), roleField, objectOpts),
  h('section', {'aria-labelledby': 'sec-format'}, h('h2', {id: 'sec-format'}, 'Log record format'), formatKind, builder.el),
  h('section', {'aria-labelledby': 'sec-tags'}, h('h2', {id: 'sec-tags'}, 'Tags'), tags.el),
  h('div', {class: 'actions'}, submit, h('a', {href: '#/flowlogs', class: 'button secondary'}, 'Cancel')));
  errorBox.tabIndex = -1;
  view.replaceChildren(h('h1', {}, 'Create flow log'), form);
  syncFormat();
}

function radio(name, value, label, checked, id) {
  return h('div', {class: 'check'}, h('input', {type: 'radio', name, value, id, checked}), h('label', {for: id}, label));
}

// formatBuilder lists every field (the server's table) as a checkbox;
// the chosen fields keep the order they were chosen in, and move up or
// down with buttons.
function formatBuilder(data) {
  const defaults = data.defaultFormat.match(/\$\{([^}]+)\}/g).map(t => t.slice(2, -1));
  let chosen = [...defaults];
  const boxes = h('fieldset', {class: 'fields-grid', id: 'format-fields'}, h('legend', {}, 'Fields'));
  for (const f of data.fields) {
    const id = 'fld-' + f.name;
    boxes.append(h('div', {class: 'check'},
      h('input', {type: 'checkbox', id, value: f.name, checked: chosen.includes(f.name), onchange: (e) => {
        if (e.target.checked) chosen.push(f.name); else chosen = chosen.filter(n => n !== f.name);
        draw();
      }}),
      h('label', {for: id, title: f.meaning}, f.name, h('span', {class: 'hint'}, ` v${f.version}`))));
  }
  const order = h('ol', {id: 'format-order', class: 'order'});
  const out = h('output', {id: 'format-text', class: 'format-text', for: 'format-fields'});
  const previewHead = h('pre', {id: 'preview-header'});
  const previewLine = h('pre', {id: 'preview-sample'});
  const previewErr = h('p', {id: 'preview-error', class: 'error', hidden: true});
  const previewBox = h('div', {class: 'preview', 'aria-live': 'polite'}, h('h3', {}, 'Preview of a sample record'), previewErr, previewHead, previewLine);
  const format = () => chosen.map(n => '${' + n + '}').join(' ');
  function move(i, d) {
    const j = i + d;
    if (j < 0 || j >= chosen.length) return;
    [chosen[i], chosen[j]] = [chosen[j], chosen[i]];
    draw();
    order.querySelectorAll('li')[j]?.querySelector(d < 0 ? '.up' : '.down')?.focus();
  }
  function draw() {
    order.replaceChildren(...chosen.map((n, i) => h('li', {},
      h('code', {}, n),
      h('button', {type: 'button', class: 'small up', 'aria-label': `Move ${n} earlier`, disabled: i === 0, onclick: () => move(i, -1)}, '\u2191'),
      h('button', {type: 'button', class: 'small down', 'aria-label': `Move ${n} later`, disabled: i === chosen.length - 1, onclick: () => move(i, 1)}, '\u2193'))));
    out.textContent = format();
    preview();
  }
  let timer = 0;
  function preview() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const p = await get('format' + query({format: format() || ' '}));
        if (!p.ok) {
          previewErr.textContent = `${p.code}: ${p.message}`;
          previewErr.hidden = false;
          previewHead.textContent = previewLine.textContent = '';
          return;
        }
        previewErr.hidden = true;
        showTokens(previewHead, p.header);
        showTokens(previewLine, p.sample);
      } catch (e) { showError(e); }
    }, 120);
  }
  const el = h('div', {id: 'format-builder'}, boxes,
    h('div', {class: 'order-box'}, h('h3', {id: 'order-title'}, 'Chosen order'), order), h('p', {}, 'Format: ', out), previewBox);
  order.setAttribute('aria-labelledby', 'order-title');
  draw();
  return {el, format, preview};
}

// showTokens writes a space-separated line into el so that it wraps
// only between fields, never inside one (at the hyphen of log-status).
function showTokens(el, line) {
  const parts = [];
  line.split(' ').forEach((tok, i) => {
    if (i > 0) parts.push(' ');
    parts.push(h('span', {class: 'tok'}, tok));
  });
  el.replaceChildren(...parts);
}

function tagEditor() {
  const rows = h('div', {id: 'tags'});
  let n = 0;
  function add(k = '', v = '') {
    const i = n++;
    const row = h('div', {class: 'tag-row'},
      field('Key', h('input', {id: `tag-key-${i}`, class: 'tag-key', value: k})),
      field('Value', h('input', {id: `tag-value-${i}`, class: 'tag-value', value: v})),
      h('button', {type: 'button', class: 'secondary', 'aria-label': 'Remove this tag', onclick: () => row.remove()}, 'Remove'));
    rows.append(row);
    row.querySelector('input').focus();
  }
  const el = h('div', {}, rows, h('button', {type: 'button', class: 'secondary', id: 'add-tag', onclick: () => add()}, 'Add tag'));
  return {el, value: () => [...rows.querySelectorAll('.tag-row')].map(r => ({key: r.querySelector('.tag-key').value.trim(), value: r.querySelector('.tag-value').value}))
    .filter(t => t.key !== '')};
}
