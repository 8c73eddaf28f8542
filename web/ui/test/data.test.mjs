// Register diffs, exit rates, the VMCS grouping, the chart, the poll pacing and the tails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedKeys, flatten } from '../js/diff.mjs';
import { ratesBetween, RateHistory, sampleFromExits } from '../js/rates.mjs';
import { groupVmcbFields, groupVmcsFields, sdmGroupOf } from '../js/vmcs.mjs';
import { exitChartSvg, niceMax, escapeXml } from '../js/chart.mjs';
import { BUSY_POLICY, nextDelay, othersRate } from '../js/poll.mjs';
import { appendBounded, levelShown, trimFront } from '../js/tail.mjs';
import { parseHex, parseInteger } from '../js/format.mjs';

test('changedKeys: nothing on the first snapshot, then the registers and segment fields that moved', () => {
  const a = { rax: '0x1', rip: '0x10', segments: { cs: { base: '0x0', selector: '0x0008' } } };
  const b = { rax: '0x1', rip: '0x12', segments: { cs: { base: '0x0', selector: '0x0010' } } };
  assert.deepEqual([...changedKeys(null, a)], []);
  assert.deepEqual([...changedKeys(a, b)].sort(), ['rip', 'segments.cs.selector']);
  assert.deepEqual(flatten({ x: { y: 1 } }), { 'x.y': 1 });
});

test('ratesBetween: per-second deltas; a counter going back yields no rate', () => {
  const s1 = { t: 1000, total: 100, counts: { HLT: 60, CPUID: 40 } };
  const s2 = { t: 3000, total: 300, counts: { HLT: 160, CPUID: 140, VMCALL: 0 } };
  assert.deepEqual(ratesBetween(s1, s2), { total: 100, byReason: { HLT: 50, CPUID: 50 } });
  assert.equal(ratesBetween(s2, s1), null);
  assert.equal(ratesBetween(null, s1), null);
  assert.equal(ratesBetween(s1, { ...s1 }), null);  // no time passed
});

test('RateHistory keeps a bounded window and ranks reasons by activity', () => {
  const h = new RateHistory(3);
  const exits = (total, hlt, io) => ({ total, counts: [{ name: 'HLT', count: hlt }, { name: 'IO_INSTRUCTION', count: io }] });
  assert.equal(h.add(sampleFromExits(exits(0, 0, 0), 0)), null);
  for (let i = 1; i <= 5; i++) h.add(sampleFromExits(exits(30 * i, 10 * i, 20 * i), 1000 * i));
  assert.equal(h.points.length, 3);
  assert.deepEqual(h.points.at(-1), { t: 5000, total: 30, byReason: { HLT: 10, IO_INSTRUCTION: 20 } });
  assert.deepEqual(h.reasons(), ['IO_INSTRUCTION', 'HLT']);
});

test('VMCS fields grouped as SDM Vol. 3C 24.3 groups them, filtered by name', () => {
  const fields = [
    { name: 'GUEST_RIP', group: 'guest' }, { name: 'HOST_RIP', group: 'host' },
    { name: 'PIN_BASED_VM_EXEC_CONTROL', group: 'control' }, { name: 'VM_EXIT_CONTROLS', group: 'control' },
    { name: 'SECONDARY_VM_EXIT_CONTROLS', group: 'control' }, { name: 'VM_ENTRY_INTR_INFO_FIELD', group: 'control' },
    { name: 'VM_EXIT_REASON', group: 'read_only' }, { name: 'EPT_POINTER', group: 'control' },
  ];
  assert.deepEqual(groupVmcsFields(fields).map((g) => [g.id, g.fields.map((f) => f.name)]), [
    ['guest', ['GUEST_RIP']], ['host', ['HOST_RIP']],
    ['execution', ['PIN_BASED_VM_EXEC_CONTROL', 'EPT_POINTER']],
    ['exit', ['VM_EXIT_CONTROLS', 'SECONDARY_VM_EXIT_CONTROLS']],
    ['entry', ['VM_ENTRY_INTR_INFO_FIELD']], ['exit_info', ['VM_EXIT_REASON']],
  ]);
  assert.deepEqual(groupVmcsFields(fields, ' rip ').map((g) => g.id), ['guest', 'host']);
  assert.deepEqual(groupVmcsFields(fields, 'nothing'), []);
  assert.equal(sdmGroupOf({ name: 'INJECTED_EVENT_DATA', group: 'control' }), 'entry');
});

