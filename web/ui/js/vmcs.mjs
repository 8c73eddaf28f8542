// The VMCS dump grouped as the SDM groups it, the VMCB dump by its two areas (SVM vCPUs), and
// the name filter. Pure: no DOM.
//
// SDM Vol. 3C 24.3 "Organization of VMCS Data" lists six groups. The API's `group` is the
// encoding's type (24.11.2: bits 11:10 = control, read-only data, guest state, host state), which
// lumps the three control groups together; they are told apart by the SDM's field names.
export const VMCS_GROUPS = [
  { id: 'guest', title: 'Guest-state area', section: 'SDM Vol. 3C 24.4' },
  { id: 'host', title: 'Host-state area', section: 'SDM Vol. 3C 24.5' },
  { id: 'execution', title: 'VM-execution control fields', section: 'SDM Vol. 3C 24.6' },
  { id: 'exit', title: 'VM-exit control fields', section: 'SDM Vol. 3C 24.7' },
  { id: 'entry', title: 'VM-entry control fields', section: 'SDM Vol. 3C 24.8' },
  { id: 'exit_info', title: 'VM-exit information fields', section: 'SDM Vol. 3C 24.9' },
];

// The SDM group id of one field of GET .../vmcs ({name, group, ...}).
export function sdmGroupOf(field) {
  switch (field.group) {
    case 'guest': return 'guest';
    case 'host': return 'host';
    case 'read_only': return 'exit_info';
    case 'control':
      // 24.7: VM_EXIT_CONTROLS, the secondary exit controls (24.7.1) and the MSR-store/-load areas (24.7.2).
      if (/^(SECONDARY_)?VM_EXIT_/.test(field.name)) return 'exit';
      // 24.8: VM_ENTRY_CONTROLS, the MSR-load area (24.8.2), event injection (24.8.3, incl. INJECTED_EVENT_DATA).
      if (/^VM_ENTRY_/.test(field.name) || field.name === 'INJECTED_EVENT_DATA') return 'entry';
      return 'execution';
    default: return 'execution';
  }
}

// Fields whose name contains `filter` (case-insensitive; blank: all), grouped in VMCS_GROUPS
// order: [{...group, fields: [...]}], groups without a matching field left out.
export function groupVmcsFields(fields, filter = '') {
  const needle = filter.trim().toUpperCase();
  const groups = VMCS_GROUPS.map((g) => ({ ...g, fields: [] }));
  const byId = new Map(groups.map((g) => [g.id, g]));
  for (const f of fields) {
    if (needle && !f.name.toUpperCase().includes(needle)) continue;
    byId.get(sdmGroupOf(f)).fields.push(f);
  }
  return groups.filter((g) => g.fields.length > 0);
}

// AMD APM Vol. 2 Appendix B: the VMCB's control area (Table B-1) and state save area (Table B-2).
export const VMCB_AREAS = [
  { id: 'control', title: 'Control area', section: 'APM Vol. 2 Table B-1' },
  { id: 'save', title: 'State save area', section: 'APM Vol. 2 Table B-2' },
];

// Fields of GET .../vmcb ({name, offset, width, area, value}) whose name contains `filter`
// (case-insensitive; blank: all), grouped by area in VMCB_AREAS order, each in offset order.
export function groupVmcbFields(fields, filter = '') {
  const needle = filter.trim().toUpperCase();
  return VMCB_AREAS.map((a) => ({
    ...a,
    fields: fields.filter((f) => f.area === a.id && (!needle || f.name.toUpperCase().includes(needle)))
      .sort((x, y) => x.offset - y.offset),
  })).filter((a) => a.fields.length > 0);
}
