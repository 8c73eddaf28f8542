import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CR0_FLAGS, CR4_FLAGS, EFER_FLAGS, RFLAGS_FLAGS, setFlagNames, decodeAccessRights,
  describeAccessRights, decodeQualification, pagingMode } from '../js/flags.mjs';

test('CR0 of a long-mode guest: PE, ET, NE, WP, PG', () => {
  assert.deepEqual(setFlagNames(0x80010031n, CR0_FLAGS), ['PE', 'ET', 'NE', 'WP', 'PG']);
});

test('CR0 after reset (0x60000010): ET, NW, CD', () => {
  assert.deepEqual(setFlagNames(0x60000010n, CR0_FLAGS), ['ET', 'NW', 'CD']);
});

test('CR4 with PAE and VMXE (bits 5 and 13)', () => {
  assert.deepEqual(setFlagNames((1n << 5n) | (1n << 13n), CR4_FLAGS), ['PAE', 'VMXE']);
});

test('EFER 0xd01: SCE, LME, LMA, NXE', () => {
  assert.deepEqual(setFlagNames(0xd01n, EFER_FLAGS), ['SCE', 'LME', 'LMA', 'NXE']);
});

test('RFLAGS 0x246: PF, ZF, IF (bit 1 is reserved and not a flag)', () => {
  assert.deepEqual(setFlagNames(0x246n, RFLAGS_FLAGS), ['PF', 'ZF', 'IF']);
});

test('paging modes from CR0, CR4 and EFER (SDM Vol. 3A Table 4-1)', () => {
  assert.equal(pagingMode(0x60000010n, 0n, 0n), 'real mode');
  assert.equal(pagingMode(0x11n, 0n, 0n), 'protected mode, no paging');
  assert.equal(pagingMode(0x80000011n, 0n, 0n), '32-bit paging');
  assert.equal(pagingMode(0x80000011n, 0x20n, 0n), 'PAE paging');
  assert.equal(pagingMode(0x80000011n, 0x20n, 0x500n), '4-level paging (IA-32e)');
  assert.equal(pagingMode(0x80000011n, 0x1020n, 0x500n), '5-level paging (IA-32e)');
});

test('access rights: 64-bit code, flat data, unusable, busy TSS', () => {
  assert.deepEqual(decodeAccessRights(0xa09bn),
    { type: 11, s: 1, dpl: 0, present: true, avl: 0, l: 1, db: 0, g: 1, unusable: false });
  assert.equal(describeAccessRights(0xa09bn), 'code RX, DPL0, P, L, G');
  assert.equal(describeAccessRights(0xc093n), 'data RW, DPL0, P, D/B, G');
  assert.equal(describeAccessRights(0x10000n), 'unusable');
  assert.equal(describeAccessRights(0x8bn), 'TSS busy, DPL0, P');
});

test('I/O qualification (Table 27-5): OUT to 0x3f8, 1 byte, DX', () => {
  assert.equal(decodeQualification(30, 0x03f80000n), 'OUT port 0x3f8, 1 byte (DX)');
  assert.equal(decodeQualification(30, 0x03fd0008n), 'IN port 0x3fd, 1 byte (DX)');
  assert.equal(decodeQualification(30, 0x00f40043n), 'OUT port 0xf4, 4 bytes (immediate)');
  assert.equal(decodeQualification(30, 0x03f80038n), 'REP INS port 0x3f8, 1 byte (DX)');
});

test('CR access qualification (Table 27-3)', () => {
  assert.equal(decodeQualification(28, 0x0000n), 'MOV to CR0 from rax');
  assert.equal(decodeQualification(28, 0x0314n), 'MOV from CR4 to rbx');
  assert.equal(decodeQualification(28, 0x0020n), 'CLTS');
  assert.equal(decodeQualification(28, 0x00010030n), 'LMSW register operand, source 0x1');
});

test('EPT violation qualification (Table 27-7)', () => {
  assert.equal(decodeQualification(48, 0x182n), 'EPT write; entry allowed nothing; linear address translated');
  assert.equal(decodeQualification(48, 0x09n), 'EPT read; entry allowed R');
});

test('reasons without a qualification show a dash; unknown ones the raw value', () => {
  assert.equal(decodeQualification(12, 0n), '—');
  assert.equal(decodeQualification(10, 0n), '—');
  assert.equal(decodeQualification(99, 0x1234n), '0x1234');
});
