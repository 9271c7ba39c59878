// Overview: what is happening right now. Queue depth and oldest wait, agents and their load against capacity, today's
// routing by tier, SLA and overflow rates, the newest tickets and connector health. The figures live in one
// fragment that the page script refreshes every few seconds (polling: it survives proxies and needs no open stream).
import type { AgentStatus, RoutingConfig } from '../../../core/config.ts';
import type { Counters } from '../../../core/ports.ts';
import { TIERS } from '../../../core/segment.ts';
import type { Auth } from '../auth.ts';
import { dayStart, namesOf, type ConsoleContext, type Routes } from '../context.ts';
import { withTimeout } from '../../with-timeout.ts';
import { csrfField, duration, empty, html, int, notice, okBadge, pct, shell, tableWrap, ticketHref, tierBadge, time, type Html } from '../ui.ts';

const REFRESH_S = 5;

export function mountOverview(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  app.get('/', auth.requirePage, async (c) => {
    const s = c.get('session');
    const q = c.req.query();
    const body = html`
<h1>Overview</h1>
<p class="lead">Live queues, agents and today's routing. Figures refresh every ${REFRESH_S} seconds.</p>
${q.generator === 'paused' ? notice('ok', 'Sample tickets paused.') : q.generator === 'resumed' ? notice('ok', 'Sample tickets resumed.') : ''}
<div class="actions">
<button type="button" class="secondary" id="live-toggle" aria-pressed="false" hidden>Pause live updates</button>
<span class="live-status" id="live-status" role="status"></span>
</div>
${ctx.generator ? generatorControls(ctx, s.csrf) : ''}
<div id="live" data-live="/overview/live" data-every="${REFRESH_S}" data-status="live-status" data-toggle="live-toggle">${await fragment(ctx)}</div>`;
    return c.html(shell({ title: 'Overview', active: '/', csrf: s.csrf, sandbox: ctx.sandbox, body }));
  });

  app.get('/overview/live', auth.requireFragment, async (c) => c.html(await fragment(ctx)));

  app.post('/sandbox/generator', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    if (!ctx.generator) return c.redirect('/', 303);
    if (form.action === 'pause') ctx.generator.pause();
    else ctx.generator.resume();
    ctx.logger.info('console: sample ticket generator', { action: form.action === 'pause' ? 'pause' : 'resume' });
    return c.redirect(`/?generator=${form.action === 'pause' ? 'paused' : 'resumed'}`, 303);
  });
}

function generatorControls(ctx: ConsoleContext, csrf: string): Html {
  const paused = ctx.generator!.paused();
  return html`<form method="post" action="/sandbox/generator" class="actions">
${csrfField(csrf)}<input type="hidden" name="action" value="${paused ? 'resume' : 'pause'}">
<span>Sample ticket generator: <strong>${paused ? 'paused' : 'running'}</strong></span>
<button type="submit" class="secondary">${paused ? 'Resume sample tickets' : 'Pause sample tickets'}</button>
</form>`;
}

type AgentRow = { id: string; name: string; status: AgentStatus; load: number; capacity: number; queues: string[] };

