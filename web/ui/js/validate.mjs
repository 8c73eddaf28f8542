// The injection form's checks, the same rules the API applies to POST .../events
// (web/api/event_request.cpp, vmx::make_pending_event), with the same messages, so a person sees
// the reason before sending. Pure: no DOM.
import { parseInteger } from './format.mjs';

export const EVENT_TYPES = ['interrupt', 'nmi', 'exception'];

// Exceptions that push an error code: #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14, #AC 17,
// #CP 21 (SDM Vol. 3A 6.3.1 Table 6-1, 6.13).
export const EXCEPTIONS_WITH_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

// {type, vector, errorCode} as typed (strings; errorCode '' = none) ->
//   {ok: true, body: {type, vector, error_code?}}  or  {ok: false, field, message}.
export function validateEvent({ type, vector, errorCode }) {
  if (!EVENT_TYPES.includes(type)) {
    return { ok: false, field: 'type', message: '"type" must be a string: "interrupt", "nmi" or "exception"' };
  }
  const v = parseInteger(vector ?? '');
  // Vectors are 8 bits (SDM Vol. 3A 6.2).
  if (v === null || v > 255) {
    return { ok: false, field: 'vector', message: '"vector" must be an integer from 0 to 255' };
  }
  const hasErrorCode = String(errorCode ?? '').trim() !== '';
  let code = null;
  if (hasErrorCode) {
    code = parseInteger(errorCode);
    // Pushed as 32 bits, written to the 32-bit VM_ENTRY_EXCEPTION_ERROR_CODE (SDM Vol. 3C 24.8.3).
    if (code === null || code > 0xffffffff) {
      return { ok: false, field: 'errorCode', message: '"error_code" must be an integer from 0 to 4294967295' };
    }
  }
  if (type === 'nmi') {
    // The NMI is vector 2 (SDM Vol. 3A 6.3.1, Table 6-1).
    if (v !== 2) return { ok: false, field: 'vector', message: 'an NMI must use vector 2' };
    if (hasErrorCode) return { ok: false, field: 'errorCode', message: 'an NMI has no error code' };
  } else if (type === 'exception') {
    // Vectors 0-31 are exceptions (SDM Vol. 3A 6.3.1); vector 2 is the NMI.
    if (v > 31) return { ok: false, field: 'vector', message: 'an exception vector must be 0-31' };
    if (v === 2) return { ok: false, field: 'vector', message: 'vector 2 is the NMI: queue it with type "nmi"' };
    if (EXCEPTIONS_WITH_ERROR_CODE.has(v) && !hasErrorCode) {
      return { ok: false, field: 'errorCode',
        message: 'this exception pushes an error code (vectors 8, 10-14, 17, 21): error_code is required' };
    }
    if (!EXCEPTIONS_WITH_ERROR_CODE.has(v) && hasErrorCode) {
      return { ok: false, field: 'errorCode',
        message: 'this exception has no error code (only vectors 8, 10-14, 17, 21 do): remove error_code' };
    }
  } else {
    // Vectors 0-15 are illegal for APIC-delivered interrupts (SDM Vol. 3A 10.5.2).
    if (v < 16) return { ok: false, field: 'vector', message: 'an external interrupt vector must be 16-255' };
    if (hasErrorCode) return { ok: false, field: 'errorCode', message: 'an external interrupt has no error code' };
  }
  const body = { type, vector: v };
  if (hasErrorCode) body.error_code = code;
  return { ok: true, body };
}
