// The fleet at a glance: counts by status and organization, and a filterable, sortable, paged
// device table. Filters, sort and page live in the address (/?operational_status=maintenance),
// so a view can be bookmarked or shared. Changes from the event stream refresh it in place.

import { api, can, paths } from './api.js';
import { h, fill, time, statusBadge, announce, isOverdue, debounce, setLive, keepFocus } from './dom.js';
import { follow } from './events.js';

const PageSize = 25;
const Statuses = ['provisioning', 'active', 'maintenance', 'inactive', 'decommissioned'];
const Filters = ['organization', 'operational_status', 'device_type', 'location', 'assigned_user', 'maintenance_overdue'];
const Columns = [
  { key: 'device_id', label: 'Device', sort: 'device_id' },
  { key: 'operational_status', label: 'Status', sort: 'operational_status' },
  { key: 'device_type', label: 'Type', sort: 'device_type' },
  { key: 'organization', label: 'Organization', sort: 'organization' },
  { key: 'location', label: 'Location', sort: 'location' },
  { key: 'assigned_user', label: 'Assigned user', sort: 'assigned_user' },
  { key: 'next_maintenance', label: 'Next maintenance', sort: 'next_maintenance' },
];

export async function overviewPage(main) {
  if (!can('devices:read')) {
    main.append(h('h1', { tabindex: '-1' }, 'Fleet overview'),
      h('p', { class: 'notice' }, 'This token cannot read devices: it needs the devices:read scope.'));
    return null;
  }
  const summary = h('section', { class: 'summary', 'aria-labelledby': 'summary-title' });
  const tableArea = h('section', { class: 'devices', 'aria-labelledby': 'devices-title' });
  const form = filterForm();
  main.append(h('h1', { tabindex: '-1' }, 'Fleet overview'), summary,
    h('h2', { id: 'devices-title' }, 'Devices'), form, tableArea);

  let latest = 0;
  async function refresh() {
    const request = ++latest;
    const query = currentQuery();
    try {
      const [counts, page] = await Promise.all([api(paths.summary), api(`${paths.devices}?${listQuery(query)}`)]);
      if (request !== latest) return;
      renderSummary(summary, counts.data, form);
      keepFocus(tableArea, () => renderTable(tableArea, page.data, query, refresh, form));
    } catch (error) {
      if (request !== latest) return;
      fill(tableArea, h('p', { class: 'form-error', role: 'alert' }, `Could not load the devices: ${error.message}`));
    }
  }

  form.addEventListener('submit', event => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of Filters) {
      const field = form.elements[name];
      const value = field.type === 'checkbox' ? (field.checked ? 'true' : '') : field.value.trim();
      if (value) query.set(name, value);
    }
    if (form.elements.ordering.value !== 'device_id') query.set('ordering', form.elements.ordering.value);
    setQuery(query);
    refresh().then(() => announce('Filters applied.'));
  });
  form.querySelector('[data-action=clear]').addEventListener('click', () => {
    for (const name of Filters) {
      const control = form.elements[name];
      if (control.type === 'checkbox') control.checked = false;
      else control.value = '';
    }
    form.elements.ordering.value = 'device_id';
    setQuery(new URLSearchParams());
    refresh().then(() => announce('Filters cleared.'));
  });

  await refresh();
  const later = debounce(refresh, 250);
  const stop = follow('', event => {
    if (!event.type.startsWith('device.')) return;
    announce(describe(event));
    later();
  }, setLive);
  return () => {
    stop();
    later.cancel();
  };
}

function describe(event) {
  const change = event.from !== null || event.to !== null ? `: ${show(event.from)} → ${show(event.to)}` : '';
  return `${event.device_id} ${event.type.replace('device.', '').replace('_', ' ')}${change}`;
}