async function fragment(ctx: ConsoleContext): Promise<Html> {
  const now = ctx.clock.now();
  const [version, counters, snap, recent, connectors] = await Promise.all([
    ctx.store.getConfig(),
    ctx.store.counters(),
    ctx.model.snapshot(),
    ctx.store.history({ kind: 'routed', limit: 8 }),
    withTimeout(ctx.connectors(), 3_000).catch((err: unknown) => err instanceof Error ? err : new Error(String(err))),
  ]);
  const config = version?.config ?? null;
  const names = namesOf(config);

  // Today's routing (UTC day) from the read model.
  const today = dayStart(now);
  const byTier = new Map<string, number>();
  let routed = 0;
  let met = 0;
  let breached = 0;
  let overflowed = 0;
  for (const t of snap.tickets.values()) {
    if (t.routedAt === null || t.routedAt < today) continue;
    routed++;
    const tier = t.segment?.tier ?? 'unknown';
    byTier.set(tier, (byTier.get(tier) ?? 0) + 1);
    if (t.slaMet === true) met++;
    if (t.slaMet === false) breached++;
    if (t.overflowCount > 0) overflowed++;
  }
  const waitingNow = Object.values(counters.waiting).reduce((n, w) => n + Object.keys(w).length, 0);
  const openAssigned = Object.values(counters.load).reduce((n, l) => n + l, 0);
  const recentTickets = await Promise.all(recent.entries.map(async (e) => ({ e, t: await ctx.store.getTicket(e.ticketKey) })));

  return html`
<section aria-labelledby="today-h">
<h2 id="today-h">Today <span class="muted">(since 00:00 UTC)</span></h2>
<div class="grid">
<div class="card"><h3>Routed today</h3><p class="figure">${int(routed)}</p>
<p>${[...TIERS].reverse().map((t) => html`${tierBadge(t)} ${int(byTier.get(t) ?? 0)} `)}${byTier.get('unknown') ? html`${tierBadge('unknown')} ${int(byTier.get('unknown')!)}` : ''}</p></div>
<div class="card"><h3>First-response SLA met</h3><p class="figure">${pct(met + breached ? met / (met + breached) : null)}</p><p class="muted">${int(met)} met, ${int(breached)} breached (of tickets routed today)</p></div>
<div class="card"><h3>Overflow rate</h3><p class="figure">${pct(routed ? overflowed / routed : null)}</p><p class="muted">${int(overflowed)} of ${int(routed)} tickets left their first queue</p></div>
<div class="card"><h3>Open now</h3><p class="figure">${int(openAssigned + waitingNow)}</p><p class="muted">${int(openAssigned)} with an agent, ${int(waitingNow)} waiting for one</p></div>
</div>
</section>
${config ? queuesSection(config, counters, now) : html`<h2>Queues</h2>${empty('No routing configuration yet.', html`Open <a href="/config">Configuration</a> to add rules, queues and agents; tickets are held until one is saved.`)}`}
${config ? agentsSection(config, counters, names) : ''}
<section aria-labelledby="recent-h">
<h2 id="recent-h">Newest tickets</h2>
${recentTickets.length
  ? tableWrap('Newest tickets', html`<table><thead><tr><th scope="col">Routed</th><th scope="col">Tier</th><th scope="col">Ticket</th><th scope="col">Outcome</th><th scope="col">Status</th><th scope="col">Explanation</th></tr></thead><tbody>
${recentTickets.map(({ e, t }) => html`<tr><td>${time(e.at, true)}</td><td>${tierBadge(e.tier)}</td><td>${t?.subject ?? e.ticketKey}<br><span class="muted">${t?.companyName ?? ''}</span></td><td>${e.text}</td><td>${t?.status ?? '–'}</td><td><a href="${ticketHref(e.ticketKey)}">Why here?<span class="sr-only"> (${t?.subject ?? e.ticketKey})</span></a></td></tr>`)}
</tbody></table>`)
  : empty('No tickets yet.', noTicketsHint(ctx))}
</section>
${connectorsSection(ctx, connectors)}`;
}

function noTicketsHint(ctx: ConsoleContext): Html {
  const links = [
    ctx.installLinks.hubspot ? html`<a href="${ctx.installLinks.hubspot}">connect HubSpot</a>` : null,
    ctx.installLinks.salesforce ? html`<a href="${ctx.installLinks.salesforce}">connect Salesforce</a>` : null,
  ].filter(Boolean);
  if (ctx.sandbox) return html`Sandbox mode: sample tickets arrive on their own${ctx.generator?.paused() ? ' once you resume the generator above' : ' within a few seconds'}. To route real tickets, ${links.length ? html`${links[0]}${links[1] ? html` or ${links[1]}` : ''}` : 'set the CRM credentials'}.`;
  return html`Tickets appear here as soon as a CRM sends one. ${links.length ? html`To start, ${links[0]}${links[1] ? html` or ${links[1]}` : ''}.` : 'Connect HubSpot or Salesforce first.'}`;
}

