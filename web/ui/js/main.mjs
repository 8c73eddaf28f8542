// Lantern's browser console: hash routes, one view at a time, each refreshed by its own Poller
// over the JSON API v1 (docs/api.md). Live data is polled with ?since= offsets, one request at
// a time per tab (api.mjs), at an adaptive pace (poll.mjs); docs/api.md "The browser console"
// says why this and not a stream.
import { ApiClient } from './api.mjs';
import { appendBounded, LOG_LEVELS, levelShown, trimFront } from './tail.mjs';
import { changedKeys } from './diff.mjs';
import { exitChartSvg, colourOf } from './chart.mjs';
import { CR0_FLAGS, CR4_FLAGS, EFER_FLAGS, RFLAGS_FLAGS, decodeFlags, describeAccessRights,
  decodeQualification, pagingMode } from './flags.mjs';
import { formatBytes, formatRate, formatUptime, parseHex } from './format.mjs';
import { h, replaceChildren, table } from './dom.mjs';
import { BUSY_POLICY, nextDelay, othersRate } from './poll.mjs';
import { RateHistory, sampleFromExits } from './rates.mjs';
import { groupVmcbFields, groupVmcsFields } from './vmcs.mjs';
import { validateEvent, EXCEPTIONS_WITH_ERROR_CODE } from './validate.mjs';

const api = new ApiClient();
const view = document.getElementById('view');
const statusLine = document.getElementById('status');
let current = null;       // the running view: {stop()}
let capabilities = null;  // what the API offers beyond v1's first routes (from its OpenAPI document)

// ---- polling ----------------------------------------------------------------------------------
class Poller {
  constructor(tick, policy = {}) {
    this.tick = tick;
    this.policy = policy;
    this.failures = 0;
    this.running = false;
    this.timer = 0;
    this.onVisible = () => { if (!document.hidden) this.run(); };
  }

  start() {
    this.running = true;
    document.addEventListener('visibilitychange', this.onVisible);
    this.run();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
  }

  // A refresh right now (after an action), instead of at the next turn.
  soon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), 100);
  }

  async run() {
    clearTimeout(this.timer);
    if (!this.running || this.busy) return;
    if (document.hidden) { setStatus('paused', 'paused while the tab is hidden'); return; }
    this.busy = true;
    const started = performance.now();
    let retryAfterS = 0;
    let pace = null;  // what the tick asks of the pace: { minDelayMs, note }
    try {
      pace = await this.tick();
      this.failures = 0;
    } catch (e) {
      if (e.status === 401) { this.busy = false; this.stop(); return; }  // the token prompt takes over
      this.failures += 1;
      retryAfterS = e.retryAfterS ?? 0;
      setStatus('error', `${e.message ?? e}`);
    } finally {
      this.busy = false;
    }
    if (!this.running) return;
    const delay = Math.max(nextDelay({ elapsedMs: performance.now() - started, failures: this.failures, retryAfterS },
      this.policy), pace?.minDelayMs ?? 0);
    if (this.failures === 0) {
      setStatus('live', `updated ${new Date().toLocaleTimeString('en-GB')} · next in ${(delay / 1000).toFixed(1)} s`
        + (pace?.note ? ` · ${pace.note}` : ''));
    }
    this.timer = setTimeout(() => this.run(), delay);
  }
}

function setStatus(kind, text) {
  statusLine.className = `status ${kind}`;
  statusLine.textContent = text;
}

// An error shown where the data would be.
function errorBox(e) {
  return h('p', { class: 'error' }, e.status ? `${e.status} ${e.code}: ${e.message}` : String(e.message ?? e));
}

// ---- the token prompt ---------------------------------------------------------------------------
const tokenDialog = document.getElementById('token-dialog');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token-input');
const tokenMessage = document.getElementById('token-message');

api.onUnauthorized = (error) => {
  current?.stop();
  const sent = api.token !== '';
  tokenMessage.textContent = sent
    ? `Token refused: ${error.message}. Enter the console.token= of this boot.`
    : 'This console needs a token: enter the console.token= value of the kernel command line.';
  tokenMessage.className = sent ? 'error' : '';
  setStatus('error', sent ? 'token refused' : 'token needed');
  if (!tokenDialog.open) tokenDialog.showModal();
  tokenInput.focus();
};

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  api.token = tokenInput.value.trim();
  tokenInput.value = '';
  tokenDialog.close();
  route();
});

