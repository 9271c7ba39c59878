// Routing history: every event on every ticket, newest first, with the explanation a decision carried; filters by
// tier, queue, agent, outcome and date; CSV export of the same selection; and one page per ticket with its segment,
// timings, the full explanation (agents passed over and why) and its whole timeline.
import { z } from 'zod';
import { HISTORY_KINDS, type HistoryEntry, type HistoryQuery, type TicketRecord } from '../../../core/ports.ts';
import { SEGMENT_FIELDS, segmentLabel, TIERS } from '../../../core/segment.ts';
import { describeTierSource } from '../../../core/tiering.ts';
import type { Auth } from '../auth.ts';
import { DAY_MS, namesOf, type ConsoleContext, type Routes } from '../context.ts';
import { duration, empty, extLink, html, int, qs, selectOptions, shell, tableWrap, ticketHref, tierBadge, time, type Html } from '../ui.ts';

const PER_PAGE = [25, 50, 100, 200] as const;
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'use YYYY-MM-DD').refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), 'not a date');
const FiltersSchema = z.object({
  tier: z.enum([...TIERS, 'unknown']).optional().catch(undefined),
  queue: z.string().max(63).optional().catch(undefined),
  agent: z.string().max(63).optional().catch(undefined),
  kind: z.enum(HISTORY_KINDS).optional().catch(undefined),
  from: date.optional().catch(undefined),
  to: date.optional().catch(undefined),
  ticket: z.string().max(300).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(1_000_000).default(1).catch(1),
  per: z.coerce.number().int().refine((n) => (PER_PAGE as readonly number[]).includes(n)).default(50).catch(50),
});
type Filters = z.output<typeof FiltersSchema>;

const KIND_LABEL: Record<(typeof HISTORY_KINDS)[number], string> = {
  routed: 'routed',
  assigned: 'assigned from waiting',
  first_reply: 'first reply',
  reply_by_other: 'first reply by another agent',
  reassigned: 'reassigned',
  overflow: 'overflow',
  sla_warning: 'SLA warning',
  sla_breached: 'SLA breached',
  escalated: 'escalated',
  resolved: 'resolved',
  reopened: 'reopened',
  topic_recreated: 'topic recreated',
};

export function parseFilters(query: Record<string, string>): Filters {
  const clean = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== ''));
  return FiltersSchema.parse(clean);
}

export function toQuery(f: Filters): HistoryQuery {
  const q: HistoryQuery = {};
  if (f.tier) q.tier = f.tier;
  if (f.queue) q.queueId = f.queue;
  if (f.agent) q.agentId = f.agent;
  if (f.kind) q.kind = f.kind;
  if (f.ticket) q.ticketKey = f.ticket.trim();
  if (f.from) q.from = Date.parse(`${f.from}T00:00:00Z`);
  if (f.to) q.to = Date.parse(`${f.to}T00:00:00Z`) + DAY_MS - 1;
  return q;
}

const filterParams = (f: Filters) => ({ tier: f.tier, queue: f.queue, agent: f.agent, kind: f.kind, from: f.from, to: f.to, ticket: f.ticket });

/** Seconds from entering the queue to the first reply / resolution. */
export function timings(t: TicketRecord | null): { firstResponse: number | null; resolution: number | null } {
  if (!t) return { firstResponse: null, resolution: null };
  const start = t.enqueuedAt ?? t.receivedAt;
  return {
    firstResponse: t.firstResponseAt !== null ? (t.firstResponseAt - start) / 1000 : null,
    resolution: t.resolvedAt !== null ? (t.resolvedAt - start) / 1000 : null,
  };
}

async function ticketsOf(ctx: ConsoleContext, entries: HistoryEntry[]): Promise<Map<string, TicketRecord | null>> {
  const keys = [...new Set(entries.map((e) => e.ticketKey))];
  const got = new Map((await ctx.store.getTickets(keys)).map((t) => [t.key, t]));
  return new Map(keys.map((k) => [k, got.get(k) ?? null]));
}

/** Explanation lines, with the "Passed over" line split into one item per agent. */
export function explanationList(lines: readonly string[]): Html {
  return html`<ul class="lines">${lines.map((l) => {
    const m = /^Passed over: (.*)\.$/.exec(l);
    if (!m) return html`<li>${l}</li>`;
    return html`<li>Passed over:<ul class="lines">${m[1]!.split('; ').map((p) => html`<li>${p}</li>`)}</ul></li>`;
  })}</ul>`;
}