function statusOf(config: RoutingConfig, counters: Counters, id: string): AgentStatus {
  return counters.status[id] ?? config.agents.find((a) => a.id === id)?.status ?? 'available';
}

function queuesSection(config: RoutingConfig, counters: Counters, now: number): Html {
  const agentById = new Map(config.agents.map((a) => [a.id, a]));
  return html`<section aria-labelledby="queues-h">
<h2 id="queues-h">Queues</h2>
${tableWrap('Queues', html`<table><thead><tr><th scope="col">Queue</th><th scope="col">Strategy</th><th scope="col" class="num">Waiting</th><th scope="col" class="num">Oldest wait</th><th scope="col" class="num">Available</th><th scope="col" class="num">Away</th><th scope="col" class="num">Offline</th><th scope="col" class="num">Load / capacity</th></tr></thead><tbody>
${config.queues.map((q) => {
  const waiting = counters.waiting[q.id] ?? {};
  const depth = Object.keys(waiting).length;
  const oldest = depth ? Math.min(...Object.values(waiting)) : null;
  let avail = 0;
  let away = 0;
  let offline = 0;
  let load = 0;
  let cap = 0;
  for (const m of q.agents) {
    const id = typeof m === 'string' ? m : m.id;
    const st = statusOf(config, counters, id);
    if (st === 'available') avail++;
    else if (st === 'away') away++;
    else offline++;
    load += counters.load[id] ?? 0;
    cap += typeof m === 'string' ? (agentById.get(id)?.capacity ?? 0) : m.capacity;
  }
  const slaS = q.slaFirstResponseSeconds;
  const waitS = oldest === null ? null : (now - oldest) / 1000;
  return html`<tr><th scope="row">${q.name} <span class="muted">(${q.id})</span></th><td>${q.strategy.replace('_', ' ')}</td><td class="num">${depth ? html`<span class="badge warn">${int(depth)}</span>` : '0'}</td>
<td class="num">${waitS === null ? '–' : html`<span class="${waitS > slaS ? 'bad' : ''}">${duration(waitS)}</span>`}</td><td class="num">${avail}</td><td class="num">${away}</td><td class="num">${offline}</td><td class="num">${load} / ${cap}</td></tr>`;
})}
</tbody></table>`)}
</section>`;
}

function agentsSection(config: RoutingConfig, counters: Counters, names: ReturnType<typeof namesOf>): Html {
  const rows: AgentRow[] = config.agents.map((a) => {
    const queues = config.queues.filter((q) => q.agents.some((m) => (typeof m === 'string' ? m : m.id) === a.id));
    const member = queues.flatMap((q) => q.agents).find((m) => typeof m !== 'string' && m.id === a.id);
    return { id: a.id, name: a.name, status: statusOf(config, counters, a.id), load: counters.load[a.id] ?? 0, capacity: member && typeof member !== 'string' ? member.capacity : a.capacity, queues: queues.map((q) => q.id) };
  });
  return html`<section aria-labelledby="agents-h">
<h2 id="agents-h">Agents</h2>
${rows.length
  ? tableWrap('Agents', html`<table><thead><tr><th scope="col">Agent</th><th scope="col">Status</th><th scope="col" class="num">Open tickets / capacity</th><th scope="col">Queues</th></tr></thead><tbody>
${rows.map((r) => html`<tr><th scope="row">${r.name}</th><td>${statusBadge(r.status)}</td><td class="num">${r.load >= r.capacity && r.capacity > 0 ? html`<span class="badge bad">${r.load} / ${r.capacity} full</span>` : `${r.load} / ${r.capacity}`}</td><td>${r.queues.map(names.queue).join(', ') || html`<span class="muted">in no queue</span>`}</td></tr>`)}
</tbody></table>`)
  : empty('No agents configured.', html`Add agents in <a href="/config#field-agents">Configuration</a> and list them on a queue.`)}
</section>`;
}

