// Live tails (guest console, hypervisor log): bounded buffers and the log's level filter. Pure.

// `text` + `more`, keeping at most the last `max` characters, cut at a line start when one is near.
export function appendBounded(text, more, max) {
  const all = text + more;
  if (all.length <= max) return all;
  const cut = all.length - max;
  const newline = all.indexOf('\n', cut);
  return newline >= 0 && newline - cut < 1024 ? all.slice(newline + 1) : all.slice(cut);
}

// Log levels from the most to the least severe (kernel/lib/log_ring.cpp log_level_name).
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

// True when a line of `level` shows under the filter `min` ("info" shows error, warn and info).
// Unknown levels always show: the filter never hides what it does not understand.
export function levelShown(level, min) {
  const l = LOG_LEVELS.indexOf(level);
  const m = LOG_LEVELS.indexOf(min);
  return l < 0 || m < 0 || l <= m;
}

// Keeps the last `max` items of an array in place; returns how many were dropped.
export function trimFront(items, max) {
  const drop = Math.max(0, items.length - max);
  if (drop) items.splice(0, drop);
  return drop;
}
