// The page shell and small view helpers. Markup is built with hono/html's tagged template, which escapes every
// interpolated value (raw() is the one explicit way out). Plain .ts on purpose: Node runs TypeScript by stripping
// types, and it cannot strip JSX, so .tsx files would not load under `npm start`.
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { CSS_PATH, JS_PATH } from './assets.ts';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;
export { html, raw };

export const NAV = [
  { href: '/', label: 'Overview' },
  { href: '/history', label: 'History' },
  { href: '/performance', label: 'Performance' },
  { href: '/config', label: 'Configuration' },
  { href: '/replay', label: 'What-if' },
  { href: '/forum', label: 'Sandbox forum', sandboxOnly: true },
  { href: '/dead-letters', label: 'Dead letters' },
] as const;

export type ShellOptions = {
  title: string;
  active: string;
  csrf?: string;
  sandbox?: boolean;
  body: unknown;
};

export function shell(o: ShellOptions): Html {
  const nav = NAV.filter((n) => !('sandboxOnly' in n) || o.sandbox);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · Tierline</title>
<link rel="stylesheet" href="${CSS_PATH}">
<script src="${JS_PATH}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">Tierline</a>
${o.csrf ? html`<nav aria-label="Console"><ul>${nav.map((n) => html`<li><a href="${n.href}"${o.active === n.href ? raw(' aria-current="page"') : ''}>${n.label}</a></li>`)}</ul></nav>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${o.csrf}"><button type="submit">Sign out</button></form>` : ''}
</header>
${o.sandbox ? html`<div class="banner" role="note"><strong>Sandbox mode:</strong> HubSpot, Salesforce and/or Telegram are simulated on this machine; tickets are SAMPLE data, not customers.</div>` : ''}
<main id="main" tabindex="-1">
${o.body}
</main>
</body>
</html>`;
}

export const csrfField = (token: string) => html`<input type="hidden" name="_csrf" value="${token}">`;

/** A scrollable table region that keyboard users can scroll too (focusable, labelled). */
export function tableWrap(label: string, table: unknown): Html {
  return html`<div class="table-wrap" role="region" aria-label="${label}" tabindex="0">${table}</div>`;
}

export function empty(title: string, next: unknown): Html {
  return html`<div class="empty"><p><strong>${title}</strong></p><p>${next}</p></div>`;
}

export function notice(kind: 'ok' | 'bad' | 'info', body: unknown): Html {
  return html`<div class="notice ${kind === 'info' ? '' : kind}" role="${kind === 'bad' ? 'alert' : 'status'}">${body}</div>`;
}

// ---------------------------------------------------------------- formatting

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** UTC on the server; the script shows the reader's local time. */
export function time(ms: number | null | undefined, seconds = false): Html | string {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms);
  const text = `${d.toISOString().slice(0, seconds ? 19 : 16).replace('T', ' ')} UTC`;
  return html`<time datetime="${d.toISOString()}"${seconds ? raw(' data-seconds="1"') : ''}>${text}</time>`;
}

/** 45 s, 12 min, 3 h 05 min, 2 d 4 h. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`;
}

export function int(n: number): string {
  return n.toLocaleString('en-US');
}

export function tierBadge(tier: string | null | undefined): Html {
  const t = tier ?? 'unknown';
  return html`<span class="badge tier-${t}">${t}</span>`;
}

export function okBadge(ok: boolean, yes = 'ok', no = 'failing'): Html {
  return html`<span class="badge ${ok ? 'ok' : 'bad'}">${ok ? yes : no}</span>`;
}

/** A link for a ticket key to its detail page. */
export function ticketHref(key: string): string {
  return `/tickets/${encodeURIComponent(key)}`;
}

/** Only http(s) links leave the console; anything else (javascript:, data:) is shown as text. */
export function extLink(url: string | null | undefined, label: string): Html | string {
  if (!url || !/^https?:\/\//i.test(url)) return '–';
  return html`<a href="${url}" rel="noopener noreferrer" target="_blank">${label}<span class="sr-only"> (opens in a new tab)</span></a>`;
}

/** Query string from the given params, leaving out empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export function selectOptions(options: readonly (string | { value: string; label: string })[], selected: string | undefined, anyLabel?: string): Html {
  const opts = options.map((o) => (typeof o === 'string' ? { value: o, label: o } : o));
  return html`${anyLabel !== undefined ? html`<option value="">${anyLabel}</option>` : ''}${opts.map((o) => html`<option value="${o.value}"${o.value === selected ? raw(' selected') : ''}>${o.label}</option>`)}`;
}