// ---- what the API offers ------------------------------------------------------------------------
// Routes that later API versions add (guest console input, VM lifecycle) are shown only when the
// server's OpenAPI document lists them.
async function loadCapabilities() {
  if (capabilities) return capabilities;
  const doc = await api.get('/openapi.json');
  const has = (path, method) => Boolean(doc.paths?.[path]?.[method]);
  capabilities = {
    consoleInput: has('/api/v1/vms/{vm}/console', 'post'),
    reset: has('/api/v1/vms/{vm}/reset', 'post'),
  };
  return capabilities;
}

// ---- overview -----------------------------------------------------------------------------------
function vcpuKey(v) { return `${v.vm}/${v.vcpu}`; }
function vcpuLink(v) { return h('a', { href: `#/vcpu/${v.vm}/${v.vcpu}` }, `vCPU ${v.vm}/${v.vcpu}`); }

function noGuestsReason(system) {
  if (!system) return 'No vCPUs.';
  const vmx = system.vmx ?? {};
  const svm = system.svm ?? {};
  if (vmx.available === false && svm.available !== true) {
    return `No guests can run here: hardware virtualization is not available (${vmx.reason || 'no reason given'}` +
      `${svm.reason ? `; ${svm.reason}` : ''}). Lantern needs VT-x (VMX) or AMD-V (SVM): boot it under QEMU TCG ` +
      'with -cpu max (SVM), under Bochs, or under KVM on a host with nested virtualization (docs/lab-guide.md).';
  }
  const backend = system.hv === 'svm' ? `SVM is on in ${svm.cores ?? 0}` : `VMX is on in ${vmx.cores ?? 0}`;
  return `${backend} core(s), but no guest runs: the demo guests are off (vmx.demo=0) or no VM was given.`;
}

function overviewView() {
  const els = {
    system: h('section', { id: 'system', class: 'card' }, h('h2', {}, 'System'), h('p', {}, 'loading…')),
    notice: h('p', { id: 'no-guests', class: 'notice', hidden: true }),
    charts: h('div', { id: 'charts', class: 'charts' }),
    vcpus: h('section', { id: 'vcpus', class: 'card' }, h('h2', {}, 'vCPUs')),
    cpus: h('section', { id: 'cpus', class: 'card' }, h('h2', {}, 'Physical CPUs')),
    vms: h('section', { id: 'vms', class: 'card' }, h('h2', {}, 'VMs')),
  };
  replaceChildren(view, h('h1', {}, 'Overview'), els.notice, els.system,
    h('section', { class: 'card' }, h('h2', {}, 'Exits per second, by exit reason'), els.charts),
    els.vcpus, els.cpus, els.vms);

  const histories = new Map();
  let system = null;
  let round = 0;
  let reading = null;  // the last /system reading, for othersRate()
  let busy = false;    // other clients keep the console busy: a round every BUSY_POLICY.delayMs

  async function tick() {
    // While busy, /system comes every round (to see the others stop) and /cpus and /vms wait.
    if (busy || round % 3 === 0) {
      system = await api.get('/system');
      const now = { consoleRequests: system.console?.requests ?? 0, ownRequests: api.sent, atMs: performance.now() };
      const rate = othersRate(reading, now);
      reading = now;
      busy = rate >= BUSY_POLICY.othersPerSecond;
      renderSystem(els.system, system);
      if (!busy) {
        renderCpus(els.cpus, (await api.get('/cpus')).cpus);
        renderVms(els.vms, (await api.get('/vms')).vms);
      }
      els.system.dataset.othersRate = rate.toFixed(1);
    }
    round += 1;
    // One request per round: the counters come without a snapshot from each vCPU's core, so the
    // tab never makes the console wait on a busy core (docs/architecture.md, "Live data").
    const vcpus = (await api.get('/vcpus?exit_counts=true')).vcpus;
    const now = performance.now();
    for (const v of vcpus) {
      if (!v.launched || v.state === 'stopped') continue;
      if (!histories.has(vcpuKey(v))) histories.set(vcpuKey(v), new RateHistory(60));
      // The total is the counters' sum: `exits` is published less often than the counters.
      const total = v.exit_counts.reduce((sum, c) => sum + c.count, 0);
      histories.get(vcpuKey(v)).add(sampleFromExits({ total, counts: v.exit_counts }, now));
    }
    els.notice.hidden = vcpus.length > 0;
    els.notice.textContent = vcpus.length ? '' : noGuestsReason(system);
    renderVcpus(els.vcpus, vcpus, histories);
    renderCharts(els.charts, vcpus, histories);
    return busy ? { minDelayMs: BUSY_POLICY.delayMs,
      note: `other clients at ${els.system.dataset.othersRate} requests/s: this tab keeps out of their way` } : null;
  }
  const poller = new Poller(tick);
  poller.start();
  return poller;
}

