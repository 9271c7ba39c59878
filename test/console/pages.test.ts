import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import { performanceReport } from '../../core/report.ts';
import { ticketKey } from '../../core/segment.ts';
import { csvCell } from '../../server/console/pages/history.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { setupConsole, visible } from './harness.ts';

const text = async (r: Response) => visible(await r.text());

describe('overview', () => {
  it('shows queue depth and oldest wait, agents with status and load, today by tier, newest tickets and connector health', async () => {
    const c = await setupConsole({ seed: 400 });
    const now = c.clock.now();
    await c.store.commit({
      counters: [
        { op: 'wait', queueId: 'billing', ticketKey: 'hubspot:4242:w1', since: now - 5 * 3600_000 },
        { op: 'status', agentId: 'bruno', status: 'away' },
        { op: 'status', agentId: 'ivan', status: 'offline' },
      ],
    });
    const r = await c.get('/');
    expect(r.status).toBe(200);
    const page = await r.text();
    const t = visible(page);
    // Billing waited 5 h against a 4 h SLA: shown, and flagged.
    expect(t).toMatch(/Billing \(billing\) round robin \d+ 5 h 00 min/);
    expect(page).toMatch(/<span class="bad">5 h 00 min<\/span>/);
    expect(t).toMatch(/Bruno Costa away/);
    expect(t).toMatch(/Ivan Petrov offline/);
    const today = (await c.store.tickets()).filter((x) => x.routedAt! >= Date.UTC(2026, 10, 2));
    expect(t).toContain(`Routed today ${today.length}`);
    const ent = today.filter((x) => x.segment?.tier === 'enterprise').length;
    expect(t).toContain(`enterprise ${ent}`);
    expect(t).toMatch(/First-response SLA met \d+\.\d% \d+ met, \d+ breached/);
    expect(t).toMatch(/Overflow rate \d+\.\d%/);
    // Newest tickets link to their explanation.
    const newest = (await c.store.history({ kind: 'routed', limit: 1 })).entries[0]!;
    expect(page).toContain(`href="/tickets/${encodeURIComponent(newest.ticketKey)}"`);
    // Connectors: mode, error and the connector's own figures.
    expect(t).toMatch(/hubspot sandbox ok 1 portal installed – All figures of hubspot rate limit remaining: 97/);
    expect(t).toMatch(/telegram real failing FLOOD_WAIT on group support-1 FLOOD_WAIT_30 All figures of telegram flood waits: 2/);
    expect(page).not.toContain('role="alert"');
  });

  it('puts a connector\'s alert (Salesforce API allocation at 80%) above the connectors, where it cannot be missed', async () => {
    const alert = 'Salesforce org 00D000000000001 has used 84% of its daily API allocation (84000 of 100000).';
    const c = await setupConsole({ health: [{ id: 'salesforce', health: { ok: true, mode: 'real', detail: 'API 84% used (org 00D000000000001)', lastError: null, apiUsagePercent: 84, alert } }] });
    const page = await (await c.get('/')).text();
    expect(page).toMatch(new RegExp(`<div class="notice bad" role="alert">${alert.replace(/[.()]/g, '\\$&')}</div>`));
  });

  it('serves the live figures as a fragment for the page script, and they follow new tickets', async () => {
    const c = await setupConsole();
    const before = await (await c.get('/overview/live')).text();
    expect(before).not.toMatch(/<html/);
    expect(visible(before)).toMatch(/No tickets yet/);
    const ref = c.h.crm.add('live-1', { tier: 'enterprise' }, 'Fresh VIP ticket');
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'e1', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    c.clock.advance(10);
    const after = visible(await (await c.get('/overview/live')).text());
    expect(after).toMatch(/Routed today 1/);
    expect(after).toMatch(/Fresh VIP ticket/);
    expect(after).toMatch(/VIP desk \(vip\) least busy 0 – 4 0 0 1 \/ 21/);
  });

  it('empty states say what to do next', async () => {
    const c = await setupConsole();
    const t = await text(await c.get('/'));
    expect(t).toMatch(/No tickets yet\. Tickets appear here as soon as a CRM sends one\. To start, connect HubSpot or connect Salesforce\./);
    const page = await (await c.get('/')).text();
    expect(page).toContain('href="/oauth/hubspot/install"');
    const sandbox = await setupConsole({ forum: true, generator: true });
    expect(await text(await sandbox.get('/'))).toMatch(/Sandbox mode: sample tickets arrive on their own/);
  });

  it('pauses and resumes the sample generator in sandbox mode', async () => {
    const c = await setupConsole({ forum: true, generator: true });
    expect(await text(await c.get('/'))).toMatch(/Sample ticket generator: running/);
    const r = await c.post('/sandbox/generator', { action: 'pause' });
    expect(r.headers.get('location')).toBe('/?generator=paused');
    expect(c.generator.paused()).toBe(true);
    expect(await text(await c.get('/?generator=paused'))).toMatch(/Sample tickets paused\. .*Sample ticket generator: paused Resume sample tickets/);
    await c.post('/sandbox/generator', { action: 'resume' });
    expect(c.generator.paused()).toBe(false);
  });
});