function show(value) {
  if (value === null || value === undefined) return 'none';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function currentQuery() {
  return new URLSearchParams(location.search);
}

function setQuery(query) {
  const text = query.toString();
  history.replaceState(null, '', text ? `/?${text}` : '/');
}

function listQuery(query) {
  const list = new URLSearchParams();
  for (const name of Filters) {
    if (query.get(name)) list.set(name, query.get(name));
  }
  list.set('ordering', query.get('ordering') || 'device_id');
  list.set('limit', String(PageSize));
  const page = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
  list.set('offset', String((page - 1) * PageSize));
  return list.toString();
}

function filterForm() {
  const query = currentQuery();
  const field = (name, label, control) => h('div', { class: 'field' }, h('label', { for: `filter-${name}` }, label), control);
  const text = name => h('input', { id: `filter-${name}`, name, type: 'text', value: query.get(name) ?? '' });
  const form = h('form', { class: 'filters', 'aria-label': 'Filter devices' },
    field('organization', 'Organization', h('select', { id: 'filter-organization', name: 'organization' },
      h('option', { value: '' }, 'All organizations'),
      query.get('organization') ? h('option', { value: query.get('organization'), selected: true }, query.get('organization')) : null)),
    field('operational_status', 'Status', h('select', { id: 'filter-operational_status', name: 'operational_status' },
      h('option', { value: '' }, 'Any status'),
      Statuses.map(s => h('option', { value: s, selected: query.get('operational_status') === s }, s)))),
    field('device_type', 'Type', text('device_type')),
    field('location', 'Location', text('location')),
    field('assigned_user', 'Assigned user', h('input', {
      id: 'filter-assigned_user', name: 'assigned_user', type: 'text', inputmode: 'email', autocomplete: 'off', value: query.get('assigned_user') ?? '',
    })),
    field('ordering', 'Sort by', h('select', { id: 'filter-ordering', name: 'ordering' },
      Columns.flatMap(c => [
        h('option', { value: c.sort, selected: (query.get('ordering') || 'device_id') === c.sort }, `${c.label}, ascending`),
        h('option', { value: `-${c.sort}`, selected: query.get('ordering') === `-${c.sort}` }, `${c.label}, descending`),
      ]))),
    h('div', { class: 'field checkbox' },
      h('input', { id: 'filter-maintenance_overdue', name: 'maintenance_overdue', type: 'checkbox', checked: query.get('maintenance_overdue') === 'true' }),
      h('label', { for: 'filter-maintenance_overdue' }, 'Maintenance overdue only')),
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'button', class: 'secondary', 'data-action': 'clear' }, 'Clear')));
  return form;
}

function renderSummary(section, summary, form) {
  const head = Statuses.map(s => h('th', { scope: 'col' }, s));
  const row = (name, counts) => h('tr', null, h('th', { scope: 'row' }, name), h('td', { 'data-label': 'Total' }, String(counts.total)),
    Statuses.map(s => h('td', { 'data-label': s, 'data-status': s }, String(counts.by_status[s]))),
    h('td', { 'data-label': 'Overdue', class: counts.maintenance_overdue ? 'overdue' : null }, String(counts.maintenance_overdue)));
  fill(section,
    h('h2', { id: 'summary-title' }, 'At a glance'),
    h('ul', { class: 'tiles', 'aria-label': 'Devices by status' },
      h('li', { class: 'tile', 'data-status': 'total' }, h('span', { class: 'count' }, String(summary.total)), ' devices'),
      Statuses.map(s => h('li', { class: `tile status-${s}`, 'data-status': s }, h('span', { class: 'count' }, String(summary.by_status[s])), ` ${s}`)),
      h('li', { class: `tile ${summary.maintenance_overdue ? 'overdue' : ''}`, 'data-status': 'overdue' },
        h('span', { class: 'count' }, String(summary.maintenance_overdue)), ' maintenance overdue')),
    h('div', { class: 'scroll', role: 'region', 'aria-label': 'Devices by organization', tabindex: '0' },
      h('table', { class: 'by-organization' },
        h('caption', null, 'By organization'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Organization'), h('th', { scope: 'col' }, 'Total'), head,
          h('th', { scope: 'col' }, 'Overdue'))),
        h('tbody', null, summary.organizations.map(o => row(o.organization, o))))));

  // The organization filter offers the organizations the token can see devices in.
  const select = form.elements.organization;
  const chosen = select.value;
  const names = summary.organizations.map(o => o.organization);
  if (chosen && !names.includes(chosen)) names.push(chosen);
  fill(select, h('option', { value: '' }, 'All organizations'),
    names.map(n => h('option', { value: n, selected: n === chosen }, n)));
}

