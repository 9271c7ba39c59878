// Inline SVG charts: no script, no library, no request. Each chart has a title and a description for screen readers,
// and the page shows the same numbers in a table next to it. Colours come from attributes (the CSP forbids inline
// styles) and are paired with position and labels, never colour alone.
import { duration, html, int, type Html } from './ui.ts';

let seq = 0;
const nextId = () => `chart-${++seq}`;

export type DurationRow = { label: string; median: number | null; p90: number | null; count: number };

/** Horizontal bars: median (dark) and p90 (light) per group, in seconds, scaled to the largest p90. */
export function durationChart(title: string, rows: DurationRow[]): Html {
  const shown = rows.filter((r) => r.count > 0);
  if (!shown.length) return html`<p class="muted">${title}: no measurements yet.</p>`;
  const id = nextId();
  const labelW = 130;
  const barW = 300;
  const valueW = 190;
  const rowH = 34;
  const width = labelW + barW + valueW;
  const height = shown.length * rowH + 8;
  const max = Math.max(1, ...shown.map((r) => r.p90 ?? r.median ?? 0));
  const scale = (v: number | null) => (v === null ? 0 : Math.max(1, Math.round((v / max) * barW)));
  const desc = shown.map((r) => `${r.label}: median ${duration(r.median)}, p90 ${duration(r.p90)} (${r.count} tickets)`).join('; ');
  return html`<figure>
<figcaption><span class="chart-title">${title}</span> <span class="legend"><span><span class="swatch sw-median"></span>median</span><span><span class="swatch sw-p90"></span>p90</span></span></figcaption>
<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-t ${id}-d" preserveAspectRatio="xMinYMin meet">
<title id="${id}-t">${title}</title><desc id="${id}-d">${desc}</desc>
${shown.map((r, i) => {
  const y = i * rowH + 4;
  return html`<g>
<text x="0" y="${y + 17}">${truncate(r.label, 18)}</text>
<rect x="${labelW}" y="${y + 2}" width="${scale(r.p90)}" height="22" fill="#9ec0f0" rx="2"></rect>
<rect x="${labelW}" y="${y + 7}" width="${scale(r.median)}" height="12" fill="#0a53be" rx="2"></rect>
<text x="${labelW + barW + 6}" y="${y + 17}">${duration(r.median)} / ${duration(r.p90)}</text>
</g>`;
})}
</svg>
</figure>`;
}

export type SlaRow = { label: string; met: number; breached: number };

/** Stacked bars: met vs breached first-response SLA per group, as shares with counts. */
export function slaChart(title: string, rows: SlaRow[]): Html {
  const shown = rows.filter((r) => r.met + r.breached > 0);
  if (!shown.length) return html`<p class="muted">${title}: no first responses or breaches yet.</p>`;
  const id = nextId();
  const labelW = 130;
  const barW = 300;
  const valueW = 130;
  const rowH = 30;
  const width = labelW + barW + valueW;
  const height = shown.length * rowH + 8;
  const desc = shown.map((r) => `${r.label}: ${r.met} met, ${r.breached} breached`).join('; ');
  return html`<figure>
<figcaption><span class="chart-title">${title}</span> <span class="legend"><span><span class="swatch sw-met"></span>met</span><span><span class="swatch sw-breached"></span>breached</span></span></figcaption>
<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-t ${id}-d" preserveAspectRatio="xMinYMin meet">
<title id="${id}-t">${title}</title><desc id="${id}-d">${desc}</desc>
${shown.map((r, i) => {
  const y = i * rowH + 4;
  const total = r.met + r.breached;
  const metW = Math.round((r.met / total) * barW);
  return html`<g>
<text x="0" y="${y + 16}">${truncate(r.label, 18)}</text>
<rect x="${labelW}" y="${y + 3}" width="${metW}" height="18" fill="#13683a"></rect>
<rect x="${labelW + metW}" y="${y + 3}" width="${barW - metW}" height="18" fill="#a4161a"></rect>
<text x="${labelW + barW + 6}" y="${y + 16}">${((r.met / total) * 100).toFixed(0)}% met (${int(total)})</text>
</g>`;
})}
</svg>
</figure>`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
