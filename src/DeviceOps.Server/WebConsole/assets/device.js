// One device: its current state and configuration, its operations with the forms that change
// them, and its operational history as a timeline. The forms offer only the moves the server's
// rules allow (from GET /api/v1/transitions/); a token with operations:override also sees the
// other moves, marked as needing a justification. Server errors are shown next to their fields.

import { api, ApiError, can, paths, transitions } from './api.js';
import { h, fill, time, statusBadge, announce, isOverdue, debounce, setLive, keepFocus } from './dom.js';
import { follow } from './events.js';

const TimelinePage = 50;

const Actions = {
  created: 'Registered',
  status_change: 'Status changed',
  operation_status_change: 'Operation status changed',
  operation_created: 'Operation opened',
  relocation: 'Relocated',
  assignment_change: 'Reassigned',
  configuration_change: 'Configuration changed',
  maintenance_update: 'Maintenance updated',
  device_update: 'Details changed',
  deleted: 'Deleted',
};

export async function devicePage(main, code) {
  const back = h('p', { class: 'back' }, h('a', { href: '/', 'data-nav': true }, '← Fleet overview'));
  if (!can('devices:read')) {
    main.append(back, h('h1', { tabindex: '-1' }, code), h('p', { class: 'notice' }, 'This token cannot read devices: it needs the devices:read scope.'));
    return null;
  }
  const rules = await transitions();
  const found = (await api(`${paths.devices}?device_id=${encodeURIComponent(code)}&limit=1`)).data.results[0];
  if (!found) {
    main.append(back, h('h1', { tabindex: '-1' }, `No device ${code}`),
      h('p', null, 'It does not exist, or it belongs to an organization this token cannot see.'));
    return null;
  }

  const title = h('h1', { tabindex: '-1' });
  const state = h('section', { class: 'card state', 'aria-labelledby': 'state-title' });
  const configuration = h('section', { class: 'card', 'aria-labelledby': 'configuration-title' });
  const operations = h('section', { class: 'operations', 'aria-labelledby': 'operations-title' });
  const timeline = h('section', { class: 'timeline-section', 'aria-labelledby': 'timeline-title' });
  main.append(back, title, h('div', { class: 'columns' }, h('div', null, state, configuration, operations), timeline));

  const page = { id: found.id, code, device: found, openForms: new Set(), shown: TimelinePage };

  async function loadDevice() {
    const { data } = await api(`${paths.devices}${page.id}/`);
    page.device = data;
    fill(title, `${data.device_name} `, h('span', { class: 'code' }, data.device_id), ' ', statusBadge(data.operational_status));
    renderState(state, data);
    renderConfiguration(configuration, data.configuration);
  }

  async function loadOperations() {
    if (!can('operations:read')) {
      fill(operations, h('h2', { id: 'operations-title' }, 'Operations'),
        h('p', { class: 'notice' }, 'This token cannot read operations: it needs the operations:read scope.'));
      return;
    }
    if (page.openForms.size > 0) {
      // Keep what the user is typing; saving will say if the operation changed meanwhile.
      for (const form of page.openForms) {
        form.querySelector('.changed-note').textContent =
          'This device changed while the form was open. Saving checks that the operation is still as you loaded it.';
      }
      return;
    }
    const { data } = await api(`${paths.operations}?device_id=${encodeURIComponent(code)}&ordering=-id&limit=50`);
    keepFocus(operations, () => renderOperations(operations, data.results, page, rules, refreshAll));
  }

  async function loadTimeline() {
    const { data } = await api(`${paths.log}?device_id=${encodeURIComponent(code)}&limit=${page.shown}`);
    keepFocus(timeline, () => renderTimeline(timeline, data, () => {
      page.shown += TimelinePage;
      loadTimeline().then(() => announce('Older entries shown.'));
    }));
  }

  async function refreshAll() {
    await Promise.all([loadDevice(), loadOperations(), loadTimeline()]);
  }

  await refreshAll();
  const later = debounce(() => refreshAll().catch(error => announce(`Could not refresh: ${error.message}`)), 250);
  const stop = follow(`device_id=${encodeURIComponent(code)}`, event => {
    announce(`${event.device_id}: ${event.type.replace('.', ' ').replaceAll('_', ' ')}`);
    later();
  }, setLive);
  return () => {
    stop();
    later.cancel();
  };
}

