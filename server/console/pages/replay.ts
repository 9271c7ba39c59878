// What-if replay: run a draft configuration over the last N days of real tickets before saving it, and see how many
// tickets would move between queues, each agent's projected load against capacity, and which tickets would change
// agent, with both explanations side by side. The simulation is core/replay.ts; this page only feeds and shows it.
import type { ConfigProblem } from '../../../core/config.ts';
import { replay, type ReplayResult, type ReplayTicket, type Side } from '../../../core/replay.ts';
import type { Auth } from '../auth.ts';
import { DAY_MS, namesOf, type ConsoleContext, type Routes } from '../context.ts';
import { draftFromForm, parseDraft, textOf, type DraftText } from '../draft.ts';
import { csrfField, empty, html, int, notice, raw, shell, tableWrap, ticketHref, time, type Html } from '../ui.ts';
import { explanationList } from './history.ts';
import { editor } from './config.ts';

const SHOWN_CHANGES = 50;

export function mountReplay(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  const page = async (csrf: string, draft: DraftText | null, days: number, problems: ConfigProblem[], input: Record<string, unknown> | null, result: Html | string) => {
    const current = await ctx.store.getConfig();
    const d = draft ?? textOf(current?.config ?? null);
    return shell({
      title: 'What-if replay',
      active: '/replay',
      csrf,
      sandbox: ctx.sandbox,
      body: html`
<h1>What-if replay</h1>
<p class="lead">Edit the draft, then replay the last days of real tickets with it. Nothing is saved until you choose to.</p>
${result}
<form method="post" action="/replay" novalidate>
${csrfField(csrf)}
<div class="field"><label for="days">Replay tickets from the last … days</label><input type="number" id="days" name="days" min="1" max="90" value="${days}"></div>
<details${problems.length || !result ? raw(' open') : ''}><summary>Draft configuration</summary>
${editor(d, problems, input)}
</details>
<div class="actions"><button type="submit">Run what-if</button></div>
</form>`,
    });
  };

  app.get('/replay', auth.requirePage, async (c) => c.html(await page(c.get('session').csrf, null, 7, [], null, '')));

  app.post('/replay', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const csrf = c.get('session').csrf;
    const days = Math.min(90, Math.max(1, Math.floor(Number(form.days) || 7)));
    const draft = draftFromForm(form);
    const parsed = parseDraft(draft);
    if (!parsed.ok) return c.html(await page(csrf, draft, days, parsed.problems, parsed.input, ''), 422);

    const now = ctx.clock.now();
    const since = now - days * DAY_MS;
    const [snap, current] = await Promise.all([ctx.model.snapshot(), ctx.store.getConfig()]);
    const tickets: ReplayTicket[] = [];
    for (const t of snap.tickets.values()) {
      if (!t.segment || t.routedAt === null || t.routedAt < since) continue;
      tickets.push({ key: t.key, segment: t.segment, arrivedAt: t.enqueuedAt ?? t.routedAt, releasedAt: t.resolvedAt, actual: { queueId: t.queueId, agentId: t.agentId } });
    }
    const started = performance.now();
    const r = replay({ draft: parsed.config, baseline: current?.config ?? null, tickets, explainLimit: SHOWN_CHANGES });
    const ms = performance.now() - started;
    ctx.logger.info('console: what-if replay', { tickets: r.tickets, movedQueues: r.movedQueues, changedAgent: r.changedAgent, ms: Math.round(ms) });
    const subjects = new Map<string, string>();
    await Promise.all(r.changes.map(async (ch) => subjects.set(ch.key, (await ctx.store.getTicket(ch.key))?.subject ?? ch.key)));
    const result = renderResult(r, days, current?.version ?? null, parsed.input, draft, csrf, subjects, namesOf(parsed.config), namesOf(current?.config));
    return c.html(await page(csrf, draft, days, [], parsed.input, result));
  });
}