function renderSystem(section, s) {
  const vmx = s.vmx ?? {};
  const svm = s.svm ?? {};
  // The capabilities of the backend that runs the guests (SVM under QEMU TCG -cpu max).
  const backendCaps = s.hv === 'svm' ? svm.capabilities : vmx.capabilities;
  const caps = Object.entries(backendCaps ?? {}).filter(([, on]) => on).map(([name]) => name);
  replaceChildren(section, h('h2', {}, 'System'), h('dl', { class: 'facts' },
    h('dt', {}, 'version'), h('dd', {}, `${s.name} ${s.version}`),
    h('dt', {}, 'uptime'), h('dd', {}, formatUptime(s.uptime_ms)),
    h('dt', {}, 'CPUs online'), h('dd', {}, s.cpus_online),
    h('dt', {}, 'VMX'), h('dd', { id: 'vmx-state' }, vmx.available ? `on in ${vmx.cores} core(s), VMCS revision ${vmx.vmcs_revision}`
      : `not available: ${vmx.reason}`),
    h('dt', {}, 'SVM'), h('dd', { id: 'svm-state' }, svm.available ? `on in ${svm.cores} core(s), ${svm.asids} ASIDs`
      : `not available: ${svm.reason ?? '—'}`),
    h('dt', {}, 'capabilities'), h('dd', {}, caps.join(' ') || '—'),
    h('dt', {}, 'network'), h('dd', {}, `${s.network?.ip ?? '—'} (${s.network?.nic ?? 'no NIC'})`),
    h('dt', {}, 'console'), h('dd', {}, `${s.console?.connections_open} open, ${s.console?.requests} requests, ` +
      `${s.console?.refused} refused`),
    h('dt', {}, 'command line'), h('dd', { class: 'mono' }, s.cmdline || '—')));
}

function renderCpus(section, cpus) {
  replaceChildren(section, h('h2', {}, 'Physical CPUs'), table(['CPU', 'APIC ID', 'VMX', 'SVM', 'bound vCPUs'],
    cpus.map((c) => h('tr', {},
      h('td', {}, `${c.index}${c.bsp ? ' (BSP)' : ''}`), h('td', {}, c.apic_id),
      h('td', { class: `state ${c.vmx}` }, c.vmx),
      h('td', { class: `state ${c.svm ?? 'unsupported'}` }, c.svm ?? 'unsupported'),
      h('td', {}, c.vcpus.length ? c.vcpus.map((v) => [vcpuLink(v), ' ']) : '—')))));
}

function renderVms(section, vms) {
  replaceChildren(section, h('h2', {}, 'VMs'), vms.length ? table(
    ['VM', 'program', 'state', 'memory', 'vCPUs', 'console', 'exit status'],
    vms.map((vm) => h('tr', { 'data-vm': vm.vm },
      h('td', {}, h('a', { href: `#/vm/${vm.vm}` }, `VM ${vm.vm}`)), h('td', {}, vm.program),
      h('td', { class: `state ${vm.state}` }, vm.state), h('td', {}, formatBytes(vm.memory_bytes)),
      h('td', {}, vm.vcpu_count), h('td', {}, formatBytes(vm.console_bytes)),
      h('td', {}, vm.exit_status ?? '—')))) : h('p', {}, 'No VMs.'));
}

function vcpuState(v) {
  if (v.state === 'stopped') return `stopped: ${v.stop_reason}`;
  return v.in_hlt ? `${v.state} (in HLT)` : v.state;
}