function renderState(section, device) {
  const overdue = isOverdue(device);
  const row = (label, value) => [h('dt', null, label), h('dd', null, value ?? h('span', { class: 'muted' }, '—'))];
  fill(section,
    h('h2', { id: 'state-title' }, 'Current state'),
    h('dl', { class: 'facts' },
      row('Status', statusBadge(device.operational_status)),
      row('Type', device.device_type),
      row('Organization', device.organization),
      row('Serial number', device.serial_number),
      row('Location', device.location),
      row('Assigned user', device.assigned_user),
      row('Next maintenance', [time(device.next_maintenance), overdue ? h('strong', { class: 'overdue-flag' }, ' Overdue') : null]),
      row('Maintenance notes', device.maintenance_notes),
      row('Last updated', [time(device.last_updated), ' by ', device.updated_by])));
}

function renderConfiguration(section, configuration) {
  const keys = Object.keys(configuration ?? {}).sort();
  fill(section, h('h2', { id: 'configuration-title' }, 'Configuration'),
    keys.length === 0 ? h('p', { class: 'muted' }, 'No configuration.')
      : h('dl', { class: 'facts' }, keys.map(k => [h('dt', null, k), h('dd', null, h('code', null, String(configuration[k])))])));
}

function renderOperations(section, list, page, rules, refreshAll) {
  const writable = can('operations:write');
  const start = writable ? h('button', { type: 'button', id: 'start-operation' }, 'Start an operation') : null;
  const startArea = h('div');
  start?.addEventListener('click', () => {
    if (startArea.firstChild) return;
    const form = startForm(page, rules, () => { startArea.replaceChildren(); page.openForms.delete(form); start.focus(); }, refreshAll);
    page.openForms.add(form);
    startArea.append(form);
    form.querySelector('input, select, textarea').focus();
  });
  fill(section, h('h2', { id: 'operations-title' }, 'Operations'), start, startArea,
    list.length === 0 ? h('p', { class: 'muted' }, 'No operations on this device.')
      : h('ul', { class: 'operation-list' }, list.map(operation => operationItem(operation, page, rules, refreshAll))));
}

function operationItem(operation, page, rules, refreshAll) {
  const next = rules.operation.allowed_next_states[operation.status] ?? [];
  const changeable = can('operations:write') && (next.length > 0 || can('operations:override'));
  const formArea = h('div');
  const open = (preset, opener) => {
    if (formArea.firstChild) return;
    updateForm(operation, page, rules, preset, opener, formArea, refreshAll);
  };
  const update = changeable ? h('button', { type: 'button', class: 'secondary', 'data-action': 'update' }, 'Update…') : null;
  update?.addEventListener('click', () => open({}, update));
  const complete = changeable && next.includes('completed')
    ? h('button', { type: 'button', 'data-action': 'complete' }, 'Complete…') : null;
  complete?.addEventListener('click', () => open({
    status: 'completed',
    // Closing a maintenance job usually returns the device to service.
    operational_status: operation.operation_type === 'maintenance' && page.device.operational_status === 'maintenance' ? 'active' : '',
  }, complete));

  return h('li', { class: 'card operation', 'data-operation': String(operation.id) },
    h('h3', null, `#${operation.id} `, operation.operation_type.replaceAll('_', ' '), ' ', statusBadge(operation.status)),
    h('dl', { class: 'facts compact' },
      operation.operator_id ? [h('dt', null, 'Operator'), h('dd', null, operation.operator_id)] : null,
      operation.description ? [h('dt', null, 'Description'), h('dd', null, operation.description)] : null,
      [h('dt', null, 'Started'), h('dd', null, time(operation.started_at))],
      [h('dt', null, 'Completed'), h('dd', null, time(operation.completed_at))],
      operation.notes ? [h('dt', null, 'Notes'), h('dd', null, operation.notes)] : null),
    h('div', { class: 'actions' }, complete, update),
    formArea);
}