export function mountHistory(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  app.get('/history', auth.requirePage, async (c) => {
    const s = c.get('session');
    const f = parseFilters(c.req.query());
    const [version, r] = await Promise.all([ctx.store.getConfig(), ctx.store.history({ ...toQuery(f), offset: (f.page - 1) * f.per, limit: f.per })]);
    const config = version?.config ?? null;
    const names = namesOf(config);
    const tickets = await ticketsOf(ctx, r.entries);
    const pages = Math.max(1, Math.ceil(r.total / f.per));
    const filtered = Object.values(filterParams(f)).some((v) => v !== undefined);
    const link = (page: number) => `/history${qs({ ...filterParams(f), per: f.per === 50 ? undefined : f.per, page: page === 1 ? undefined : page })}`;

    const body = html`
<h1>Routing history</h1>
<p class="lead">Every routing event, newest first. Open "Why?" for the full explanation, including the agents passed over.</p>
<form method="get" action="/history" class="filters" role="search" aria-label="Filter history">
<div class="field"><label for="f-tier">Tier</label><select id="f-tier" name="tier">${selectOptions([...TIERS, 'unknown'], f.tier, 'Any tier')}</select></div>
<div class="field"><label for="f-queue">Queue</label><select id="f-queue" name="queue">${selectOptions((config?.queues ?? []).map((q) => ({ value: q.id, label: q.name })), f.queue, 'Any queue')}</select></div>
<div class="field"><label for="f-agent">Agent</label><select id="f-agent" name="agent">${selectOptions((config?.agents ?? []).map((a) => ({ value: a.id, label: a.name })), f.agent, 'Any agent')}</select></div>
<div class="field"><label for="f-kind">Outcome</label><select id="f-kind" name="kind">${selectOptions(HISTORY_KINDS.map((k) => ({ value: k, label: KIND_LABEL[k] })), f.kind, 'Any event')}</select></div>
<div class="field"><label for="f-from">From (UTC)</label><input type="date" id="f-from" name="from" value="${f.from ?? ''}"></div>
<div class="field"><label for="f-to">To (UTC)</label><input type="date" id="f-to" name="to" value="${f.to ?? ''}"></div>
<div class="field"><label for="f-ticket">Ticket key</label><input type="text" id="f-ticket" name="ticket" value="${f.ticket ?? ''}" placeholder="hubspot:portal:id" size="22"></div>
<div class="field"><label for="f-per">Per page</label><select id="f-per" name="per">${selectOptions(PER_PAGE.map(String), String(f.per))}</select></div>
<div class="field"><button type="submit">Apply filters</button> ${filtered ? html`<a href="/history">Clear</a>` : ''}</div>
</form>
<div class="actions"><a class="button secondary" href="/history.csv${qs(filterParams(f))}" download>Export ${int(r.total)} rows as CSV</a></div>
${r.entries.length
  ? html`${tableWrap('Routing history', html`<table class="stack">
<caption>${int(r.total)} events${filtered ? ' matching the filters' : ''} · page ${int(f.page)} of ${int(pages)}</caption>
<thead><tr><th scope="col">When</th><th scope="col">Ticket</th><th scope="col">Tier</th><th scope="col">Event</th><th scope="col">Queue</th><th scope="col">Agent</th><th scope="col">Rule</th><th scope="col" class="num">First response</th><th scope="col" class="num">Resolution</th><th scope="col">Links</th></tr></thead>
<tbody>${r.entries.map((e) => row(e, tickets.get(e.ticketKey) ?? null, names))}</tbody></table>`)}
${pager(f.page, pages, link)}`
  : filtered
    ? empty('Nothing matches these filters.', html`Widen the dates or <a href="/history">clear the filters</a>.`)
    : empty('No routing history yet.', html`Each ticket a CRM sends shows up here with its explanation. Check the <a href="/">Overview</a> for connector health${ctx.sandbox ? ', or wait a few seconds for sample tickets' : ''}.`)}`;
    return c.html(shell({ title: 'History', active: '/history', csrf: s.csrf, sandbox: ctx.sandbox, body }));
  });

  app.get('/history.csv', auth.requirePage, async (c) => {
    const f = parseFilters(c.req.query());
    const query = toQuery(f);
    const names = namesOf((await ctx.store.getConfig())?.config);
    // Large pages: a memory-backed store sorts the whole selection per call.
    const page = 5_000;
    const max = 500_000;
    let offset = 0;
    let done = false;
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc.encode('\uFEFF' + csvLine(CSV_HEADER)));
      },
      async pull(controller) {
        if (done) return controller.close();
        try {
          const r = await ctx.store.history({ ...query, offset, limit: page });
          const tickets = await ticketsOf(ctx, r.entries);
          let out = '';
          for (const e of r.entries) out += csvLine(csvRow(e, tickets.get(e.ticketKey) ?? null, names));
          offset += r.entries.length;
          if (out) controller.enqueue(enc.encode(out));
          if (r.entries.length < page || offset >= r.total || offset >= max) done = true;
        } catch (err) {
          ctx.logger.error('console: CSV export failed', { error: err instanceof Error ? err.message : String(err) });
          controller.error(err);
        }
      },
    });
    const stamp = new Date(ctx.clock.now()).toISOString().slice(0, 10);
    return c.body(stream, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="tierline-history-${stamp}.csv"` });
  });

  app.get('/tickets/:key', auth.requirePage, async (c) => {
    const s = c.get('session');
    const key = c.req.param('key') ?? '';
    const [t, version, h] = await Promise.all([ctx.store.getTicket(key), ctx.store.getConfig(), ctx.store.history({ ticketKey: key, limit: 500 })]);
    if (!t) {
      return c.html(shell({ title: 'Ticket not found', active: '/history', csrf: s.csrf, sandbox: ctx.sandbox, body: html`<h1>Ticket not found</h1>${empty(`No ticket "${key}".`, html`Keys look like hubspot:&lt;portal&gt;:&lt;ticket id&gt; or salesforce:&lt;org id&gt;:&lt;case id&gt;. Find it in the <a href="/history">history</a>.`)}` }), 404);
    }
    const names = namesOf(version?.config);
    const tm = timings(t);
    const entries = [...h.entries].reverse();
    const seg = t.segment;
    const issueOf = (field: string) => t.issues.find((i) => i.field === field);
    const tierText = t.tierSource ? describeTierSource({ tier: seg?.tier ?? null, source: t.tierSource }) : null;
    const body = html`
<p><a href="/history">← Routing history</a></p>
<h1>${t.subject || t.key}</h1>
<p class="lead">${t.companyName ?? ''}${t.customerName ? ` · ${t.customerName}` : ''} · <code>${t.key}</code> · status <strong>${t.status}</strong></p>
<div class="actions">${extLink(t.recordUrl, `Open in ${t.ref.crm === 'hubspot' ? 'HubSpot' : 'Salesforce'}`)} ${t.topic ? extLink(t.topic.link, 'Open the Telegram topic') : html`<span class="muted">No Telegram topic yet</span>`}</div>
<div class="grid">
<section class="card" aria-labelledby="route-h"><h2 id="route-h">Routing</h2>
<p><strong>${t.summary ?? 'not routed yet'}</strong></p>
<dl><dt>Queue</dt><dd>${names.queue(t.queueId)}</dd><dt>Agent</dt><dd>${t.agentId ? names.agent(t.agentId) : 'waiting for an agent'}</dd><dt>Rule</dt><dd>${t.ruleId ?? 'none (default queue)'}</dd>
<dt>Overflows / reassignments</dt><dd>${t.overflowCount} / ${t.reassignCount}${t.escalated ? ' · escalated' : ''}</dd></dl>
</section>
<section class="card" aria-labelledby="time-h"><h2 id="time-h">Timings</h2>
<dl><dt>Received</dt><dd>${time(t.receivedAt, true)}</dd><dt>Routed</dt><dd>${time(t.routedAt, true)}</dd><dt>SLA due</dt><dd>${time(t.slaDueAt)}</dd>
<dt>First response</dt><dd>${t.firstResponseAt ? html`${duration(tm.firstResponse)} (${time(t.firstResponseAt, true)}${t.firstResponderId ? `, ${names.agent(t.firstResponderId)}` : ''})` : 'none yet'}</dd>
<dt>Resolution</dt><dd>${t.resolvedAt ? html`${duration(tm.resolution)} (${time(t.resolvedAt, true)})` : 'open'}</dd>
<dt>SLA</dt><dd>${t.slaMet === null ? 'not decided yet' : t.slaMet ? html`<span class="badge ok">met</span>` : html`<span class="badge bad">breached</span>`}</dd></dl>
</section>
</div>
<section aria-labelledby="why-h"><h2 id="why-h">Why it went there</h2>
${t.explanation.length ? explanationList(t.explanation) : html`<p class="muted">No routing decision yet.</p>`}
</section>
<section aria-labelledby="seg-h"><h2 id="seg-h">Segment from the CRM</h2>
${seg
  ? tableWrap('Segment', html`<table><thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Data quality</th></tr></thead><tbody>
${SEGMENT_FIELDS.map((f) => {
  const v = seg[f];
  const i = issueOf(f);
  const shown = v === null ? '–' : typeof v === 'object' ? `${v.amount.toLocaleString('en-US')} ${v.currency}` : String(v);
  return html`<tr><th scope="row">${f}</th><td>${f === 'tier' ? tierBadge(seg.tier) : shown}</td><td>${i ? html`<span class="badge ${i.problem === 'invalid' ? 'bad' : 'warn'}">${i.problem}</span> ${i.detail}` : f === 'tier' && t.tierSource?.kind === 'derived' ? html`<span class="badge warn">derived</span> ${tierText}` : v === null ? html`<span class="badge warn">missing</span>` : 'ok'}</td></tr>`;
})}
</tbody></table>`)
  : html`<p class="muted">The CRM record has not been read yet.</p>`}
</section>
<section aria-labelledby="tl-h"><h2 id="tl-h">Timeline</h2>
${entries.length
  ? html`<ol class="lines">${entries.map((e) => html`<li>${time(e.at, true)} · <strong>${KIND_LABEL[e.kind]}</strong> · ${e.text}${e.explanation?.length && e.kind !== 'routed' ? html`<details><summary>Explanation</summary>${explanationList(e.explanation)}</details>` : ''}</li>`)}</ol>`
  : html`<p class="muted">No events yet.</p>`}
</section>`;
    return c.html(shell({ title: t.subject || t.key, active: '/history', csrf: s.csrf, sandbox: ctx.sandbox, body }));
  });
}

function row(e: HistoryEntry, t: TicketRecord | null, names: ReturnType<typeof namesOf>): Html {
  const tm = timings(t);
  const lines = e.explanation ?? (e.kind === 'routed' ? t?.explanation : undefined);
  return html`<tr>
<td data-label="When">${time(e.at, true)}</td>
<td data-label="Ticket"><a href="${ticketHref(e.ticketKey)}">${t?.subject || e.ticketKey}</a>${t?.companyName || t?.segment ? html`<br><span class="muted">${[t.companyName, t.segment ? segmentLabel(t.segment) : null].filter(Boolean).join(' · ')}</span>` : ''}</td>
<td data-label="Tier">${tierBadge(e.tier)}</td>
<td data-label="Event"><strong>${KIND_LABEL[e.kind]}</strong><br>${e.text}${lines?.length ? html`<details><summary>Why?</summary>${explanationList(lines)}</details>` : ''}</td>
<td data-label="Queue">${names.queue(e.queueId)}</td>
<td data-label="Agent">${e.agentId ? names.agent(e.agentId) : html`<span class="muted">waiting</span>`}</td>
<td data-label="Rule">${e.ruleId ?? html`<span class="muted">default</span>`}</td>
<td data-label="First response" class="num">${duration(tm.firstResponse)}</td>
<td data-label="Resolution" class="num">${duration(tm.resolution)}</td>
<td data-label="Links">${t?.topic ? extLink(t.topic.link, 'Topic') : ''}${t?.topic && t.recordUrl ? html`<br>` : ''}${extLink(t?.recordUrl, 'CRM')}</td>
</tr>`;
}

function pager(page: number, pages: number, link: (p: number) => string): Html {
  if (pages <= 1) return html``;
  return html`<nav class="pager" aria-label="Pages">
${page > 1 ? html`<a class="button secondary" href="${link(1)}">First</a> <a class="button secondary" href="${link(page - 1)}" rel="prev">Previous</a>` : ''}
<span>Page ${int(page)} of ${int(pages)}</span>
${page < pages ? html`<a class="button secondary" href="${link(page + 1)}" rel="next">Next</a> <a class="button secondary" href="${link(pages)}">Last</a>` : ''}
</nav>`;
}

export { pager };

// ---------------------------------------------------------------- CSV

const CSV_HEADER = ['at', 'ticket', 'crm', 'subject', 'company', 'event', 'tier', 'queue', 'agent', 'rule', 'text', 'first_response_s', 'resolution_s', 'sla_met', 'topic_link', 'crm_link', 'explanation'];

function csvRow(e: HistoryEntry, t: TicketRecord | null, names: ReturnType<typeof namesOf>): string[] {
  const tm = timings(t);
  const lines = e.explanation ?? (e.kind === 'routed' ? t?.explanation : undefined) ?? [];
  return [
    new Date(e.at).toISOString(),
    e.ticketKey,
    t?.ref.crm ?? '',
    t?.subject ?? '',
    t?.companyName ?? '',
    e.kind,
    e.tier ?? 'unknown',
    names.queue(e.queueId),
    e.agentId ? names.agent(e.agentId) : '',
    e.ruleId ?? '',
    e.text,
    tm.firstResponse === null ? '' : String(Math.round(tm.firstResponse)),
    tm.resolution === null ? '' : String(Math.round(tm.resolution)),
    t?.slaMet === null || t?.slaMet === undefined ? '' : String(t.slaMet),
    t?.topic?.link ?? '',
    t?.recordUrl ?? '',
    lines.join(' | '),
  ];
}

/** RFC 4180 quoting, and a leading quote on cells a spreadsheet would run as a formula (=, +, -, @, tab, CR). */
export function csvCell(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(cells: string[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}