function renderVcpus(section, vcpus, histories) {
  replaceChildren(section, h('h2', {}, 'vCPUs'), vcpus.length ? table(
    ['vCPU', 'CPU', 'state', 'exits', 'exits/s', 'last exit', 'pending events', 'injected'],
    vcpus.map((v) => {
      const last = histories.get(vcpuKey(v))?.points.at(-1);
      return h('tr', { 'data-vcpu': vcpuKey(v) },
        h('td', {}, vcpuLink(v)), h('td', {}, v.cpu ?? '—'),
        h('td', { class: `state ${v.state}` }, vcpuState(v)),
        h('td', { class: 'num' }, v.exits.toLocaleString('en-US')),
        h('td', { class: 'num' }, formatRate(last?.total)),
        h('td', {}, v.last_exit?.name ?? '—'), h('td', { class: 'num' }, v.pending_events),
        h('td', { class: 'num' }, v.events_injected));
    }), { class: 'vcpu-table' }) : h('p', {}, 'No vCPUs.'));
}

function renderCharts(container, vcpus, histories) {
  const cards = [];
  for (const v of vcpus) {
    const history = histories.get(vcpuKey(v));
    if (!history) continue;
    const reasons = history.reasons();
    const last = history.points.at(-1);
    const card = h('figure', { class: 'chart', 'data-vcpu': vcpuKey(v), 'data-total-exits': history.last?.total ?? 0,
      'data-points': history.points.length },
    h('figcaption', {}, vcpuLink(v), ' ', h('span', { class: 'rate' }, `${formatRate(last?.total)} exits/s`),
      ' · ', h('span', { class: 'total' }, `${(history.last?.total ?? 0).toLocaleString('en-US')} exits`)));
    const plot = h('div', { class: 'plot' });
    plot.innerHTML = exitChartSvg(history.points, reasons);  // markup from chart.mjs, names escaped there
    card.append(plot, h('ul', { class: 'legend' }, reasons.slice(0, 8).map((name) => {
      const swatch = h('span', { class: 'swatch' });
      swatch.style.background = colourOf(reasons, name);
      return h('li', {}, swatch, `${name} ${formatRate(last?.byReason[name] ?? 0)}/s`);
    })));
    cards.push(card);
  }
  replaceChildren(container, cards.length ? cards : h('p', {}, vcpus.length ? 'Collecting samples…' : 'No vCPUs.'));
}

// ---- one vCPU -----------------------------------------------------------------------------------
const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'];
const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr'];