/** Options of a status select: no change, the allowed moves, and — for an override token — the rest. */
function statusOptions(current, allowed, all, chosen, noChangeLabel) {
  const others = all.filter(s => s !== current && !allowed.includes(s));
  return [
    h('option', { value: '', selected: !chosen }, noChangeLabel),
    allowed.map(s => h('option', { value: s, selected: chosen === s }, s)),
    can('operations:override') && others.length > 0
      ? h('optgroup', { label: 'Override — needs a justification' }, others.map(s => h('option', { value: s, selected: chosen === s }, `${s} (override)`)))
      : null,
  ];
}

function field(id, name, label, control, help) {
  const errorId = `${id}-error`;
  const helpId = help ? `${id}-help` : null;
  control.id = id;
  control.name = name;
  control.setAttribute('aria-describedby', [helpId, errorId].filter(Boolean).join(' '));
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: id }, label), control,
    help ? h('p', { id: helpId, class: 'help' }, help) : null,
    h('p', { id: errorId, class: 'field-error', 'data-error-for': name }));
}

function justificationField(prefix) {
  return can('operations:override')
    ? field(`${prefix}-justification`, 'justification', 'Justification (override)', h('textarea', { rows: '2' }),
      'Needed only to force a move the rules refuse; it is recorded in the history.')
    : null;
}

