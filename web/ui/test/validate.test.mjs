import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateEvent } from '../js/validate.mjs';

const ok = (input, body) => assert.deepEqual(validateEvent(input), { ok: true, body });
const bad = (input, field, pattern) => {
  const r = validateEvent(input);
  assert.equal(r.ok, false, JSON.stringify(input));
  assert.equal(r.field, field);
  assert.match(r.message, pattern);
};

test('interrupts: 16-255, decimal or hex, no error code', () => {
  ok({ type: 'interrupt', vector: '48', errorCode: '' }, { type: 'interrupt', vector: 48 });
  ok({ type: 'interrupt', vector: '0x30', errorCode: '' }, { type: 'interrupt', vector: 48 });
  ok({ type: 'interrupt', vector: '255', errorCode: '' }, { type: 'interrupt', vector: 255 });
  bad({ type: 'interrupt', vector: '15', errorCode: '' }, 'vector', /16-255/);
  bad({ type: 'interrupt', vector: '256', errorCode: '' }, 'vector', /0 to 255/);
  bad({ type: 'interrupt', vector: '48', errorCode: '0' }, 'errorCode', /no error code/);
});

test('NMI: vector 2 only, no error code', () => {
  ok({ type: 'nmi', vector: '2', errorCode: '' }, { type: 'nmi', vector: 2 });
  bad({ type: 'nmi', vector: '3', errorCode: '' }, 'vector', /vector 2/);
  bad({ type: 'nmi', vector: '2', errorCode: '1' }, 'errorCode', /no error code/);
});

test('exceptions: 0-31 but not 2; error code exactly for 8, 10-14, 17, 21', () => {
  ok({ type: 'exception', vector: '13', errorCode: '0' }, { type: 'exception', vector: 13, error_code: 0 });
  ok({ type: 'exception', vector: '14', errorCode: '0xffffffff' },
    { type: 'exception', vector: 14, error_code: 0xffffffff });
  ok({ type: 'exception', vector: '6', errorCode: ' ' }, { type: 'exception', vector: 6 });
  bad({ type: 'exception', vector: '13', errorCode: '' }, 'errorCode', /error_code is required/);
  bad({ type: 'exception', vector: '6', errorCode: '0' }, 'errorCode', /remove error_code/);
  bad({ type: 'exception', vector: '2', errorCode: '' }, 'vector', /NMI/);
  bad({ type: 'exception', vector: '32', errorCode: '' }, 'vector', /0-31/);
  bad({ type: 'exception', vector: '13', errorCode: '0x100000000' }, 'errorCode', /4294967295/);
});

test('garbage is refused before anything is sent', () => {
  bad({ type: 'irq', vector: '48', errorCode: '' }, 'type', /interrupt/);
  bad({ type: 'interrupt', vector: '', errorCode: '' }, 'vector', /integer/);
  bad({ type: 'interrupt', vector: '4.5', errorCode: '' }, 'vector', /integer/);
  bad({ type: 'interrupt', vector: '-1', errorCode: '' }, 'vector', /integer/);
  bad({ type: 'exception', vector: '13', errorCode: 'x' }, 'errorCode', /integer/);
});
