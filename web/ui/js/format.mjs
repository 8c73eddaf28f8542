// Small formatting helpers shared by the views. Pure: no DOM.

// A register/VMCS value as the API sends it ("0x00000000fee00000") to a BigInt; null when the
// text is not such a hex string. JSON numbers lose precision above 2^53 (docs/api.md).
export function parseHex(text) {
  if (typeof text !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(text)) return null;
  return BigInt(text);
}

// value's bits hi..lo (inclusive) as a Number (fields are at most 32 bits wide here).
export function bits(value, hi, lo = hi) {
  const width = BigInt(hi - lo + 1);
  return Number((BigInt(value) >> BigInt(lo)) & ((1n << width) - 1n));
}

export function hex(value, digits = 0) {
  const text = BigInt(value).toString(16);
  return '0x' + (digits ? text.padStart(digits, '0') : text);
}

// 1536 -> "1.5 KiB"
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

// 93512 -> "1 min 33 s"
export function formatUptime(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

// 1234.5 -> "1,235"; 12.34 -> "12.3"
export function formatRate(perSecond) {
  if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return '–';
  if (perSecond >= 100) return Math.round(perSecond).toLocaleString('en-US');
  return perSecond.toFixed(1);
}

// A decimal ("48") or hex ("0x30") integer typed by a person; null when it is neither.
export function parseInteger(text) {
  const t = String(text).trim();
  if (/^[0-9]+$/.test(t)) return Number(t);
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return Number.parseInt(t.slice(2), 16);
  return null;
}