async function updateForm(operation, page, rules, preset, opener, area, refreshAll) {
  // Load the operation now: its ETag is what the save's If-Match checks.
  let loaded;
  try {
    loaded = await api(`${paths.operations}${operation.id}/`);
  } catch (error) {
    fill(area, h('p', { class: 'form-error', role: 'alert' }, `Could not load operation #${operation.id}: ${error.message}`));
    return;
  }
  const current = loaded.data;
  const prefix = `op-${operation.id}`;
  const device = current.operational_status;
  const status = h('select', null, statusOptions(current.status, rules.operation.allowed_next_states[current.status] ?? [],
    rules.operation.statuses, preset.status, `${current.status} (no change)`));
  const deviceStatus = h('select', null, statusOptions(device, rules.device.allowed_next_states[device] ?? [],
    rules.device.statuses, preset.operational_status, `${device} (no change)`));
  const local = iso => iso ? new Date(new Date(iso).getTime() - new Date(iso).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '';
  const form = h('form', { class: 'card operation-form', novalidate: true, 'aria-labelledby': `${prefix}-title` },
    h('h4', { id: `${prefix}-title` }, `Update operation #${operation.id}`),
    h('p', { class: 'changed-note', role: 'status' }),
    field(`${prefix}-status`, 'status', 'Operation status', status),
    field(`${prefix}-operational_status`, 'operational_status', 'Device status', deviceStatus),
    field(`${prefix}-location`, 'location', 'Location', h('input', { type: 'text', value: current.location ?? '' })),
    field(`${prefix}-assigned_user`, 'assigned_user', 'Assigned user (e-mail)', h('input', { type: 'email', value: current.assigned_user ?? '' })),
    field(`${prefix}-notes`, 'notes', 'Operation notes', h('textarea', { rows: '2' }, current.notes ?? '')),
    field(`${prefix}-maintenance_notes`, 'maintenance_notes', 'Maintenance notes', h('textarea', { rows: '2' }, current.maintenance_notes ?? '')),
    field(`${prefix}-next_maintenance`, 'next_maintenance', 'Next maintenance (your local time)',
      h('input', { type: 'datetime-local', value: local(current.next_maintenance) })),
    justificationField(prefix),
    h('p', { class: 'form-error', role: 'alert', 'data-error-for': '' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Save'),
      h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel' }, 'Cancel')));

  const close = () => {
    page.openForms.delete(form);
    area.replaceChildren();
    opener?.focus();
  };
  form.querySelector('[data-action=cancel]').addEventListener('click', close);
  form.addEventListener('keydown', event => {
    if (event.key === 'Escape') close();
  });
  form.addEventListener('submit', async event => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    const body = {};
    if (values.status) body.status = values.status;
    if (values.operational_status) body.operational_status = values.operational_status;
    const text = (name, was) => {
      const value = values[name].trim();
      if (value !== (was ?? '')) body[name] = value === '' ? null : value;
    };
    text('location', current.location);
    text('assigned_user', current.assigned_user);
    text('notes', current.notes);
    text('maintenance_notes', current.maintenance_notes);
    if (values.next_maintenance !== local(current.next_maintenance)) {
      body.next_maintenance = values.next_maintenance ? new Date(values.next_maintenance).toISOString() : null;
    }
    if (values.justification?.trim()) body.justification = values.justification.trim();
    await submit(form, () => api(`${paths.operations}${operation.id}/`, { method: 'PATCH', body, ifMatch: loaded.etag }), async () => {
      announce(`Operation #${operation.id} saved.`);
      page.openForms.delete(form);
      area.replaceChildren();
      await refreshAll();
      document.querySelector(`[data-operation="${operation.id}"] h3`)?.setAttribute('tabindex', '-1');
      document.querySelector(`[data-operation="${operation.id}"] h3`)?.focus();
    });
  });
  page.openForms.add(form);
  fill(area, form);
  status.focus();
}

function startForm(page, rules, close, refreshAll) {
  const prefix = 'new-operation';
  const device = page.device.operational_status;
  const types = ['maintenance', 'relocation', 'assignment', 'configuration_update', 'firmware_update', 'lifecycle', 'inspection'];
  const form = h('form', { class: 'card operation-form', novalidate: true, 'aria-labelledby': `${prefix}-title` },
    h('h3', { id: `${prefix}-title` }, 'Start an operation'),
    h('p', { class: 'changed-note', role: 'status' }),
    field(`${prefix}-operation_type`, 'operation_type', 'Type', h('input', { type: 'text', list: `${prefix}-types`, value: 'maintenance', required: true }),
      'A slug such as maintenance, relocation or firmware_update.'),
    h('datalist', { id: `${prefix}-types` }, types.map(t => h('option', { value: t }))),
    field(`${prefix}-status`, 'status', 'Status', h('select', null,
      ['in_progress', 'pending', 'scheduled'].map(s => h('option', { value: s }, s)))),
    field(`${prefix}-operational_status`, 'operational_status', 'Device status', h('select', null,
      statusOptions(device, rules.device.allowed_next_states[device] ?? [], rules.device.statuses, '', `${device} (no change)`))),
    field(`${prefix}-operator_id`, 'operator_id', 'Operator', h('input', { type: 'text' })),
    field(`${prefix}-description`, 'description', 'Description', h('textarea', { rows: '2' })),
    justificationField(prefix),
    h('p', { class: 'form-error', role: 'alert', 'data-error-for': '' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Start'),
      h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel' }, 'Cancel')));
  form.querySelector('[data-action=cancel]').addEventListener('click', close);
  form.addEventListener('keydown', event => {
    if (event.key === 'Escape') close();
  });
  form.addEventListener('submit', async event => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    const body = { device_id: page.code, operation_type: values.operation_type.trim(), status: values.status };
    for (const name of ['operational_status', 'operator_id', 'description', 'justification']) {
      if (values[name]?.trim()) body[name] = values[name].trim();
    }
    await submit(form, () => api(paths.operations, { method: 'POST', body }), async ({ data }) => {
      announce(`Operation #${data.id} started.`);
      close();
      await refreshAll();
    });
  });
  return form;
}

/** Sends a form's request; on failure shows each error next to its field, else at the form's foot. */
async function submit(form, send, done) {
  const button = form.querySelector('button[type=submit]');
  for (const element of form.querySelectorAll('.field-error, .form-error')) element.textContent = '';
  for (const element of form.querySelectorAll('[aria-invalid]')) element.removeAttribute('aria-invalid');
  button.disabled = true;
  try {
    const result = await send();
    await done(result);
  } catch (error) {
    showErrors(form, error);
  } finally {
    button.disabled = false;
  }
}

function showErrors(form, error) {
  const general = form.querySelector('.form-error');
  if (!(error instanceof ApiError)) {
    general.textContent = `The server could not be reached: ${error.message}`;
    return;
  }
  const problem = error.problem;
  let first = null;
  const place = (name, message) => {
    const slot = form.querySelector(`.field-error[data-error-for="${name}"]`);
    if (!slot) return false;
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const control = form.elements[name];
    control?.setAttribute('aria-invalid', 'true');
    first ??= control;
    return true;
  };
  const unplaced = [];
  if (problem.code === 'invalid_transition' && problem.field) {
    const allowed = problem.allowed_next_states?.length ? problem.allowed_next_states.join(', ') : 'none (it is final)';
    const hint = can('operations:override')
      ? ' To force it, write a justification.' : ' Forcing it needs a token with operations:override.';
    if (!place(problem.field, `Refused: ${problem.from} → ${problem.to} is not allowed. Allowed next: ${allowed}.${hint}`)) {
      unplaced.push(problem.detail);
    }
  } else if (problem.errors) {
    for (const [name, messages] of Object.entries(problem.errors)) {
      if (!place(name, messages.join(' '))) unplaced.push(`${name}: ${messages.join(' ')}`);
    }
  } else if (error.status === 412) {
    unplaced.push('Someone changed this operation or its device since you opened the form, so nothing was saved. ' +
      'Cancel and open the form again to see the current values.');
  } else {
    unplaced.push(problem.detail || problem.title || error.message);
  }
  if (unplaced.length > 0 || !first) {
    general.textContent = [...unplaced, problem.request_id ? `(request ${problem.request_id})` : ''].filter(Boolean).join(' ');
  }
  (first ?? general).focus?.();
  if (!first) {
    general.setAttribute('tabindex', '-1');
    general.focus();
  }
}

function renderTimeline(section, page, more) {
  fill(section,
    h('h2', { id: 'timeline-title' }, 'Timeline'),
    h('p', { class: 'muted small' }, `${page.count} entries, newest first.`),
    h('ol', { class: 'timeline', 'aria-labelledby': 'timeline-title' }, page.results.map(entry => h('li', { 'data-entry': String(entry.id), 'data-action': entry.action },
      h('div', { class: 'when' }, time(entry.timestamp)),
      h('div', { class: 'what' },
        h('strong', null, Actions[entry.action] ?? entry.action),
        entry.operation_id ? h('span', { class: 'muted' }, ` · operation #${entry.operation_id}`) : null),
      h('ul', { class: 'changes' }, Object.entries(entry.changes ?? {}).map(([name, change]) =>
        h('li', null, h('span', { class: 'field-name' }, name.replaceAll('_', ' ')), ': ',
          h('span', { class: 'from' }, value(change?.from)), ' → ', h('span', { class: 'to' }, value(change?.to))))),
      h('div', { class: 'who small' }, 'by ', entry.performed_by),
      entry.justification ? h('div', { class: 'justification small' }, 'Justification: ', entry.justification) : null))),
    page.next ? h('button', { type: 'button', class: 'secondary', 'data-action': 'older', onclick: more }, 'Show older entries') : null);
}

function value(v) {
  if (v === null || v === undefined) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