describe('routing history', () => {
  it('lists events newest first with ticket, tier, queue, agent, rule, timings, links and the explanation with agents passed over', async () => {
    const c = await setupConsole({ seed: 300 });
    const page = await (await c.get('/history?kind=routed')).text();
    const t = visible(page);
    const total = (await c.store.history({ kind: 'routed' })).total;
    expect(total).toBe(300);
    expect(t).toContain(`${total} events matching the filters · page 1 of 6`);
    expect(page).toMatch(/<details><summary>Why\?<\/summary><ul class="lines"><li>tier \w+ from the CRM\.<\/li>/);
    expect(page).toMatch(/<li>Passed over:<ul class="lines"><li>[A-Z][a-z]+ [A-Z][a-z]+ \((away|busier|not next in turn|at capacity \d+\/\d+|does not speak the customer’s language|learning agent[^)]*|missing skill[^)]*)\)<\/li>/);
    expect(page).toMatch(/href="https:\/\/t\.me\/c\/1700000001\/\d+" rel="noopener noreferrer"/);
    expect(page).toMatch(/href="https:\/\/app\.hubspot\.com\/contacts\/4242\/record\/0-5\/\d+"/);
    // Newest first.
    const times = [...page.matchAll(/<time datetime="([^"]+)"/g)].map((m) => Date.parse(m[1]!));
    expect(times.length).toBe(50);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('filters by tier, queue, agent, outcome and date, and pages through the rest', async () => {
    const c = await setupConsole({ seed: 300 });
    const all = await c.store.tickets();
    const entKeys = new Set(all.filter((x) => x.segment?.tier === 'enterprise').map((x) => x.key));
    const ent = await (await c.get('/history?tier=enterprise&kind=routed&per=200')).text();
    const links = [...ent.matchAll(/<td data-label="Ticket"><a href="\/tickets\/([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!));
    expect(links.length).toBe(entKeys.size);
    expect(links.every((k) => entKeys.has(k))).toBe(true);

    const emma = visible(await (await c.get('/history?agent=emma&queue=billing&per=200')).text());
    const expected = (await c.store.history({ agentId: 'emma', queueId: 'billing', limit: 1000 })).total;
    expect(emma).toContain(`${expected} events matching the filters`);

    const day = '2026-11-01';
    const onDay = (await c.store.history({ from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 10, 2) - 1 })).total;
    expect(visible(await (await c.get(`/history?from=${day}&to=${day}`)).text())).toContain(`${onDay} events matching the filters`);

    const p1 = await (await c.get('/history?per=25')).text();
    const p2 = await (await c.get('/history?per=25&page=2')).text();
    const keys = (h: string) => [...h.matchAll(/<td data-label="Ticket"><a href="\/tickets\/([^"]+)"/g)].map((m) => m[1]).join(',');
    expect(keys(p1)).not.toEqual(keys(p2));
    expect(p2).toMatch(/href="\/history\?per=25" rel="prev"|href="\/history\?per=25&amp;page=1"/);
    expect(p1).toContain('href="/history?per=25&amp;page=2" rel="next"');

    // Nonsense filters are ignored, not errors.
    expect((await c.get('/history?tier=gold&page=-3&per=7&from=yesterday')).status).toBe(200);
    expect(visible(await (await c.get('/history?queue=nowhere')).text())).toMatch(/Nothing matches these filters\./);
  });

  it('exports the filtered selection as CSV, safe to open in a spreadsheet', async () => {
    const c = await setupConsole({ seed: 120 });
    const r = await c.get('/history.csv?tier=premium');
    expect(r.headers.get('content-type')).toMatch(/text\/csv/);
    expect(r.headers.get('content-disposition')).toMatch(/attachment; filename="tierline-history-2026-11-02\.csv"/);
    const body = await r.text();
    const lines = body.replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('at,ticket,crm,subject,company,event,tier,queue,agent,rule,text,first_response_s,resolution_s,sla_met,topic_link,crm_link,explanation');
    expect(lines.length - 1).toBe((await c.store.history({ tier: 'premium' })).total);
    expect(lines.slice(1).every((l) => l.includes(',premium,'))).toBe(true);
    expect(csvCell('=HYPERLINK("http://evil")')).toBe(`"'=HYPERLINK(""http://evil"")"`);
    expect(csvCell('-5')).toBe("'-5");
    expect(csvCell('plain')).toBe('plain');
  });

  it('shows one ticket with its segment, data problems, timings, explanation and timeline; unknown keys get a 404 page', async () => {
    const c = await setupConsole();
    const ref = c.h.crm.add('d1', { tier: null, lifetimeValue: { amount: 30_000, currency: 'USD' }, language: null }, 'Derived tier ticket');
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'k', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    c.clock.advance(7 * 60_000);
    const tk = (await c.store.getTicket(ticketKey(ref)))!;
    const agent = SAMPLE_CONFIG.agents.find((a) => a.id === tk.agentId)!;
    await c.h.pipeline.onMessengerEvent({ kind: 'message', groupId: tk.topic!.groupId, topicId: tk.topic!.topicId, messageId: 9, fromTelegramUserId: agent.telegramUserId!, text: 'On it', at: c.clock.now() });
    await c.h.drain();
    const r = await c.get(`/tickets/${encodeURIComponent(ticketKey(ref))}`);
    expect(r.status).toBe(200);
    const t = visible(await r.text());
    expect(t).toMatch(/Derived tier ticket/);
    expect(t).toMatch(/tier premium derived tier premium derived: lifetimeValue 30000 >= 20000/);
    expect(t).toMatch(/language – missing/);
    expect(t).toMatch(/First response 7 min/);
    expect(t).toMatch(/SLA met/);
    expect(t).toMatch(/Why it went there .*Rule "premium" matched/);
    expect(t).toMatch(/Timeline .* routed · Routed to .* first reply · First reply after 7\.0 min; SLA met/);
    const missing = await c.get('/tickets/hubspot%3A1%3Anope');
    expect(missing.status).toBe(404);
    expect(visible(await missing.text())).toMatch(/No ticket "hubspot:1:nope"/);
  });
});

describe('performance', () => {
  it('shows median and p90 by tier, queue and agent as charts and tables, SLA, overflow, reassignment and the staleness report', async () => {
    const c = await setupConsole({ seed: 500 });
    const page = await (await c.get('/performance?period=all')).text();
    const t = visible(page);
    const rep = performanceReport(await c.store.tickets());
    expect(t).toContain(`Tickets routed ${rep.overall.tickets}`);
    expect(t).toContain(`${rep.overall.slaMet} met · ${rep.overall.slaBreached} breached`);
    expect(t).toContain(`${rep.overall.overflowed} · ${rep.overall.reassigned}`);
    // Charts: inline SVG with a title and a description carrying the numbers.
    expect(page).toMatch(/<svg class="chart"[^>]*role="img"[^>]*aria-labelledby="chart-\d+-t chart-\d+-d"/);
    expect(page).toMatch(/<title id="chart-\d+-t">First response by tier<\/title><desc id="chart-\d+-d">\w+: median /);
    for (const row of rep.byTier) expect(t).toMatch(new RegExp(`${row.key} ${row.tickets} ${row.open} `));
    expect(t).toMatch(/VIP desk \d+ \d+ /);
    // Staleness: counts per field and the fields to fix first.
    const st = rep.staleness;
    expect(t).toContain(`${st.routedOnMissingData} tickets`);
    expect(t).toMatch(new RegExp(`tier ${st.missing.tier} ${st.invalid.tier}`));
    expect(t).toMatch(/Fix tier, language, lifetimeValue on the CRM records first|Fix \w+, \w+, \w+ on the CRM records first/);
  });

  it('limits the period and pages the agent table', async () => {
    const c = await setupConsole({ seed: 300 });
    const today = visible(await (await c.get('/performance?period=1')).text());
    const n = (await c.store.tickets()).filter((x) => x.routedAt! >= Date.UTC(2026, 10, 2)).length;
    expect(today).toContain(`Tickets routed ${n}`);
    const many = await setupConsole({
      seed: 200,
      config: {
        ...SAMPLE_CONFIG,
        queues: SAMPLE_CONFIG.queues.map((q) => (q.id === 'general' ? { ...q, agents: [...(q.agents ?? []), ...Array.from({ length: 30 }, (_, i) => `extra${i}`)] } : q)),
        agents: [...SAMPLE_CONFIG.agents, ...Array.from({ length: 30 }, (_, i) => ({ id: `extra${i}`, name: `Extra ${i}`, capacity: 1 }))],
      },
    });
    const p1 = await (await many.get('/performance?period=all')).text();
    expect(p1).toMatch(/Page 1 of 2/);
    expect(p1).toContain('href="/performance?period=all&amp;agents=2#agent-h" rel="next"');
    expect((await many.get('/performance?period=all&agents=2')).status).toBe(200);
  });

  it('says what to do when there is nothing to measure', async () => {
    const c = await setupConsole();
    expect(await text(await c.get('/performance'))).toMatch(/No routed tickets in this period\. Pick a longer period/);
  });
});

describe('configuration', () => {
  it('shows the sections of the configuration in force and its versions', async () => {
    const c = await setupConsole();
    const page = await (await c.get('/config')).text();
    expect(page).toMatch(/<label for="field-rules">rules<\/label>/);
    expect(page).toMatch(/<textarea id="field-rules" name="rules"[^>]*aria-describedby="help-rules"/);
    expect(page).toContain('&quot;id&quot;: &quot;enterprise&quot;');
    expect(visible(page)).toMatch(/Version 1 is in force/);
  });

  it('points each problem at its field: JSON syntax with line and column, and validation paths with the item id', async () => {
    const c = await setupConsole();
    const cur = (await c.store.getConfig())!.config;
    const sections = { tiering: JSON.stringify(cur.tiering), rules: JSON.stringify(cur.rules, null, 2), defaultQueue: cur.defaultQueue, queues: JSON.stringify(cur.queues), agents: JSON.stringify(cur.agents), groups: JSON.stringify(cur.groups) };

    const syntax = await c.post('/config', { ...sections, agents: '[\n  {"id": "x",,}\n]', action: 'save' });
    expect(syntax.status).toBe(422);
    const sp = await syntax.text();
    expect(sp).toMatch(/<textarea id="field-agents" name="agents"[^>]*aria-describedby="help-agents err-agents" aria-invalid="true"/);
    expect(visible(sp)).toMatch(/agents: not valid JSON at line 2, column \d+/);

    const rules = structuredClone(cur.rules);
    rules[4]!.queue = 'nowhere';
    const bad = await c.post('/config', { ...sections, rules: JSON.stringify(rules, null, 2), defaultQueue: 'missing-q', action: 'save' });
    expect(bad.status).toBe(422);
    const bp = visible(await bad.text());
    expect(bp).toMatch(/2 problems to fix; nothing was saved/);
    expect(bp).toMatch(/rules\[4\] \(id "billing"\) → queue: unknown queue "nowhere"/);
    expect(bp).toMatch(/defaultQueue: unknown queue "missing-q"/);
    expect((await c.store.getConfig())!.version).toBe(1);
  });

  it('checks without saving, saves a new version, and rolls back to an earlier one', async () => {
    const c = await setupConsole();
    const cur = (await c.store.getConfig())!.config;
    const rules = cur.rules.filter((r) => r.id !== 'german');
    const sections = { tiering: JSON.stringify(cur.tiering), rules: JSON.stringify(rules), defaultQueue: cur.defaultQueue, queues: JSON.stringify(cur.queues), agents: JSON.stringify(cur.agents), groups: JSON.stringify(cur.groups) };
    const check = await c.post('/config', { ...sections, action: 'validate' });
    expect(check.status).toBe(200);
    expect(visible(await check.text())).toMatch(/The draft is valid\. It is not saved yet\./);
    expect((await c.store.getConfig())!.version).toBe(1);

    const save = await c.post('/config', { ...sections, action: 'save', note: 'drop the German rule' });
    expect(save.status).toBe(303);
    expect(save.headers.get('location')).toBe('/config?saved=2');
    const v2 = (await c.store.getConfig())!;
    expect(v2).toMatchObject({ version: 2, author: 'console:admin', note: 'drop the German rule' });
    expect(v2.config.rules.map((r) => r.id)).not.toContain('german');
    expect(visible(await (await c.get('/config?saved=2')).text())).toMatch(/Saved version 2; new tickets route with it now\./);

    const view = await c.get('/config/versions/1');
    expect(visible(await view.text())).toMatch(/Version 1 .* Roll back to version 1/);
    expect((await c.get('/config/versions/99')).status).toBe(404);

    const back = await c.post('/config/rollback', { version: '1' });
    expect(back.headers.get('location')).toBe('/config?saved=3&rolledBack=1');
    const v3 = (await c.store.getConfig())!;
    expect(v3).toMatchObject({ version: 3, note: 'rollback to version 1' });
    expect(v3.config.rules.map((r) => r.id)).toContain('german');
    expect(visible(await (await c.get('/config?saved=3&rolledBack=1')).text())).toMatch(/Rolled back: version 1 is in force again, saved as version 3\./);
    const missing = await c.post('/config/rollback', { version: '42' });
    expect(missing.status).toBe(404);
    expect(visible(await missing.text())).toMatch(/No configuration version 42/);
  });

  it('edits field mappings per CRM account, with the connector\'s validation message at the field', async () => {
    const c = await setupConsole();
    const page = await (await c.get('/config/mappings')).text();
    expect(visible(page)).toMatch(/HubSpot Portal 4242 Mapping \(JSON\)/);
    expect(page).toContain('&quot;tier&quot;: &quot;tierline_tier&quot;');
    const bad = await c.post('/config/mappings', { crm: 'hubspot', account: '4242', mapping: JSON.stringify({ tier: '' , lifetimeValue: 'x' }) });
    expect(bad.status).toBe(422);
    const bt = await bad.text();
    expect(visible(bt)).toMatch(/was not saved: mapping field "tier": Too small/);
    expect(bt).toMatch(/aria-invalid="true" aria-describedby="map-hubspot-4242-err"/);
    const ok = await c.post('/config/mappings', { crm: 'hubspot', account: '4242', mapping: JSON.stringify({ tier: 'customer_tier', lifetimeValue: 'ltv' }) });
    expect(ok.status).toBe(303);
    expect(c.mappings.hubspot!.saved.get('4242')).toEqual({ tier: 'customer_tier', lifetimeValue: 'ltv' });
    // Each save is a version; an earlier one (0 = the mapping before the first change) can be made current again.
    const versions = visible(await (await c.get('/config/mappings')).text());
    expect(versions).toMatch(/Versions of this mapping \(2\).*Version Saved By Note Actions 1 in force .* console saved in the console – 0 .* tierline in force before the first change Roll back to version 0/);
    const back = await c.post('/config/mappings/rollback', { crm: 'hubspot', account: '4242', version: '0' });
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toBe('/config/mappings?saved=hubspot%204242&rolledBack=0');
    expect(c.mappings.hubspot!.saved.get('4242')).toMatchObject({ tier: 'tierline_tier' });
    expect(visible(await (await c.get(back.headers.get('location')!)).text())).toMatch(/Rolled back the mapping for hubspot 4242: version 0 is in force again, saved as a new version\..*Versions of this mapping \(3\)/);
    const gone = await c.post('/config/mappings/rollback', { crm: 'hubspot', account: '4242', version: '9' });
    expect(gone.status).toBe(404);
    expect(visible(await gone.text())).toMatch(/was not rolled back: Mapping version 9 of 4242 is not kept/);
    const added = await c.post('/config/mappings', { crm: 'hubspot', account: '777', mapping: JSON.stringify({ tier: 't', lifetimeValue: 'l' }) });
    expect(added.status).toBe(303);
    expect(visible(await (await c.get('/config/mappings?saved=hubspot%20777')).text())).toMatch(/Saved the mapping for hubspot 777\. .*Portal 777/);
    const none = await setupConsole({ mappings: false });
    expect(visible(await (await none.get('/config/mappings')).text())).toMatch(/No CRM connector is configured\. Connect HubSpot or connect Salesforce to start\./);
  });
});

describe('what-if replay', () => {
  it('replays recent tickets with a draft: queue moves, load per agent against capacity, changed agents with both explanations', async () => {
    const c = await setupConsole({ seed: 300 });
    const cur = (await c.store.getConfig())!.config;
    const sections = (rules: unknown) => ({ tiering: JSON.stringify(cur.tiering), rules: JSON.stringify(rules), defaultQueue: cur.defaultQueue, queues: JSON.stringify(cur.queues), agents: JSON.stringify(cur.agents), groups: JSON.stringify(cur.groups), days: '7' });

    const same = await c.post('/replay', sections(cur.rules));
    expect(same.status).toBe(200);
    const st = visible(await same.text());
    expect(st).toMatch(/Result: 300 tickets from the last 7 days/);
    expect(st).toMatch(/Would move queue 0 Would change agent 0/);
    expect(st).toMatch(/No ticket would change queue\./);

    const billingToGeneral = cur.rules.filter((r) => r.id !== 'billing');
    const moved = await c.post('/replay', sections(billingToGeneral));
    const page = await moved.text();
    const t = visible(page);
    const m = /Would move queue (\d+) Would change agent (\d+)/.exec(t)!;
    expect(Number(m[1])).toBeGreaterThan(0);
    // Billing tickets go to the default queue, except German ones, which the German rule now catches.
    const moves = [...t.matchAll(/Billing (General|DACH) (\d+)/g)].map((x) => [x[1], Number(x[2])] as const);
    expect(moves.map(([q]) => q).sort()).toEqual(['DACH', 'General']);
    expect(moves.reduce((n, [, k]) => n + k, 0)).toBe(Number(m[1]));
    expect(t).toMatch(new RegExp(`Billing ${m[1]} 0 -${m[1]}`));
    expect(t).toMatch(/Projected load per agent .*Hana Novak 8 \d+ \d+ \d+ \d+ \d+/);
    expect(t).toMatch(/Tickets that would change agent/);
    expect(page).toMatch(/<div class="side"><div><h4>Version 1 \(in force\), replayed<\/h4><p><strong>[^<]+<\/strong><\/p><ul class="lines">[\s\S]*?<\/div><div><h4>With the draft<\/h4>/);
    // Nothing was saved by the replay; the result offers to save the draft.
    expect((await c.store.getConfig())!.version).toBe(1);
    expect(page).toMatch(/<form method="post" action="\/config" class="actions">[\s\S]*name="rules" value="\[/);
  });

  it('shows draft problems at their fields instead of running', async () => {
    const c = await setupConsole({ seed: 10 });
    const r = await c.post('/replay', { tiering: '{}', rules: '[]', defaultQueue: 'nowhere', queues: '[]', agents: '[]', groups: '[]', days: '3' });
    expect(r.status).toBe(422);
    expect(visible(await r.text())).toMatch(/queues: Too small: expected array to have >=1 items|queues: .*1/);
  });

  it('says what to do when there are no recent tickets', async () => {
    const c = await setupConsole();
    const cur = (await c.store.getConfig())!.config;
    const r = await c.post('/replay', { tiering: JSON.stringify(cur.tiering), rules: JSON.stringify(cur.rules), defaultQueue: cur.defaultQueue, queues: JSON.stringify(cur.queues), agents: JSON.stringify(cur.agents), groups: JSON.stringify(cur.groups), days: '7' });
    expect(visible(await r.text())).toMatch(/No routed tickets in the last 7 days to replay\./);
    expect(visible(await (await c.get('/replay')).text())).toMatch(/What-if replay .*Run what-if/);
  });
});

describe('sandbox forum', () => {
  it('is an empty state that explains itself when Telegram is real', async () => {
    const c = await setupConsole();
    expect(await text(await c.get('/forum'))).toMatch(/Telegram is connected for real, so there is no simulated forum\./);
    expect(await (await c.get('/')).text()).not.toContain('href="/forum"');
  });

  it('lets a person act as the agent: reply (first response lands in history), go away, close the topic (resolved)', async () => {
    const c = await setupConsole({ forum: true });
    expect(await (await c.get('/')).text()).toContain('href="/forum"');
    const ref = c.h.crm.add('f1', { tier: 'enterprise' }, 'Forum ticket');
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'f1', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    const tk = (await c.store.getTicket(ticketKey(ref)))!;
    const list = await (await c.get('/forum')).text();
    const link = `/forum/topic?group=${tk.topic!.groupId}&amp;topic=${tk.topic!.topicId}`;
    expect(list).toContain(link);
    const topic = await (await c.get(link.replace('&amp;', '&'))).text();
    const assignee = SAMPLE_CONFIG.agents.find((a) => a.id === tk.agentId)!;
    expect(topic).toMatch(new RegExp(`<option value="${assignee.telegramUserId}" selected>${assignee.name} \\(assigned\\)</option>`));
    expect(visible(topic)).toMatch(/Tierline .* pinned/);

    c.clock.advance(4 * 60_000);
    const reply = await c.post('/forum/reply', { group: tk.topic!.groupId, topic: String(tk.topic!.topicId), user: assignee.telegramUserId!, text: 'Hello from the console' });
    expect(reply.status).toBe(303);
    expect(new URL(reply.headers.get('location')!, 'http://x').searchParams.get('done')).toMatch(/Reply sent/);
    expect(c.forum!.replies).toEqual([{ user: assignee.telegramUserId, text: 'Hello from the console' }]);
    const hist = visible(await (await c.get(`/history?ticket=${encodeURIComponent(tk.key)}`)).text());
    expect(hist).toMatch(/first reply First reply after 4\.0 min; SLA met .* 4 min/);
    // The CRM record got the first-response time too.
    expect(c.h.crm.writes.at(-1)!.fields.firstResponseMinutes).toBe(4);

    // Quick command button: its value wins over the textarea.
    const away = await c.app.request('/forum/reply', { method: 'POST', headers: c.formHeaders(c.session.cookie), body: `_csrf=${encodeURIComponent(c.session.csrf)}&group=${tk.topic!.groupId}&topic=${tk.topic!.topicId}&user=${assignee.telegramUserId}&text=typed+text&text=%2Faway` });
    expect(away.status).toBe(303);
    expect(c.forum!.replies.at(-1)).toEqual({ user: assignee.telegramUserId, text: '/away' });
    expect((await c.store.counters()).status[assignee.id]).toBe('away');

    const close = await c.post('/forum/close', { group: tk.topic!.groupId, topic: String(tk.topic!.topicId), user: assignee.telegramUserId! });
    expect(close.status).toBe(303);
    expect((await c.store.getTicket(tk.key))!.status).toBe('resolved');

    const presence = await c.post('/forum/presence', { user: '7000000009', online: '0' });
    expect(new URL(presence.headers.get('location')!, 'http://x').searchParams.get('done')).toMatch(/Ivan Petrov is now offline/);
    expect((await c.get('/forum/topic?group=vip&topic=999999')).status).toBe(404);
  });
});

describe('dead letters', () => {
  it('lists failed steps with error and payload summary, and retries one or all', async () => {
    const c = await setupConsole();
    expect(await text(await c.get('/dead-letters'))).toMatch(/No dead letters\. Every step has succeeded/);
    const ref = c.h.crm.add('gone', { tier: 'free' });
    // A missing CRM record will not fix itself: the step is a dead letter after one attempt.
    c.h.crm.failNext(new AppError('not_found', 'Ticket gone was deleted in HubSpot.'));
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'g', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    const dead = await c.store.deadJobs();
    expect(dead).toHaveLength(1);
    const page = await (await c.get('/dead-letters')).text();
    const t = visible(page);
    expect(t).toMatch(/route read the CRM record and route hubspot:42:gone 1 not_found: Ticket gone was deleted in HubSpot\./);
    expect(t).toMatch(/ref: \{"crm":"hubspot","account":"42","ticketId":"gone"\} · reason: created/);
    const r = await c.post('/dead-letters/retry', { id: dead[0]!.id });
    expect(r.headers.get('location')).toBe('/dead-letters?retried=1');
    expect(await c.store.deadJobs()).toHaveLength(0);
    expect(await c.store.pendingJobs()).toBe(1);
    const again = await c.post('/dead-letters/retry', { id: dead[0]!.id });
    expect(again.headers.get('location')).toBe('/dead-letters?missing=1');
    expect(await text(await c.get('/dead-letters?missing=1'))).toMatch(/no longer a dead letter/);
  });
});