function statusBadge(s: AgentStatus): Html {
  return html`<span class="badge ${s === 'available' ? 'ok' : s === 'away' ? 'warn' : 'bad'}">${s}</span>`;
}

function connectorsSection(ctx: ConsoleContext, list: { id: string; health: import('../../contracts.ts').ConnectorHealth }[] | Error): Html {
  if (list instanceof Error) return html`<section aria-labelledby="conn-h"><h2 id="conn-h">Connectors</h2>${notice('bad', html`Connector health did not answer: ${list.message}`)}</section>`;
  const install = (id: string) => (id === 'hubspot' ? ctx.installLinks.hubspot : id === 'salesforce' ? ctx.installLinks.salesforce : undefined);
  const alerts = list.flatMap(({ health: h }) => (h.alert ? [h.alert] : []));
  return html`<section aria-labelledby="conn-h">
<h2 id="conn-h">Connectors</h2>
${alerts.map((a) => notice('bad', a))}
${list.length
  ? tableWrap('Connectors', html`<table><thead><tr><th scope="col">Connector</th><th scope="col">Mode</th><th scope="col">Health</th><th scope="col">Detail</th><th scope="col">Last error</th><th scope="col">Figures</th></tr></thead><tbody>
${list.map(({ id, health: h }) => {
  const { ok: _ok, mode: _m, detail: _d, lastError: _e, alert: _a, ...extra } = h;
  const link = install(id);
  return html`<tr><th scope="row">${id}</th><td><span class="badge ${h.mode === 'real' ? 'ok' : 'warn'}">${h.mode}</span></td><td>${okBadge(h.ok)}</td>
<td>${h.detail}${link && h.mode === 'real' ? html`<br><a href="${link}">Install in ${id === 'hubspot' ? 'a HubSpot portal' : 'a Salesforce org'}</a>` : ''}</td><td>${h.lastError ?? '–'}</td>
<td>${Object.keys(extra).length ? html`<details><summary>All figures<span class="sr-only"> of ${id}</span></summary>${show(extra)}</details>` : '–'}</td></tr>`;
})}
</tbody></table>`)
  : empty('No connectors configured.', html`Set HubSpot, Salesforce or Telegram credentials (see the README), or run without them to use the sandboxes.`)}
</section>`;
}

/** rateLimitRemaining -> "rate limit remaining". */
function label(key: string): string {
  return key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_-]/g, ' ').toLowerCase();
}

/** A connector's own figures, whatever their shape: nested lists, times for *At keys, long lists cut short. */
function show(v: unknown, key = '', depth = 0): Html | string {
  if (v === null || v === undefined || v === '') return '–';
  if (typeof v === 'number') {
    if (/(^at|At)$/.test(key) && v > 1e12) return time(v, true);
    return Number.isInteger(v) ? int(v) : v.toFixed(2);
  }
  if (typeof v === 'string' || typeof v === 'boolean') return String(v);
  if (depth >= 4) {
    const j = JSON.stringify(v);
    return j.length > 120 ? `${j.slice(0, 119)}…` : j;
  }
  if (Array.isArray(v)) {
    if (!v.length) return 'none';
    const shown = v.slice(0, 10);
    return html`<ul class="lines">${shown.map((x) => html`<li>${show(x, key, depth + 1)}</li>`)}${v.length > shown.length ? html`<li>and ${v.length - shown.length} more</li>` : ''}</ul>`;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (!entries.length) return '–';
  return html`<ul class="lines">${entries.map(([k, x]) => html`<li>${label(k)}: ${show(x, k, depth + 1)}</li>`)}</ul>`;
}
