// Performance: first-response and resolution times (median, p90) by tier, queue and agent, SLA met vs breached,
// overflow and reassignment counts, and the staleness report: where missing or invalid CRM data shaped routing.
// Computed by core/report.ts over the read model, cached per snapshot version, so a page view costs a render.
import { SEGMENT_FIELDS } from '../../../core/segment.ts';
import type { GroupReport, PerformanceReport } from '../../../core/report.ts';
import type { Auth } from '../auth.ts';
import { durationChart, slaChart } from '../charts.ts';
import { dayStart, DAY_MS, namesOf, type ConsoleContext, type Routes } from '../context.ts';
import { duration, empty, html, int, pct, qs, selectOptions, shell, tableWrap, time, type Html } from '../ui.ts';
import { pager } from './history.ts';

const PERIODS = [
  { value: '1', label: 'Today (UTC)' },
  { value: '7', label: 'Last 7 days' },
  { value: '30', label: 'Last 30 days' },
  { value: '90', label: 'Last 90 days' },
  { value: 'all', label: 'All time' },
] as const;
const AGENTS_PER_PAGE = 25;

export function mountPerformance(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  app.get('/performance', auth.requirePage, async (c) => {
    const s = c.get('session');
    const q = c.req.query();
    const period = PERIODS.some((p) => p.value === q.period) ? q.period! : '30';
    // Whole UTC days, so the cached report is reused all day instead of per millisecond.
    const since = period === 'all' ? null : dayStart(ctx.clock.now()) - (Number(period) - 1) * DAY_MS;
    const [{ report, snapshot }, version] = await Promise.all([ctx.model.report(since), ctx.store.getConfig()]);
    const names = namesOf(version?.config);
    const agentPages = Math.max(1, Math.ceil(report.byAgent.length / AGENTS_PER_PAGE));
    const agentPage = Math.min(agentPages, Math.max(1, Math.floor(Number(q.agents) || 1)));
    const agents = report.byAgent.slice((agentPage - 1) * AGENTS_PER_PAGE, agentPage * AGENTS_PER_PAGE);
    const o = report.overall;

    const body = html`
<h1>Performance</h1>
<p class="lead">Measured from the tickets themselves (arrival in the queue → first agent reply / resolution). Figures as of ${time(snapshot.at, true)}.</p>
<form method="get" action="/performance" class="filters" aria-label="Period">
<div class="field"><label for="p-period">Period</label><select id="p-period" name="period">${selectOptions(PERIODS, period)}</select></div>
<div class="field"><button type="submit">Show</button></div>
</form>
${o.tickets === 0
  ? empty('No routed tickets in this period.', html`Pick a longer period above, or check the <a href="/">Overview</a>: performance appears once tickets are routed and answered.`)
  : html`
<section aria-labelledby="sum-h"><h2 id="sum-h">Summary</h2>
<div class="grid">
<div class="card"><h3>Tickets routed</h3><p class="figure">${int(o.tickets)}</p><p class="muted">${int(o.open)} still open</p></div>
<div class="card"><h3>First response</h3><p class="figure">${duration(o.firstResponse.median)}</p><p class="muted">median · p90 ${duration(o.firstResponse.p90)} · ${int(o.firstResponse.count)} answered</p></div>
<div class="card"><h3>Resolution</h3><p class="figure">${duration(o.resolution.median)}</p><p class="muted">median · p90 ${duration(o.resolution.p90)} · ${int(o.resolution.count)} resolved</p></div>
<div class="card"><h3>SLA met</h3><p class="figure">${pct(o.slaMetRate)}</p><p class="muted">${int(o.slaMet)} met · ${int(o.slaBreached)} breached</p></div>
<div class="card"><h3>Overflow · reassignment</h3><p class="figure">${int(o.overflowed)} · ${int(o.reassigned)}</p><p class="muted">${pct(o.overflowed / o.tickets)} overflowed · ${pct(o.reassigned / o.tickets)} reassigned · ${int(o.escalated)} escalated</p></div>
</div>
</section>
${groupSection('tier', 'By tier', report.byTier, (k) => k)}
${groupSection('queue', 'By queue', report.byQueue, names.queue)}
${groupSection('agent', `By agent (who answered first, else who was assigned)`, agents, names.agent, pager(agentPage, agentPages, (p) => `/performance${qs({ period: period === '30' ? undefined : period, agents: p === 1 ? undefined : p })}#agent-h`))}
${stalenessSection(report)}`}`;
    return c.html(shell({ title: 'Performance', active: '/performance', csrf: s.csrf, sandbox: ctx.sandbox, body }));
  });
}