function vcpuView(vm, vcpu) {
  const base = `/vms/${vm}/vcpus/${vcpu}`;
  const els = {
    summary: h('p', { id: 'vcpu-summary' }, 'loading…'),
    regs: h('section', { id: 'regs', class: 'card' }, h('h2', {}, 'General registers')),
    control: h('section', { id: 'control', class: 'card' }, h('h2', {}, 'Control registers')),
    segments: h('section', { id: 'segments', class: 'card' }, h('h2', {}, 'Segments')),
    exits: h('section', { id: 'exits', class: 'card' }, h('h2', {}, 'Exits')),
    events: h('section', { id: 'events', class: 'card' }, h('h2', {}, 'Pending events')),
    vmcs: h('section', { id: 'vmcs', class: 'card' }, h('h2', {}, 'VMCS')),
  };
  const vmcsTables = h('div', { id: 'vmcs-groups' }, 'loading…');
  const filter = h('input', { id: 'vmcs-filter', type: 'search', placeholder: 'filter by name, e.g. GUEST_CR', size: 30 });
  const refresh = h('button', { type: 'button' }, 'Refresh now');
  let vmcsFields = null;
  let vmcsWanted = true;
  let backend = null;  // 'vmx' (a VMCS) or 'svm' (a VMCB), from the first summary
  const renderBlock = () => (backend === 'svm' ? renderVmcb : renderVmcs)(vmcsTables, vmcsFields, filter.value);
  filter.addEventListener('input', renderBlock);
  refresh.addEventListener('click', () => { vmcsWanted = true; poller.soon(); });
  els.vmcs.append(h('div', { class: 'toolbar' }, filter, ' ', refresh,
    h('span', { class: 'hint' }, ' refreshed every 5th round')), vmcsTables);
  const injectForm = injectionForm(base, () => poller.soon());

  replaceChildren(view, h('h1', {}, `vCPU ${vcpu} of `, h('a', { href: `#/vm/${vm}` }, `VM ${vm}`)),
    els.summary, h('div', { class: 'columns' }, els.regs, els.control), els.segments, els.exits,
    h('div', { class: 'columns' }, els.events, h('section', { class: 'card' }, h('h2', {}, 'Inject an event'), injectForm)),
    els.vmcs);

  let previous = null;
  let round = 0;
  async function tick() {
    const summary = await api.get(base);
    if (backend === null) {
      backend = summary.backend ?? 'vmx';
      if (backend === 'svm') {
        els.vmcs.querySelector('h2').textContent = 'VMCB';
        filter.placeholder = 'filter by name, e.g. INTERCEPT';
      }
    }
    els.summary.textContent = `${vcpuState(summary)} on CPU ${summary.cpu ?? '—'} · ` +
      `${summary.exits.toLocaleString('en-US')} exits · last ${summary.last_exit?.name ?? '—'}`;
    try {
      const regs = await api.get(`${base}/regs`);
      const changed = changedKeys(previous, regs);
      previous = regs;
      renderRegs(els.regs, regs, changed);
      renderControl(els.control, regs, changed);
      renderSegments(els.segments, regs, changed);
    } catch (e) {
      if (e.status === 401) throw e;
      replaceChildren(els.regs, h('h2', {}, 'General registers'), errorBox(e));
    }
    try {
      renderExits(els.exits, await api.get(`${base}/exits`));
    } catch (e) {
      if (e.status === 401) throw e;
      replaceChildren(els.exits, h('h2', {}, 'Exits'), errorBox(e));
    }
    try {
      renderEvents(els.events, await api.get(`${base}/events`));
    } catch (e) {
      if (e.status === 401) throw e;
      replaceChildren(els.events, h('h2', {}, 'Pending events'), errorBox(e));
    }
    if (vmcsWanted || round % 5 === 0) {
      vmcsWanted = false;
      try {
        vmcsFields = (await api.get(`${base}/${backend === 'svm' ? 'vmcb' : 'vmcs'}`)).fields;
        renderBlock();
      } catch (e) {
        if (e.status === 401) throw e;
        replaceChildren(vmcsTables, errorBox(e));
      }
    }
    round += 1;
  }
  const poller = new Poller(tick);
  poller.start();
  return poller;
}

function regCell(name, value, changed) {
  return h('td', { class: `mono${changed.has(name) ? ' changed' : ''}`, 'data-reg': name }, value);
}

function renderRegs(section, regs, changed) {
  const rows = [];
  for (let i = 0; i < GPRS.length; i += 2) {
    rows.push(h('tr', {}, GPRS.slice(i, i + 2).map((name) => [h('th', {}, name), regCell(name, regs[name], changed)])));
  }
  replaceChildren(section, h('h2', {}, 'General registers'), h('table', { class: 'regs' }, h('tbody', {}, rows)),
    h('p', { class: 'hint' }, 'Highlighted: changed since the last refresh.'));
}

function flagChips(value, tableOfFlags) {
  return h('span', { class: 'flags' }, decodeFlags(value, tableOfFlags).filter((f) => f.set)
    .map((f) => h('abbr', { class: 'flag', title: `${f.title} (bit ${f.bit})` }, f.name)));
}

function renderControl(section, regs, changed) {
  const cr0 = parseHex(regs.cr0);
  const cr4 = parseHex(regs.cr4);
  const efer = parseHex(regs.efer);
  const rflags = parseHex(regs.rflags);
  const iopl = Number((rflags >> 12n) & 3n);  // RFLAGS.IOPL, bits 13:12 (SDM Vol. 1 3.4.3.3)
  const row = (name, flags) => h('tr', {}, h('th', {}, name), regCell(name, regs[name], changed),
    h('td', {}, flags ?? ''));
  replaceChildren(section, h('h2', {}, 'Control registers'), h('table', { class: 'regs' }, h('tbody', {},
    row('cr0', flagChips(cr0, CR0_FLAGS)), row('cr2'), row('cr3'), row('cr4', flagChips(cr4, CR4_FLAGS)),
    row('efer', flagChips(efer, EFER_FLAGS)),
    h('tr', {}, h('th', {}, 'rflags'), regCell('rflags', regs.rflags, changed),
      h('td', {}, flagChips(rflags, RFLAGS_FLAGS), ` IOPL=${iopl}`)))),
  h('p', { id: 'paging-mode' }, 'Mode: ', h('strong', {}, pagingMode(cr0, cr4, efer))));
}

