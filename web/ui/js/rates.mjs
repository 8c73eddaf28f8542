// Exits per second from successive exit counters. Pure: no DOM.
//
// A sample is {t: milliseconds, total: exits, counts: {NAME: count}} (counts from GET .../exits,
// total from .../exits or /vcpus). Rates come from two samples' differences over the time between
// them; a counter that went down (the vCPU was recreated) yields no rate rather than a negative one.

export function sampleFromExits(exits, t) {
  const counts = {};
  for (const c of exits.counts ?? []) counts[c.name] = c.count;
  return { t, total: exits.total, counts };
}

// {total, byReason: {NAME: perSecond}} between two samples, or null when it cannot be known.
export function ratesBetween(before, after) {
  if (!before || !after) return null;
  const seconds = (after.t - before.t) / 1000;
  if (!(seconds > 0) || after.total < before.total) return null;
  const byReason = {};
  for (const [name, count] of Object.entries(after.counts)) {
    const delta = count - (before.counts[name] ?? 0);
    if (delta < 0) return null;
    if (delta > 0) byReason[name] = delta / seconds;
  }
  return { total: (after.total - before.total) / seconds, byReason };
}

// The last `capacity` rate points of one vCPU, for the chart.
export class RateHistory {
  constructor(capacity = 60) {
    this.capacity = capacity;
    this.points = [];  // [{t, total, byReason}]
    this.last = null;  // the previous sample
  }

  // Adds a sample; returns the new rate point, or null (first sample, or a counter reset).
  add(sample) {
    const rates = ratesBetween(this.last, sample);
    this.last = sample;
    if (!rates) return null;
    const point = { t: sample.t, ...rates };
    this.points.push(point);
    if (this.points.length > this.capacity) this.points.shift();
    return point;
  }

  // Reason names seen in the window, the busiest first.
  reasons() {
    const sums = new Map();
    for (const p of this.points) {
      for (const [name, rate] of Object.entries(p.byReason)) sums.set(name, (sums.get(name) ?? 0) + rate);
    }
    return [...sums.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([n]) => n);
  }
}