function renderResult(
  r: ReplayResult,
  days: number,
  baselineVersion: number | null,
  input: Record<string, unknown> | null,
  draft: DraftText,
  csrf: string,
  subjects: Map<string, string>,
  names: ReturnType<typeof namesOf>,
  before: ReturnType<typeof namesOf>,
): Html {
  if (r.tickets === 0) {
    return empty(`No routed tickets in the last ${days} days to replay.`, html`Try more days, or come back once tickets have been routed (see the <a href="/history">history</a>).`);
  }
  const beforeLabel = r.compared === 'baseline' ? `Version ${baselineVersion} (in force), replayed` : 'What really happened';
  const qname = (id: string | null) => (id === null || id === '(none)' ? '(none)' : names.queue(id) !== id ? names.queue(id) : before.queue(id));
  const aname = (id: string | null) => (id === null ? 'nobody (waits)' : names.agent(id) !== id ? names.agent(id) : before.agent(id));
  const side = (title: string, s: Side) => html`<div><h4>${title}</h4><p><strong>${s.summary || `${qname(s.queueId)} → ${aname(s.agentId)}`}</strong></p>${s.lines.length ? explanationList(s.lines) : ''}</div>`;
  return html`<section aria-labelledby="result-h" class="card">
<h2 id="result-h" tabindex="-1">Result: ${int(r.tickets)} tickets from the last ${days} days</h2>
<p class="muted">${time(r.from)} to ${time(r.to)} · compared with: ${beforeLabel}${r.compared === 'baseline' ? ' over the same timeline, so only your edit makes a difference' : ''}.</p>
<div class="grid">
<div><h3>Would move queue</h3><p class="figure">${int(r.movedQueues)}</p></div>
<div><h3>Would change agent</h3><p class="figure">${int(r.changedAgent)}</p></div>
<div><h3>Never assigned</h3><p class="figure">${int(r.neverAssigned.after)}</p><p class="muted">before: ${int(r.neverAssigned.before)}</p></div>
</div>
${r.moves.length
  ? html`<h3>Moves between queues</h3>${tableWrap('Moves between queues', html`<table><thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col" class="num">Tickets</th></tr></thead><tbody>
${r.moves.map((m) => html`<tr><td>${qname(m.from)}</td><td>${qname(m.to)}</td><td class="num">${int(m.count)}</td></tr>`)}</tbody></table>`)}`
  : html`<p>No ticket would change queue.</p>`}
<h3>Tickets per queue</h3>
${tableWrap('Tickets per queue', html`<table><thead><tr><th scope="col">Queue</th><th scope="col" class="num">Before</th><th scope="col" class="num">With the draft</th><th scope="col" class="num">Change</th></tr></thead><tbody>
${r.queues.map((q) => html`<tr><th scope="row">${qname(q.queueId)}</th><td class="num">${int(q.before)}</td><td class="num">${int(q.after)}</td><td class="num">${q.after - q.before > 0 ? '+' : ''}${int(q.after - q.before)}</td></tr>`)}</tbody></table>`)}
<h3>Projected load per agent</h3>
<p class="muted">Peak = most tickets open with the agent at once (a ticket stays with its agent until it was really resolved).</p>
${tableWrap('Projected load per agent', html`<table><thead><tr><th scope="col">Agent</th><th scope="col" class="num">Capacity</th><th scope="col" class="num">Tickets before</th><th scope="col" class="num">Tickets with the draft</th><th scope="col" class="num">Peak before</th><th scope="col" class="num">Peak with the draft</th><th scope="col" class="num">Open at the end</th></tr></thead><tbody>
${r.load.map((a) => {
  const full = a.capacity !== null && a.after.peak >= a.capacity && a.capacity > 0;
  return html`<tr><th scope="row">${a.name}</th><td class="num">${a.capacity ?? html`<span class="badge warn">removed</span>`}</td><td class="num">${int(a.before.assigned)}</td><td class="num">${int(a.after.assigned)}</td><td class="num">${int(a.before.peak)}</td>
<td class="num">${full ? html`<span class="badge bad">${int(a.after.peak)} at capacity</span>` : int(a.after.peak)}</td><td class="num">${int(a.after.open)}</td></tr>`;
})}</tbody></table>`)}
<h3>Tickets that would change agent${r.changedAgent > r.changes.length ? ` (first ${r.changes.length} of ${int(r.changedAgent)})` : ''}</h3>
${r.changes.length
  ? html`<p class="muted">Open a ticket to see both explanations side by side.</p><ol class="changes">${r.changes.map((ch, i) => html`<li><details${i < 3 ? raw(' open') : ''}><summary><span class="changes-ticket">${subjects.get(ch.key) ?? ch.key}</span> · ${aname(ch.before.agentId)} → <strong>${aname(ch.after.agentId)}</strong>${ch.before.queueId !== ch.after.queueId ? ` (${qname(ch.before.queueId)} → ${qname(ch.after.queueId)})` : ''}</summary>
<p><a href="${ticketHref(ch.key)}">Ticket history</a> <span class="muted">· arrived ${time(ch.arrivedAt)}</span></p>
<div class="side">${side(beforeLabel, ch.before)}${side('With the draft', ch.after)}</div></details></li>`)}</ol>`
  : html`<p>No ticket would change agent.</p>`}
<form method="post" action="/config" class="actions">
${csrfField(csrf)}
${(['tiering', 'rules', 'defaultQueue', 'queues', 'agents', 'groups'] as const).map((s) => html`<input type="hidden" name="${s}" value="${draft[s]}">`)}
<input type="hidden" name="action" value="save">
<label for="save-note" class="sr-only">Note for this version</label><input type="text" id="save-note" name="note" placeholder="note for this version" maxlength="500" size="40">
<button type="submit">Save this draft as a new version</button>
</form>
${input ? '' : notice('bad', 'The draft could not be read.')}
</section>`;
}
