// The browser console as a person sees it: Debian's chromium, headless, driven by playwright-core
// (pinned in package.json, installed by `./lantern deps` into build/npm/). Started by
// tests/integration/browser_test.py once Lantern is up; talks only to 127.0.0.1:<port>.
//
//   node console.mjs --port P --case vmx|novmx --screenshots DIR --modules build/npm [--token T]
//
// Cross-checks go to the same JSON API with node's fetch. Exits 0 when every check passed;
// prints `FAIL <what>` and exits 1 otherwise.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' }, case: { type: 'string' }, screenshots: { type: 'string' },
    modules: { type: 'string' }, token: { type: 'string', default: '' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
const require = createRequire(path.join(path.resolve(args.modules), 'package.json'));
const { chromium } = require('playwright-core');

const origin = `http://127.0.0.1:${args.port}`;
const FIRST_LOAD_BUDGET = 150000;  // bytes on the wire, headers included (issue: 150 KB)

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}
function log(message) {
  console.log(`console.mjs: ${message}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function apiGet(p) {
  const headers = args.token ? { Authorization: `Bearer ${args.token}` } : {};
  const r = await fetch(`${origin}/api/v1${p}`, { headers });
  check(r.ok, `GET /api/v1${p} answered ${r.status}`);
  return r.json();
}

// Polls fn() until it returns a truthy value (returned) or `seconds` pass (a Failure).
async function eventually(what, fn, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Failure(`${what}: not seen within ${seconds} s (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function shot(page, name) {
  const file = path.join(args.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  log(`screenshot ${file}`);
}

// Bytes of the first page load on the wire: the document and every file it loaded, headers
// included (Resource Timing transferSize), API answers excluded.
async function firstLoadBytes(page) {
  return page.evaluate(() => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
    const pageFiles = entries.filter((e) => !new URL(e.name).pathname.startsWith('/api/'));
    return { bytes: pageFiles.reduce((n, e) => n + e.transferSize, 0), files: pageFiles.map((e) => [new URL(e.name).pathname, e.transferSize]) };
  });
}

async function checkFirstLoad(page) {
  const { bytes, files } = await firstLoadBytes(page);
  log(`first load ${bytes} bytes on the wire: ${JSON.stringify(files)}`);
  check(files.length >= 4, `the page loaded only ${files.length} files: ${JSON.stringify(files)}`);
  check(files.every(([, size]) => size > 0), `a file of the page came from a cache on a first load: ${JSON.stringify(files)}`);
  check(bytes <= FIRST_LOAD_BUDGET, `first load ${bytes} bytes > ${FIRST_LOAD_BUDGET}`);
}

// The token prompt: asked for, a wrong token refused visibly, the right one accepted.
async function tokenFlow(page) {
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible' });
  check((await page.locator('#token-message').textContent()).includes('needs a token'),
    `the prompt does not say a token is needed: ${await page.locator('#token-message').textContent()}`);
  await shot(page, 'token-prompt');
  await page.fill('#token-input', `${args.token}-wrong`);
  await page.click('#token-form button[type=submit]');
  await eventually('the wrong token refused in the prompt', async () =>
    (await dialog.isVisible()) && (await page.locator('#token-message').textContent()).includes('Token refused'));
  check((await page.locator('#token-message').getAttribute('class')) === 'error', 'the refusal is not shown as an error');
  await shot(page, 'token-refused');
  await page.fill('#token-input', args.token);
  await page.click('#token-form button[type=submit]');
  await dialog.waitFor({ state: 'hidden' });
  check(await page.evaluate(() => sessionStorage.getItem('lantern.token')) === args.token,
    'the token is not kept in sessionStorage');
  log('token prompt: asked, wrong token refused, right token accepted');
}

async function overviewMatchesApi(page) {
  const listed = await eventually('vCPU rows in the overview', async () => {
    const keys = await page.locator('tr[data-vcpu]').evaluateAll((rows) => rows.map((r) => r.dataset.vcpu));
    return keys.length ? keys : null;
  });
  const api = (await apiGet('/vcpus')).vcpus.map((v) => `${v.vm}/${v.vcpu}`);
  check(JSON.stringify([...listed].sort()) === JSON.stringify([...api].sort()),
    `overview lists ${JSON.stringify(listed)}, /api/v1/vcpus ${JSON.stringify(api)}`);
  log(`overview lists the vCPUs of /api/v1/vcpus: ${listed.join(' ')}`);
  return api;
}

async function chartGrows(page, key) {
  const chart = page.locator(`figure.chart[data-vcpu="${key}"]`);
  const read = async () => ({
    total: Number(await chart.getAttribute('data-total-exits')),
    points: Number(await chart.getAttribute('data-points')),
    bars: await chart.locator('rect').count(),
    rate: await chart.locator('.rate').textContent(),
  });
  const first = await eventually(`an exit chart for vCPU ${key}`, async () => ((await chart.count()) ? read() : null));
  const later = await eventually(`vCPU ${key}'s chart growing`, async () => {
    const now = await read();
    return now.total > first.total && now.points > first.points && now.points >= 2 && now.bars > 0 ? now : null;
  }, 90);
  log(`exit chart of ${key}: ${first.total} -> ${later.total} exits, ${first.points} -> ${later.points} points, ` +
    `${later.bars} bars, ${later.rate}`);
}

const STABLE = ['rbx', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'cr0', 'cr2', 'cr3', 'cr4', 'efer'];

async function registersMatch(page, vm, vcpu) {
  await page.goto(`${origin}/#/vcpu/${vm}/${vcpu}`);
  await page.locator('td[data-reg="rip"]').waitFor();
  const shown = await page.locator('td[data-reg]').evaluateAll((cells) =>
    Object.fromEntries(cells.map((c) => [c.dataset.reg, c.textContent])));
  const api = await apiGet(`/vms/${vm}/vcpus/${vcpu}/regs`);
  // The demo guest loops (VMCALL, CPUID, IN, RDMSR, WRMSR, HLT; tests/guests/demo.S): rip moves
  // within its code, rbp counts rounds, rax/rcx/rdx/rsi/rdi/rflags are its scratch. Everything
  // else, and every segment field, must be what the API says.
  for (const name of STABLE) check(shown[name] === api[name], `${name}: page ${shown[name]}, /regs ${api[name]}`);
  for (const [seg, fields] of Object.entries(api.segments)) {
    for (const [field, value] of Object.entries(fields)) {
      check(shown[`segments.${seg}.${field}`] === value, `${seg}.${field}: page ${shown[`segments.${seg}.${field}`]}, /regs ${value}`);
    }
  }
  const ripDelta = Number(BigInt(api.rip) - BigInt(shown.rip));
  check(Math.abs(ripDelta) < 0x1000, `rip moved out of the guest's loop: page ${shown.rip}, /regs ${api.rip}`);
  check(BigInt(api.rbp) >= BigInt(shown.rbp), `the round counter rbp went back: page ${shown.rbp}, /regs ${api.rbp}`);
  // The decoded flags are those of the value shown.
  const cr0 = BigInt(api.cr0);
  const chips = await page.locator('#control tr', { hasText: 'cr0' }).locator('abbr.flag').allTextContents();
  check(chips.includes('PE') === Boolean(cr0 & 1n) && chips.includes('PG') === Boolean(cr0 & (1n << 31n)),
    `cr0 ${api.cr0} shown with flags ${chips}`);
  log(`vCPU ${vm}/${vcpu}: ${Object.keys(shown).length} register cells match /regs (rip ${shown.rip} -> ${api.rip}); cr0 flags ${chips.join(' ')}`);
}

async function vmcsFilter(page) {
  await page.locator('#vmcs-groups details').first().waitFor();
  const groups = await page.locator('#vmcs-groups details').evaluateAll((d) => d.map((x) => x.dataset.group));
  check(groups.join() === 'guest,host,execution,exit,entry,exit_info', `VMCS groups ${groups}`);
  await page.fill('#vmcs-filter', 'guest_rip');
  const names = await page.locator('#vmcs-groups td[data-field]').evaluateAll((c) => c.map((x) => x.dataset.field));
  check(names.length === 1 && names[0] === 'GUEST_RIP', `filter guest_rip shows ${names}`);
  await page.fill('#vmcs-filter', '');
  log(`VMCS in the SDM's six groups; the filter narrows to ${names}`);
}

async function injectAndSee(page, vm, vcpu) {
  const result = page.locator('#inject-result');
  // Checked in the page, as the API would: #GP needs an error code, nothing is sent.
  await page.selectOption('#inject-type', 'exception');
  await page.fill('#inject-vector', '13');
  await page.fill('#inject-error-code', '');
  await page.click('#inject-form button[type=submit]');
  await eventually('the form refusing #GP without an error code', async () =>
    (await result.textContent()).includes('error_code is required'));
  const vector = 0x5a;
  const pattern = /^IRQ 0x5a\b/m;
  const before = (await apiGet(`/vms/${vm}/console?since=0`)).text.split('\n').filter((l) => pattern.test(l)).length;
  await page.selectOption('#inject-type', 'interrupt');
  await page.fill('#inject-vector', `0x${vector.toString(16)}`);
  await page.click('#inject-form button[type=submit]');
  const queued = await eventually('the queue position after Queue', async () => {
    const text = await result.textContent();
    return /^Queued at position \d+ of 8\.$/.test(text) ? text : null;
  }, 30);
  log(`form: ${queued}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'vcpu');
  await page.goto(`${origin}/#/vm/${vm}`);
  const line = await eventually('the injected IRQ on the guest console view', async () => {
    const lines = (await page.locator('#console').textContent()).split('\n').filter((l) => pattern.test(l));
    return lines.length > before ? lines.at(-1) : null;
  }, 60);
  log(`console view shows "${line}"`);
  // POST /vms/{vm}/console exists (openapi.json), so the input line shows; a demo guest's UART has
  // no receive side, and the page shows the API's refusal.
  const input = page.locator('#console-input');
  await eventually('the console input line', async () => await input.isVisible(), 30);
  await page.fill('#console-line', 'hello demo');
  await page.press('#console-line', 'Enter');
  const refusal = await eventually('the refusal of input for a demo guest', async () => {
    const text = (await input.locator('.hint').textContent()) ?? '';
    return /409 no_console_input: /.test(text) ? text.trim() : null;
  }, 30);
  log(`console input on a demo guest: "${refusal}"`);
  await shot(page, 'vm-console');
}

async function logView(page, screenshot = 'log') {
  await page.goto(`${origin}/#/log`);
  await eventually('log lines', async () => (await page.locator('#log').textContent()).includes('cpu'));
  await page.selectOption('#log-level', 'error');
  const errorsOnly = (await page.locator('#log').textContent()).split('\n').filter(Boolean);
  check(errorsOnly.every((l) => / error: /.test(l)), `level filter "error" shows ${errorsOnly.slice(0, 3)}`);
  await page.selectOption('#log-level', 'debug');
  const all = (await page.locator('#log').textContent()).split('\n').filter(Boolean);
  check(all.length > errorsOnly.length, `level filter: ${all.length} lines at debug, ${errorsOnly.length} at error`);
  log(`log: ${all.length} lines, ${errorsOnly.length} at level error`);
  await shot(page, screenshot);
}

async function vmxCase(page, errors) {
  await page.goto(`${origin}/`);
  if (args.token) {
    await tokenFlow(page);
    errors.length = 0;  // the 401s of the prompt phase are expected; from here on, none
  }
  const vcpus = await overviewMatchesApi(page);
  // A vCPU on another core than the BSP's (VM 0 runs on the BSP): its state comes through a mailbox.
  const remote = vcpus.find((k) => k !== '0/0') ?? vcpus[0];
  await chartGrows(page, remote);
  await shot(page, 'overview');
  const [vm, vcpu] = remote.split('/').map(Number);
  await registersMatch(page, vm, vcpu);
  await vmcsFilter(page);
  const before = errors.length;
  await injectAndSee(page, vm, vcpu);
  // The demo guest's refusal of console input (409) is expected: Chromium logs every 4xx
  // response as a console error. Exactly that one is dropped; anything else still fails.
  const expected = errors.slice(before).filter((e) => /status of 409 \(Conflict\)/.test(e));
  check(expected.length === 1, `expected one 409 for the demo guest's console input, saw ${expected.length}`);
  errors.splice(errors.indexOf(expected[0]), 1);
  await logView(page);
}

async function novmxCase(page) {
  await page.goto(`${origin}/`);
  await checkFirstLoad(page);
  const system = await apiGet('/system');
  check(system.vmx.available === false, `expected no VMX here: ${JSON.stringify(system.vmx)}`);
  const notice = await eventually('the no-guests notice', async () => {
    const n = page.locator('#no-guests');
    return (await n.isVisible()) ? n.textContent() : null;
  });
  check(notice.includes('not available') && notice.includes(system.vmx.reason),
    `the notice does not say why: "${notice}" (reason "${system.vmx.reason}")`);
  log(`no-guests notice: ${notice}`);
  await shot(page, 'overview-novmx');
  await logView(page, 'log-novmx');
  await threeTabsAndAScript(page.context().browser());
}

// Three more tabs polling (overview, log, overview) while a lab script makes 100 requests, each
// on a new connection: every one is answered, none is refused, and the tabs hold only a few of
// the server's 32 connections.
async function threeTabsAndAScript(browser) {
  const contexts = [];
  for (const route of ['/#/', '/#/log', '/#/']) {
    const context = await browser.newContext();
    await (await context.newPage()).goto(`${origin}${route}`);
    contexts.push(context);
  }
  await sleep(20000);  // past the page loads: the server closes idle connections after 15 s
  const before = (await apiGet('/system')).console;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${origin}/api/v1/vcpus`, { headers: { Connection: 'close' } });
    check(r.status === 200, `lab script request ${i} answered ${r.status}`);
    await r.arrayBuffer();
  }
  const after = (await apiGet('/system')).console;
  check(after.refused === before.refused, `connections refused with three tabs open: ${before.refused} -> ${after.refused}`);
  check(after.connections_open <= 8, `${after.connections_open} connections open with three polling tabs`);
  log(`three tabs + 100 script requests: all answered, ${after.refused} refused, ${after.connections_open} connections open`);
  for (const c of contexts) await c.close();
}

async function main() {
  mkdirSync(args.screenshots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });  // playwright gives chromium a fresh temporary --user-data-dir of its own
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(60000);
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console.error: ${m.text()}`); });
    if (args.case === 'vmx') {
      await vmxCase(page, errors);
      await checkFirstLoadFresh(browser);
    } else {
      await novmxCase(page);
    }
    check(errors.length === 0, `JavaScript errors in the browser console: ${errors.join(' | ')}`);
    log('no JavaScript errors');
  } finally {
    await browser.close();
  }
}

// The first-load budget in a fresh context (nothing cached), with the token if there is one.
async function checkFirstLoadFresh(browser) {
  const context = await browser.newContext();
  if (args.token) await context.addInitScript((t) => sessionStorage.setItem('lantern.token', t), args.token);
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.locator('tr[data-vcpu]').first().waitFor();
  await checkFirstLoad(page);
  await context.close();
}

main().then(() => { console.log('PASS console.mjs'); }, (e) => {
  console.log(`FAIL ${e instanceof Failure ? e.message : e.stack}`);
  process.exitCode = 1;
});