function groupSection(id: string, title: string, rows: GroupReport[], name: (k: string) => string, after: Html | string = ''): Html {
  const label = (r: GroupReport) => name(r.key);
  return html`<section aria-labelledby="${id}-h"><h2 id="${id}-h">${title}</h2>
<div class="charts">
<div>${durationChart(`First response ${title.toLowerCase()}`, rows.map((r) => ({ label: label(r), median: r.firstResponse.median, p90: r.firstResponse.p90, count: r.firstResponse.count })))}</div>
<div>${durationChart(`Resolution ${title.toLowerCase()}`, rows.map((r) => ({ label: label(r), median: r.resolution.median, p90: r.resolution.p90, count: r.resolution.count })))}</div>
<div>${slaChart(`SLA met vs breached ${title.toLowerCase()}`, rows.map((r) => ({ label: label(r), met: r.slaMet, breached: r.slaBreached })))}</div>
</div>
${tableWrap(title, html`<table><thead><tr><th scope="col">${id[0]!.toUpperCase() + id.slice(1)}</th><th scope="col" class="num">Tickets</th><th scope="col" class="num">Open</th>
<th scope="col" class="num">First response median</th><th scope="col" class="num">p90</th><th scope="col" class="num">Resolution median</th><th scope="col" class="num">p90</th>
<th scope="col" class="num">SLA met</th><th scope="col" class="num">Breached</th><th scope="col" class="num">Met rate</th><th scope="col" class="num">Overflowed</th><th scope="col" class="num">Reassigned</th></tr></thead><tbody>
${rows.map((r) => html`<tr><th scope="row">${label(r)}</th><td class="num">${int(r.tickets)}</td><td class="num">${int(r.open)}</td>
<td class="num">${duration(r.firstResponse.median)}</td><td class="num">${duration(r.firstResponse.p90)}</td><td class="num">${duration(r.resolution.median)}</td><td class="num">${duration(r.resolution.p90)}</td>
<td class="num">${int(r.slaMet)}</td><td class="num">${int(r.slaBreached)}</td><td class="num">${pct(r.slaMetRate)}</td><td class="num">${int(r.overflowed)}</td><td class="num">${int(r.reassigned)}</td></tr>`)}
</tbody></table>`)}
${after}
</section>`;
}

function stalenessSection(report: PerformanceReport): Html {
  const st = report.staleness;
  const rows = SEGMENT_FIELDS.map((f) => ({ field: f, missing: st.missing[f] ?? 0, invalid: st.invalid[f] ?? 0 })).sort((a, b) => b.missing + b.invalid - (a.missing + a.invalid));
  const worst = rows.filter((r) => r.missing + r.invalid > 0);
  return html`<section aria-labelledby="stale-h"><h2 id="stale-h">CRM data quality (staleness report)</h2>
<p>${int(st.routedOnMissingData)} tickets (${pct(st.tickets ? st.routedOnMissingData / st.tickets : null)}) went to the default queue because a field a rule needed was missing;
${int(st.tierDerived)} had their tier derived from lifetime value or revenue because the CRM had none.
${worst.length ? html`Fix <strong>${worst.slice(0, 3).map((r) => r.field).join(', ')}</strong> on the CRM records first: they are missing or invalid most often.` : 'Every field was present and valid.'}</p>
${tableWrap('Staleness by field', html`<table><thead><tr><th scope="col">Segment field</th><th scope="col" class="num">Missing</th><th scope="col" class="num">Invalid</th><th scope="col" class="num">Share of tickets</th></tr></thead><tbody>
${rows.map((r) => html`<tr><th scope="row">${r.field}</th><td class="num">${int(r.missing)}</td><td class="num">${int(r.invalid)}</td><td class="num">${pct(st.tickets ? (r.missing + r.invalid) / st.tickets : null)}</td></tr>`)}
<tr><th scope="row">tier derived (not from the CRM)</th><td class="num" colspan="2">${int(st.tierDerived)}</td><td class="num">${pct(st.tickets ? st.tierDerived / st.tickets : null)}</td></tr>
</tbody></table>`)}
</section>`;
}