function renderSegments(section, regs, changed) {
  replaceChildren(section, h('h2', {}, 'Segments'), table(['', 'selector', 'base', 'limit', 'access rights', ''],
    SEGMENTS.map((name) => {
      const s = regs.segments[name];
      const cell = (field) => regCell(`segments.${name}.${field}`, s[field], changed);
      return h('tr', {}, h('th', {}, name), cell('selector'), cell('base'), cell('limit'), cell('access_rights'),
        h('td', {}, describeAccessRights(parseHex(s.access_rights))));
    }), { class: 'segments' }));
}

function renderExits(section, exits) {
  const counts = [...exits.counts].sort((a, b) => b.count - a.count);
  replaceChildren(section, h('h2', {}, `Exits (${exits.total.toLocaleString('en-US')})`),
    h('div', { class: 'columns' },
      table(['reason', 'count'], counts.map((c) => h('tr', {}, h('td', {}, `${c.name} (${c.reason})`),
        h('td', { class: 'num' }, c.count.toLocaleString('en-US')))), { class: 'exit-counts' }),
      table(['last exits', 'qualification', 'RIP', 'TSC'], exits.recent.slice(0, 16).map((e) => h('tr', {},
        h('td', {}, e.entry_failure ? `${e.name} (entry failure)` : e.name),
        h('td', { class: 'mono', title: e.qualification }, decodeQualification(e.reason, parseHex(e.qualification))),
        h('td', { class: 'mono' }, e.rip), h('td', { class: 'num' }, e.tsc.toLocaleString('en-US')))),
      { class: 'recent-exits' })));
}

function renderEvents(section, queue) {
  replaceChildren(section, h('h2', {}, `Pending events (${queue.count} of ${queue.capacity})`),
    queue.events.length ? table(['position', 'type', 'vector', 'error code'], queue.events.map((e) => h('tr', {},
      h('td', {}, e.position), h('td', {}, e.type), h('td', { class: 'mono' }, `0x${e.vector.toString(16)}`),
      h('td', { class: 'mono' }, e.error_code ?? '—')))) : h('p', {}, 'The queue is empty.'));
}

function injectionForm(base, afterQueued) {
  const type = h('select', { id: 'inject-type', name: 'type' },
    h('option', { value: 'interrupt' }, 'interrupt'), h('option', { value: 'nmi' }, 'NMI'),
    h('option', { value: 'exception' }, 'exception'));
  const vector = h('input', { id: 'inject-vector', name: 'vector', value: '0x30', size: 6, autocomplete: 'off' });
  const errorCode = h('input', { id: 'inject-error-code', name: 'error_code', size: 10, placeholder: 'none',
    autocomplete: 'off' });
  const result = h('p', { id: 'inject-result', role: 'status' });
  const form = h('form', { id: 'inject-form', class: 'inject' },
    h('label', {}, 'type ', type), h('label', {}, 'vector ', vector), h('label', {}, 'error code ', errorCode),
    h('button', { type: 'submit' }, 'Queue'), result,
    h('p', { class: 'hint' }, 'Interrupts 16-255; NMI vector 2; exceptions 0-31 except 2, with an error code ',
      `exactly for vectors ${[...EXCEPTIONS_WITH_ERROR_CODE].join(', ')}.`));
  type.addEventListener('change', () => { if (type.value === 'nmi') vector.value = '2'; });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const checked = validateEvent({ type: type.value, vector: vector.value, errorCode: errorCode.value });
    if (!checked.ok) {
      result.className = 'error';
      result.textContent = `Not sent: ${checked.message}`;
      return;
    }
    try {
      const answer = await api.post(`${base}/events`, checked.body);
      result.className = 'ok';
      result.textContent = `Queued at position ${answer.position} of ${answer.capacity}.`;
      afterQueued();
    } catch (e) {
      result.className = 'error';
      result.textContent = e.status ? `${e.status} ${e.code}: ${e.message}` : e.message;
    }
  });
  return form;
}

