// Dead letters: pipeline steps that kept failing (a CRM write-back refused, a topic that could not be created), with
// the last error, a short summary of what the step carried, and a button that puts the step back in the outbox.
import type { Job } from '../../../core/ports.ts';
import type { Auth } from '../auth.ts';
import type { ConsoleContext, Routes } from '../context.ts';
import { csrfField, empty, html, int, notice, qs, shell, tableWrap, ticketHref, time } from '../ui.ts';

const KIND_TEXT: Record<Job['kind'], string> = {
  route: 'read the CRM record and route',
  topic: 'create the Telegram topic',
  post: 'post in the Telegram topic',
  writeback: 'write the outcome back to the CRM',
  close_topic: 'close the Telegram topic',
  event: 'process a Telegram update',
};

/** Keys and short values only: enough to recognise the step, without dumping message texts wholesale. */
export function payloadSummary(payload: Record<string, unknown>): string {
  const parts = Object.entries(payload).map(([k, v]) => {
    let s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
    if (s.length > 80) s = `${s.slice(0, 79)}…`;
    return `${k}: ${s}`;
  });
  const out = parts.join(' · ');
  return out.length > 300 ? `${out.slice(0, 299)}…` : out || '(empty)';
}

export function mountDeadLetters(app: Routes, ctx: ConsoleContext, auth: Auth): void {
  app.get('/dead-letters', auth.requirePage, async (c) => {
    const csrf = c.get('session').csrf;
    const q = c.req.query();
    const jobs = (await ctx.store.deadJobs()).sort((a, b) => b.createdAt - a.createdAt);
    const body = html`<h1>Dead letters</h1>
<p class="lead">Steps that failed on every retry. Fix the cause named in the error (a token, a permission, a missing field), then retry: the step runs again exactly once.</p>
${q.retried ? notice('ok', `Queued ${q.retried} step${q.retried === '1' ? '' : 's'} to run again.`) : q.missing ? notice('bad', 'That step is no longer a dead letter (already retried or done).') : ''}
${jobs.length
  ? html`<form method="post" action="/dead-letters/retry" class="actions">${csrfField(csrf)}<input type="hidden" name="all" value="1"><button type="submit" class="secondary">Retry all ${int(jobs.length)}</button></form>
${tableWrap('Dead letters', html`<table><thead><tr><th scope="col">Step</th><th scope="col">Ticket</th><th scope="col" class="num">Attempts</th><th scope="col">Last error</th><th scope="col">Payload</th><th scope="col">Created</th><th scope="col">Action</th></tr></thead><tbody>
${jobs.map((j) => html`<tr><td><strong>${j.kind}</strong><br><span class="muted">${KIND_TEXT[j.kind]}</span></td><td>${j.ticketKey.includes(':') && !j.ticketKey.startsWith('topic:') && !j.ticketKey.startsWith('agent:') ? html`<a href="${ticketHref(j.ticketKey)}">${j.ticketKey}</a>` : j.ticketKey}</td>
<td class="num">${j.attempts}</td><td>${j.lastError ?? '–'}</td><td><code>${payloadSummary(j.payload)}</code></td><td>${time(j.createdAt, true)}</td>
<td><form method="post" action="/dead-letters/retry">${csrfField(csrf)}<input type="hidden" name="id" value="${j.id}"><button type="submit">Retry<span class="sr-only"> ${j.kind} for ${j.ticketKey}</span></button></form></td></tr>`)}
</tbody></table>`)}`
  : empty('No dead letters.', 'Every step has succeeded or is still being retried. A step that fails on every retry (8 attempts with backoff) lands here with its error and a retry button.')}`;
    return c.html(shell({ title: 'Dead letters', active: '/dead-letters', csrf, sandbox: ctx.sandbox, body }));
  });

  app.post('/dead-letters/retry', auth.requireForm, async (c) => {
    const form = await c.req.parseBody();
    const now = ctx.clock.now();
    const ids = form.all === '1' ? (await ctx.store.deadJobs()).map((j) => j.id) : typeof form.id === 'string' ? [form.id] : [];
    let n = 0;
    for (const id of ids) if (await ctx.store.retryDeadJob(id, now)) n++;
    ctx.logger.info('console: dead letters retried', { count: n });
    return c.redirect(`/dead-letters${qs(n ? { retried: n } : { missing: 1 })}`, 303);
  });
}