test('exit chart: one stacked bar per point, heights proportional, names escaped', () => {
  const points = [
    { t: 1, total: 100, byReason: { HLT: 100 } },
    { t: 2, total: 200, byReason: { HLT: 150, 'A<B': 50 } },
  ];
  const svg = exitChartSvg(points, ['HLT', 'A<B'], { width: 100, height: 112, slots: 10 });
  const rects = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/g)];
  assert.equal(rects.length, 3);
  // Axis max 200 over a 100-pixel plot: 100/s -> 50 px, 150/s -> 75 px, 50/s -> 25 px.
  assert.deepEqual(rects.map((r) => Number(r[3])), [50, 75, 25]);
  assert.ok(svg.includes('data-reason="A&lt;B"') && !svg.includes('A<B'));
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(130), 200);
  assert.equal(niceMax(4999), 5000);
  assert.equal(escapeXml('"&\''), '&quot;&amp;&#39;');
});

test('othersRate: requests per second that were not this tab\'s, between two /system readings', () => {
  const a = { consoleRequests: 1000, ownRequests: 10, atMs: 0 };
  assert.equal(othersRate(null, a), 0);  // a first reading has nothing to compare with
  // 520 requests in 5 s, of which 20 were this tab's: 100/s from the others, a busy console.
  const b = { consoleRequests: 1520, ownRequests: 30, atMs: 5000 };
  assert.equal(othersRate(a, b), 100);
  assert.ok(othersRate(a, b) >= BUSY_POLICY.othersPerSecond);
  // Only this tab: 0, and never negative when the counter moved less than the tab sent.
  assert.equal(othersRate(a, { consoleRequests: 1004, ownRequests: 14, atMs: 6000 }), 0);
  assert.equal(othersRate(a, { consoleRequests: 1002, ownRequests: 14, atMs: 6000 }), 0);
  assert.equal(othersRate(a, { ...a }), 0);  // no time passed
  assert.ok(BUSY_POLICY.delayMs >= 30000);
});

test('poll pacing: base interval, backs off with load and failures, honours Retry-After', () => {
  const policy = { baseMs: 2000, loadFactor: 10, maxMs: 30000 };
  assert.equal(nextDelay({ elapsedMs: 50 }, policy), 2000);
  assert.equal(nextDelay({ elapsedMs: 500 }, policy), 5000);  // a slow console: at most 1/11 of its time
  assert.equal(nextDelay({ elapsedMs: 10000 }, policy), 30000);
  assert.equal(nextDelay({ failures: 1 }, policy), 4000);
  assert.equal(nextDelay({ failures: 3 }, policy), 16000);
  assert.equal(nextDelay({ failures: 9 }, policy), 30000);
  assert.equal(nextDelay({ failures: 1, retryAfterS: 7 }, policy), 7000);
});

test('tails: bounded text cut at a line start, log level filter, bounded line list', () => {
  assert.equal(appendBounded('ab\ncd\n', 'ef\n', 100), 'ab\ncd\nef\n');
  assert.equal(appendBounded('line1\nline2\n', 'line3\n', 10), 'line3\n');
  assert.equal(appendBounded('x'.repeat(5000), 'y', 10), 'xxxxxxxxxy');
  assert.equal(levelShown('error', 'info'), true);
  assert.equal(levelShown('debug', 'info'), false);
  assert.equal(levelShown('info', 'info'), true);
  assert.equal(levelShown('weird', 'error'), true);
  const items = [1, 2, 3, 4, 5];
  assert.equal(trimFront(items, 2), 3);
  assert.deepEqual(items, [4, 5]);
});

test('numbers: API hex strings to BigInt, typed integers', () => {
  assert.equal(parseHex('0xfffffffffffffff0'), 0xfffffffffffffff0n);
  assert.equal(parseHex('12'), null);
  assert.equal(parseInteger(' 0x1F '), 31);
  assert.equal(parseInteger('1e3'), null);
});

test('groupVmcbFields: control area then save area, each by offset, filtered by name', () => {
  const fields = [
    { name: 'RIP', offset: 0x578, width: 64, area: 'save', value: '0x0000000000001000' },
    { name: 'EXITCODE', offset: 0x70, width: 64, area: 'control', value: '0x0000000000000078' },
    { name: 'CS_SELECTOR', offset: 0x410, width: 16, area: 'save', value: '0x0008' },
    { name: 'INTERCEPT_VECTOR_3', offset: 0xc, width: 32, area: 'control', value: '0x8f040001' },
  ];
  const all = groupVmcbFields(fields);
  assert.deepEqual(all.map((a) => a.id), ['control', 'save']);
  assert.deepEqual(all[0].fields.map((f) => f.name), ['INTERCEPT_VECTOR_3', 'EXITCODE']);
  assert.deepEqual(all[1].fields.map((f) => f.name), ['CS_SELECTOR', 'RIP']);
  const some = groupVmcbFields(fields, ' rip ');
  assert.deepEqual(some.map((a) => a.id), ['save']);
  assert.deepEqual(some[0].fields.map((f) => f.name), ['RIP']);
  assert.deepEqual(groupVmcbFields(fields, 'nothing'), []);
});