function renderVmcs(container, fields, filterText) {
  if (!fields) return;
  const groups = groupVmcsFields(fields, filterText);
  replaceChildren(container, groups.length ? groups.map((g) => h('details', { open: true, 'data-group': g.id },
    h('summary', {}, `${g.title} (${g.fields.length}) `, h('span', { class: 'hint' }, g.section)),
    table(['field', 'encoding', 'width', 'value'], g.fields.map((f) => h('tr', {},
      h('td', { class: 'mono' }, f.name), h('td', { class: 'mono' }, f.encoding), h('td', {}, f.width),
      h('td', { class: 'mono', 'data-field': f.name }, f.value)))))) : h('p', {}, 'No field matches.'));
}

function renderVmcb(container, fields, filterText) {
  if (!fields) return;
  const areas = groupVmcbFields(fields, filterText);
  replaceChildren(container, areas.length ? areas.map((a) => h('details', { open: true, 'data-group': a.id },
    h('summary', {}, `${a.title} (${a.fields.length}) `, h('span', { class: 'hint' }, a.section)),
    table(['field', 'offset', 'width', 'value'], a.fields.map((f) => h('tr', {},
      h('td', { class: 'mono' }, f.name), h('td', { class: 'mono' }, `0x${f.offset.toString(16).padStart(3, '0')}`),
      h('td', {}, f.width), h('td', { class: 'mono', 'data-field': f.name }, f.value)))))) : h('p', {}, 'No field matches.'));
}

// ---- one VM: its console ------------------------------------------------------------------------
const CONSOLE_KEEP_CHARS = 256 * 1024;

function vmView(vm) {
  const summary = h('p', { id: 'vm-summary' }, 'loading…');
  const consoleText = h('pre', { id: 'console', class: 'tail' });
  const missed = h('p', { class: 'notice', hidden: true });
  const actions = h('div', { id: 'vm-actions', class: 'toolbar' });
  const input = h('form', { id: 'console-input', hidden: true });
  replaceChildren(view, h('h1', {}, `VM ${vm}`), summary, actions,
    h('section', { class: 'card' }, h('h2', {}, 'Guest console'), missed, consoleText, input));

  let since = 0;
  let text = '';
  let round = 0;
  async function tick() {
    if (round === 0) await setUpActions(vm, actions, input, () => poller.soon());
    if (round % 3 === 0) {
      const info = await api.get(`/vms/${vm}`);
      replaceChildren(summary, `${info.program} · `, h('span', { class: `state ${info.state}` }, info.state),
        vmStateDetail(info),
        ` · ${formatBytes(info.memory_bytes)} · vCPUs: `,
        info.vcpus.map((v) => [vcpuLink(v), ` ${vcpuState(v)} `]));
    }
    round += 1;
    // Drain what is there (16 KiB per answer), at most a few answers per round.
    for (let i = 0; i < 4; i++) {
      const chunk = await api.get(`/vms/${vm}/console?since=${since}`);
      if (chunk.missed) {
        missed.hidden = false;
        missed.textContent = `${chunk.missed.toLocaleString('en-US')} bytes were lost before ` +
          `offset ${chunk.start} (the guest wrote faster than the console read).`;
      }
      since = chunk.next;
      if (!chunk.text) break;
      const atBottom = consoleText.scrollTop + consoleText.clientHeight >= consoleText.scrollHeight - 4;
      text = appendBounded(text, chunk.text, CONSOLE_KEEP_CHARS);
      consoleText.textContent = text;
      if (atBottom) consoleText.scrollTop = consoleText.scrollHeight;
    }
  }
  const poller = new Poller(tick, { baseMs: 1000 });
  poller.start();
  return poller;
}

// What follows a VM's state: the exit code (user VMs) or status (demo guests), or why it failed,
// and for user VMs the kernel's format and command line.
function vmStateDetail(info) {
  let detail = '';
  if (info.state === 'failed' && info.failure) detail = `: ${info.failure}`;
  else if (info.exit_code !== null && info.exit_code !== undefined) detail = ` (exit code ${info.exit_code})`;
  else if (info.exit_status !== null && info.exit_status !== undefined) detail = ` (exit status ${info.exit_status})`;
  if (info.kind === 'user') {
    detail += ` · ${info.kernel_format ?? 'not loaded'}`;
    if (info.cmdline) detail += ` · "${info.cmdline}"`;
  }
  return detail;
}