function renderTable(area, page, query, refresh, form) {
  const ordering = query.get('ordering') || 'device_id';
  const current = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
  const first = page.count === 0 ? 0 : (current - 1) * PageSize + 1;
  const last = (current - 1) * PageSize + page.results.length;
  const now = Date.now();

  const header = Columns.map(column => {
    const direction = ordering === column.sort ? 'ascending' : ordering === `-${column.sort}` ? 'descending' : null;
    const next = direction === 'ascending' ? `-${column.sort}` : column.sort;
    return h('th', { scope: 'col', 'aria-sort': direction ?? 'none' },
      h('button', {
        type: 'button', class: 'sort', 'data-sort': column.sort,
        onclick: () => {
          const updated = currentQuery();
          updated.set('ordering', next);
          updated.delete('page');
          form.elements.ordering.value = next;
          setQuery(updated);
          refresh().then(() => announce(`Sorted by ${column.label}, ${next.startsWith('-') ? 'descending' : 'ascending'}.`));
        },
      }, column.label, h('span', { 'aria-hidden': 'true', class: 'arrow' }, direction === 'ascending' ? ' ▲' : direction === 'descending' ? ' ▼' : '')));
  });

  const rows = page.results.map(device => {
    const overdue = isOverdue(device, now);
    return h('tr', { 'data-device': device.device_id, class: overdue ? 'overdue' : null },
      h('td', { 'data-label': 'Device' },
        h('a', { href: `/devices/${encodeURIComponent(device.device_id)}`, 'data-nav': true }, device.device_id),
        h('div', { class: 'muted small' }, device.device_name)),
      h('td', { 'data-label': 'Status' }, statusBadge(device.operational_status)),
      h('td', { 'data-label': 'Type' }, device.device_type),
      h('td', { 'data-label': 'Organization' }, device.organization),
      h('td', { 'data-label': 'Location' }, device.location ?? '—'),
      h('td', { 'data-label': 'Assigned user' }, device.assigned_user ?? '—'),
      h('td', { 'data-label': 'Next maintenance' }, time(device.next_maintenance),
        overdue ? h('strong', { class: 'overdue-flag' }, ' Overdue') : null));
  });

  const go = target => {
    const updated = currentQuery();
    if (target > 1) updated.set('page', String(target));
    else updated.delete('page');
    setQuery(updated);
    refresh().then(() => {
      announce(`Page ${target}.`);
      area.querySelector('table')?.focus();
    });
  };
  const pages = Math.max(1, Math.ceil(page.count / PageSize));
  fill(area,
    h('p', { class: 'count-line', 'aria-live': 'polite' }, page.count === 0 ? 'No devices match.' : `Showing ${first}–${last} of ${page.count} devices`),
    h('div', { class: 'scroll', role: 'region', 'aria-label': 'Device table', tabindex: '0' },
      h('table', { class: 'device-table', tabindex: '-1' },
        h('caption', { class: 'visually-hidden' }, 'Devices; column headers sort the table'),
        h('thead', null, h('tr', null, header)),
        h('tbody', null, rows))),
    h('nav', { class: 'pager', 'aria-label': 'Device pages' },
      h('button', { type: 'button', class: 'secondary', 'data-focus': 'previous', disabled: current <= 1, onclick: () => go(current - 1) }, 'Previous page'),
      h('span', null, `Page ${current} of ${pages}`),
      h('button', { type: 'button', class: 'secondary', 'data-focus': 'next', disabled: current >= pages, onclick: () => go(current + 1) }, 'Next page')));
}
