// A small stacked-bar chart of exits per second by exit reason, as SVG markup. Pure: no DOM
// (the caller puts the markup into the page), so it is tested under node.

// Colours for the busiest reasons in order; the rest share the last.
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f'];

export function escapeXml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// A "nice" axis maximum at or above `value`: 1, 2 or 5 times a power of ten.
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= value) return m * power;
  }
  return 10 * power;
}

export function colourOf(reasons, name) {
  const i = reasons.indexOf(name);
  return PALETTE[i < 0 || i >= PALETTE.length ? PALETTE.length - 1 : i];
}

// points: [{t, total, byReason: {NAME: rate}}], oldest first; reasons: names, busiest first.
// One bar per point, right-aligned, `slots` bars wide; each bar stacks its reasons in `reasons` order.
export function exitChartSvg(points, reasons, { width = 360, height = 90, slots = 60 } = {}) {
  const top = 12;
  const plot = height - top;
  const max = niceMax(Math.max(0, ...points.map((p) => p.total)));
  const slot = width / slots;
  const bar = Math.max(1, slot - 1);
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="exit-chart" viewBox="0 0 ${width} ${height}" ` +
    `width="${width}" height="${height}" role="img" aria-label="exits per second by exit reason">`);
  parts.push(`<line x1="0" y1="${top}" x2="${width}" y2="${top}" stroke="#ccc" stroke-dasharray="2,2"/>`);
  parts.push(`<text x="2" y="9" font-size="9" fill="#666">${escapeXml(max.toLocaleString('en-US'))}/s</text>`);
  const visible = points.slice(-slots);
  visible.forEach((p, i) => {
    const x = width - (visible.length - i) * slot;
    let y = height;
    for (const name of reasons) {
      const rate = p.byReason[name] ?? 0;
      if (rate <= 0) continue;
      const h = (rate / max) * plot;
      y -= h;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" ` +
        `fill="${colourOf(reasons, name)}" data-reason="${escapeXml(name)}"><title>${escapeXml(name)}: ` +
        `${rate.toFixed(1)}/s</title></rect>`);
    }
  });
  parts.push(`<line x1="0" y1="${height - 0.5}" x2="${width}" y2="${height - 0.5}" stroke="#999"/>`);
  parts.push('</svg>');
  return parts.join('');
}