// The guest console's input line and the VM's lifecycle actions, where the API offers them.
async function setUpActions(vm, actions, input, refresh) {
  const caps = await loadCapabilities();
  replaceChildren(actions);
  if (caps.reset) {
    const note = h('span', { class: 'hint' });
    actions.append(h('button', {
      type: 'button', id: 'vm-reset', onclick: async () => {
        if (!window.confirm(`Restart VM ${vm} from its loaded image?`)) return;
        try {
          await api.post(`/vms/${vm}/reset`, {});
          note.textContent = ' reset requested';
          refresh();
        } catch (e) { note.textContent = ` ${e.status} ${e.code}: ${e.message}`; }
      },
    }, 'Reset VM'), note);
  }
  if (caps.consoleInput) {
    const line = h('input', { id: 'console-line', size: 60, placeholder: 'type a line for the guest, Enter sends it',
      autocomplete: 'off' });
    const note = h('span', { class: 'hint' });
    replaceChildren(input, line, note);
    input.hidden = false;
    input.onsubmit = async (event) => {
      event.preventDefault();
      try {
        await api.postRaw(`/vms/${vm}/console`, `${line.value}\n`, 'application/octet-stream');
        line.value = '';
        note.textContent = '';
        refresh();
      } catch (e) { note.textContent = ` ${e.status} ${e.code}: ${e.message}`; }
    };
  }
}

// ---- the hypervisor log -------------------------------------------------------------------------
const LOG_KEEP_LINES = 5000;

function logView() {
  const level = h('select', { id: 'log-level' }, LOG_LEVELS.map((l) => h('option', { value: l }, `${l} and above`)));
  level.value = sessionStorage.getItem('lantern.logLevel') ?? 'info';
  const out = h('pre', { id: 'log', class: 'tail' });
  const missed = h('p', { class: 'notice', hidden: true });
  replaceChildren(view, h('h1', {}, 'Hypervisor log'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Show ', level)), missed, out);
  const lines = [];
  let since = 0;
  let dropped = 0;
  const render = () => {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.textContent = lines.filter((l) => levelShown(l.level, level.value))
      .map((l) => `[${(l.timestamp_ns / 1e9).toFixed(6)}] cpu${l.cpu} ${l.level}: ${l.text}${l.truncated ? ' [...]' : ''}`)
      .join('\n');
    if (atBottom) out.scrollTop = out.scrollHeight;
  };
  level.addEventListener('change', () => { sessionStorage.setItem('lantern.logLevel', level.value); render(); });
  async function tick() {
    for (let i = 0; i < 4; i++) {
      const chunk = await api.get(`/log?since=${since}`);
      if (chunk.missed) dropped += chunk.missed;
      since = chunk.next;
      lines.push(...chunk.lines);
      trimFront(lines, LOG_KEEP_LINES);
      if (chunk.lines.length < 256) break;
    }
    missed.hidden = dropped === 0;
    missed.textContent = `${dropped} lines were overwritten in the kernel's ring before they were read.`;
    render();
  }
  const poller = new Poller(tick, { baseMs: 1000 });
  poller.start();
  return poller;
}

// ---- routing ------------------------------------------------------------------------------------
const ROUTES = [
  [/^#?\/?$/, () => overviewView()],
  [/^#\/vcpu\/(\d+)\/(\d+)$/, (m) => vcpuView(Number(m[1]), Number(m[2]))],
  [/^#\/vm\/(\d+)$/, (m) => vmView(Number(m[1]))],
  [/^#\/log$/, () => logView()],
];

function route() {
  current?.stop();
  current = null;
  const hash = location.hash || '#/';
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.getAttribute('href') === hash);
  }
  for (const [pattern, make] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      current = make(m);
      return;
    }
  }
  replaceChildren(view, h('h1', {}, 'Not found'), h('p', {}, `No view at ${hash}. `, h('a', { href: '#/' }, 'Overview')));
}

window.addEventListener('hashchange', route);
route();
