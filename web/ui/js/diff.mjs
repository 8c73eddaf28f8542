// What changed between two register snapshots (GET .../regs). Pure: no DOM.

// Flattens {rax: "0x..", segments: {cs: {base: "0x.."}}} into {"rax": "0x..", "segments.cs.base": "0x.."}.
export function flatten(object, prefix = '') {
  const out = {};
  for (const [key, value] of Object.entries(object ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object') Object.assign(out, flatten(value, path));
    else out[path] = value;
  }
  return out;
}

// The flattened keys whose value differs between `before` and `after`. No `before` (the first
// snapshot): nothing is new, so nothing is highlighted.
export function changedKeys(before, after) {
  const changed = new Set();
  if (!before) return changed;
  const a = flatten(before);
  const b = flatten(after);
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[key] !== b[key]) changed.add(key);
  }
  return changed;
}
