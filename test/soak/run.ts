// Soak: the sandbox service (a separate process on the lowdb store) at a steady ticket rate for a long time, with a
// share of upstream calls failing, agents resolving every ticket in Telegram as it arrives. Samples the service's
// resident memory and its data directory, says whether they are flat after warm-up, and checks at the end that no
// ticket was lost (each routed, written back to its CRM record and resolved) and none duplicated (one topic, one
// 'routed' and one 'resolved' history entry, and on a sample, one CRM history row per entry).
//
//   npm run soak -- [--minutes 30] [--rate 50] [--faults 0.01] [--retention-minutes 5] [--sample-seconds 10] [--store lowdb|postgres]
//
// --store postgres: the service on PostgreSQL (TIERLINE_TEST_DATABASE_URL, or a throwaway cluster with production
// durability), which keeps no per-ticket state in the process; the database grows with the audit trail by design
// and is reported per ticket, not judged flat.
// --retention-minutes: how long resolved tickets stay in the live file (the service default is 60), the longest the
// connectors' idempotency records of finished work are kept (default a day), the dedupe window (seven days) and the
// retention window of history and closed tickets (RETENTION_DAYS, 400); shorter lets a run reach its steady state
// sooner. Warm-up is that long plus a minute (at most half the run). The history files keep a whole UTC day (a file
// goes once its day has left the window); they are reported as bytes per ticket, not judged flat.
import { spawn } from 'node:child_process';
import { START_FLAGS } from '../bench/start-flags.ts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { isCompactionFile, openLowdbStore } from '../../server/storage/lowdb-store.ts';
import { openPostgresStore } from '../../server/storage/postgres/postgres-store.ts';
import { postgresSkipReason, startTestPostgres } from '../setup/postgres.ts';
import { agentByName, hubspotTicket, outboxDepth, retryOutbound, salesforceCase, sleep, startWorld, type Sent } from '../e2e/harness.ts';
import type { SoakServiceOptions } from './service.ts';

const { values: args } = parseArgs({ options: { minutes: { type: 'string', default: '30' }, rate: { type: 'string', default: '50' }, faults: { type: 'string', default: '0.01' }, 'retention-minutes': { type: 'string', default: '5' }, 'sample-seconds': { type: 'string', default: '10' }, store: { type: 'string', default: 'lowdb' } } });
if (args.store !== 'lowdb' && args.store !== 'postgres') throw new Error(`--store must be lowdb or postgres, not ${args.store}`);
const onPostgres = args.store === 'postgres';
const minutes = Number(args.minutes);
const rate = Number(args.rate);
const faultShare = Number(args.faults);
const retentionMin = Number(args['retention-minutes']);
const sampleMs = Number(args['sample-seconds']) * 1000;
const warmupMs = Math.min((retentionMin + 1) * 60_000, (minutes * 60_000) / 2);
const say = (s: string) => process.stdout.write(`${s}\n`);
{
  // The final check reads every ticket's history from the store's dated files, one per UTC day. The retention window
  // deletes a day's file soon after midnight; a run that crosses it would report that day's tickets as lost.
  const end = Date.now() + minutes * 60_000 + Math.max(300_000, minutes * 20_000);
  if (!onPostgres && new Date(end).toISOString().slice(0, 10) !== new Date().toISOString().slice(0, 10)) {
    throw new Error(`this run could end after midnight UTC, when the ${retentionMin}-minute retention window deletes today's history file that the final check reads; start it after 00:00 UTC or pass a smaller --minutes`);
  }
}
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;

async function rssOf(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Bytes in the data directory: the live file and the log (what the store holds), the files that exist only while a
 * compaction runs (the next live file being written, the previous log until the new live file is in place: a sample
 * that lands in one counts the state twice, so they are reported, not judged), and the dated history files.
 */
async function sizes(dir: string): Promise<{ live: number; compacting: number; history: number }> {
  let live = 0;
  let compacting = 0;
  let history = 0;
  const walk = async (d: string, top: boolean): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, false);
      else {
        const n = (await stat(p).catch(() => ({ size: 0 }))).size;
        if (!top) history += n;
        else if (isCompactionFile(e.name)) compacting += n;
        else live += n;
      }
    }
  };
  await walk(dir, true);
  return { live, compacting, history };
}

/** Flat: the second half of the post-warm-up samples peaks no more than 20% above the first half's peak. */
function flatness(xs: number[]): { first: number; second: number; growthPct: number; flat: boolean } {
  const half = Math.floor(xs.length / 2);
  const first = Math.max(...xs.slice(0, half));
  const second = Math.max(...xs.slice(half));
  const growthPct = Math.round(((second - first) / first) * 1000) / 10;
  return { first, second, growthPct, flat: xs.length >= 4 && growthPct <= 20 };
}

const world = await startWorld();
world.salesforce.setLimit(0, 1e12);
const dataDir = await mkdtemp(join(tmpdir(), 'tierline-soak-'));
if (onPostgres && postgresSkipReason) throw new Error(`--store postgres: ${postgresSkipReason}`);
const cluster = onPostgres ? await startTestPostgres({ durable: true }) : null;
const databaseUrl = cluster ? await cluster.createDatabase() : undefined;
const opts: SoakServiceOptions = { dataDir, publicUrl: world.lb.url, adminToken: randomBytes(18).toString('hex'), secretsKey: randomBytes(32).toString('base64'), external: world.external, closedTicketRetentionMs: retentionMin * 60_000, ...(databaseUrl ? { databaseUrl } : {}) };
const child = spawn(process.execPath, [...START_FLAGS, fileURLToPath(new URL('./service.ts', import.meta.url)), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
let childErr = '';
child.stderr!.setEncoding('utf8').on('data', (d: string) => void (childErr = (childErr + d).slice(-20_000)));
let heap = { heapUsed: NaN, heapTotal: NaN, external: NaN, arrayBuffers: NaN };
const serviceUrl = await new Promise<string>((ok, fail) => {
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const m = /ready (\S+)\n/.exec(out);
    if (m) ok(m[1]!);
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) if (l.startsWith('mem ')) heap = JSON.parse(l.slice(4)) as typeof heap;
    if (m) out = '';
  });
  child.on('exit', (code) => fail(new Error(`service exited (${code}) before it was ready:\n${childErr.slice(-3000)}`)));
});
world.lb.add('soak', serviceUrl);
say(`soak: ${minutes} min at ${rate} tickets/s, ${faultShare * 100}% upstream faults, closed tickets kept ${retentionMin} min, warm-up ${Math.round(warmupMs / 6000) / 10} min; service pid ${child.pid}, data ${dataDir}`);

// ------------------------------------------------------------------ load, faults, agents, samples
const sent: Sent[] = [];
const failures: string[] = [];
let created = 0;
let inFlight = 0;
let loading = true;
const started = Date.now();
const outbound = retryOutbound(world, 1_000);
const load = (async () => {
  while (loading) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    while (created < due && inFlight < 500) {
      const n = ++created;
      inFlight++;
      const subject = `Soak #${n}`;
      const p = n % 2 ? hubspotTicket(world, n, subject, () => !loading && Date.now() - started > minutes * 60_000 + 300_000) : salesforceCase(world, n, subject);
      p.then((s) => void sent.push(s), (e: unknown) => void failures.push(`${subject}: ${e instanceof Error ? e.message : String(e)}`)).finally(() => inFlight--);
    }
    await sleep(20);
  }
})();

const faults: Record<string, number> = {};
const kinds = ['hubspot 5xx', 'hubspot 429', 'salesforce SERVER_UNAVAILABLE', 'salesforce REQUEST_LIMIT_EXCEEDED', 'telegram FLOOD_WAIT'] as const;
let k = 0;
// About three upstream calls per ticket: faultShare of them fail, spread evenly in time.
const faultEveryMs = faultShare > 0 ? 1000 / (rate * 3 * faultShare) : Infinity;
const faultTimer = Number.isFinite(faultEveryMs)
  ? setInterval(() => {
      const kind = kinds[k++ % kinds.length]!;
      if (kind === 'hubspot 5xx') world.hubspot.inject5xx(1, { status: 503 });
      else if (kind === 'hubspot 429') world.hubspot.inject429(1, { policyName: 'TEN_SECONDLY_ROLLING', retryAfterSec: 1 });
      else if (kind === 'salesforce SERVER_UNAVAILABLE') world.salesforce.injectError('SERVER_UNAVAILABLE', 1);
      else if (kind === 'salesforce REQUEST_LIMIT_EXCEEDED') world.salesforce.injectError('REQUEST_LIMIT_EXCEEDED', 1);
      else world.telegram.injectError({ method: 'messages.SendMessage', error: 'FLOOD_WAIT_2', times: 1 });
      faults[kind] = (faults[kind] ?? 0) + 1;
    }, faultEveryMs)
  : null;

// Agents: the assignee resolves each ticket as soon as its card is pinned in the topic.
let seenTopics = 0;
const waiting: { channelId: string; topicId: number }[] = [];
let resolvedByAgents = 0;
let agentsOn = true;
const agents = (async () => {
  while (agentsOn) {
    const all = world.telegram.topicCreations();
    for (const t of all.slice(seenTopics)) waiting.push({ channelId: t.channelId, topicId: t.topicId });
    seenTopics = all.length;
    for (let i = 0; i < waiting.length; ) {
      const w = waiting[i]!;
      const card = world.telegram.messages(w.channelId, w.topicId, 10).find((m) => m.pinned);
      if (!card) {
        i++;
        continue;
      }
      const assignee = [...agentByName].find(([name]) => card.text.includes(`Assigned to ${name}`))?.[1] ?? agentByName.get('Ivan Petrov')!;
      await world.telegram.reply(w.channelId, w.topicId, assignee, '/resolve').catch(() => undefined);
      resolvedByAgents++;
      waiting.splice(i, 1);
    }
    await sleep(250);
  }
})();

type Sample = { at: number; rss: number; heapUsed: number; live: number; compacting: number; history: number; created: number; outbox: number | null };
const samples: Sample[] = [];
const dbSize = async (): Promise<number> => {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]!.n);
  } finally {
    await c.end();
  }
};
const sample = async () => {
  // On PostgreSQL everything is in the database: reported as history (it grows with the audit trail), nothing as live.
  const s = databaseUrl ? { live: 0, compacting: 0, history: await dbSize() } : await sizes(dataDir);
  const x: Sample = { at: Date.now() - started, rss: await rssOf(child.pid!), heapUsed: heap.heapUsed, live: s.live, compacting: s.compacting, history: s.history, created, outbox: await outboxDepth(serviceUrl) };
  samples.push(x);
  say(`  t=${Math.round(x.at / 1000)}s tickets=${created} rss=${mb(x.rss)}MB heap=${mb(x.heapUsed)}MB live+log=${mb(x.live)}MB${x.compacting ? ` (+${mb(x.compacting)}MB compacting)` : ''} history=${mb(x.history)}MB outbox=${x.outbox ?? '?'} resolved=${resolvedByAgents}`);
};
const sampler = setInterval(() => void sample(), sampleMs);

await sleep(minutes * 60_000);
loading = false;
if (faultTimer) clearInterval(faultTimer);
await load;
while (inFlight > 0) await sleep(100);
const loadSeconds = (Date.now() - started) / 1000;
say(`load done: ${created} tickets in ${Math.round(loadSeconds)} s (${Math.round((created / loadSeconds) * 10) / 10}/s); settling`);

// ------------------------------------------------------------------ settle, stop, check
const settleUntil = Date.now() + Math.max(300_000, minutes * 20_000);
let settled = true;
for (;;) {
  const depth = await outboxDepth(serviceUrl);
  if (depth === 0 && waiting.length === 0 && outbound.pending() === 0 && seenTopics >= sent.length) break;
  if (Date.now() > settleUntil) {
    say(`settle timed out: outbox ${depth}, topics waiting for their card ${waiting.length}, outbound pending ${outbound.pending()}`);
    settled = false;
    break;
  }
  await sleep(500);
}
clearInterval(sampler);
agentsOn = false;
await agents;
outbound.stop();
await sample();
child.kill('SIGTERM');
await new Promise((ok) => child.on('exit', ok));

const store = databaseUrl ? await openPostgresStore({ url: databaseUrl }) : await openLowdbStore({ dir: dataDir, clock: { now: () => Date.now() } });
const count = async (kind: 'routed' | 'resolved') => {
  const per = new Map<string, number>();
  for (let offset = 0; ; offset += 5000) {
    const page = await store.history({ kind, offset, limit: 5000 });
    for (const e of page.entries) per.set(e.ticketKey, (per.get(e.ticketKey) ?? 0) + 1);
    if (page.entries.length < 5000) break;
  }
  return per;
};
const routed = await count('routed');
const resolved = await count('resolved');
const dead = await store.deadJobs();
const topics = new Map<string, number>();
for (const t of world.telegram.topicCreations()) {
  const m = /Soak #\d+/.exec(t.title);
  if (m) topics.set(m[0], (topics.get(m[0]) ?? 0) + 1);
}
const keyOf = (s: Sent) => (s.crm === 'hubspot' ? `hubspot:${world.hubspot.portalId}:${s.id}` : `salesforce:${world.salesforce.orgId}:${s.id}`);
const lost: string[] = [];
const duplicated: string[] = [];
for (const s of sent) {
  const key = keyOf(s);
  const link = s.crm === 'hubspot' ? world.hubspot.ticket(s.id)?.properties.tierline_topic_link : world.salesforce.case(s.id)?.Tierline_Topic_Link__c;
  if (!routed.get(key) || !link || !resolved.get(key)) lost.push(`${s.subject} (${key}): routed ${routed.get(key) ?? 0}, link ${link ? 'yes' : 'no'}, resolved ${resolved.get(key) ?? 0}`);
  if ((routed.get(key) ?? 0) > 1 || (resolved.get(key) ?? 0) > 1 || (topics.get(s.subject) ?? 0) > 1) duplicated.push(`${s.subject}: routed ${routed.get(key)}, resolved ${resolved.get(key)}, topics ${topics.get(s.subject)}`);
}
// CRM history rows on a sample: one row per written-back entry, no more.
const crmProblems: string[] = [];
const sampleSet = sent.filter((_, i) => i % Math.max(1, Math.floor(sent.length / 300)) === 0);
for (const s of sampleSet) {
  const entries = (await store.history({ ticketKey: keyOf(s), limit: 100 })).entries.filter((e) => e.kind !== 'sla_warning');
  const rows = s.crm === 'hubspot' ? (world.hubspot.ticket(s.id)?.notes.length ?? 0) : world.salesforce.routingEvents(s.id).length;
  if (rows !== entries.length) crmProblems.push(`${s.subject}: ${rows} CRM history rows for ${entries.length} entries`);
}
await store.close();

const after = samples.filter((x) => x.at >= warmupMs && x.at <= minutes * 60_000);
const rss = flatness(after.map((x) => x.rss));
const live = flatness(after.map((x) => x.live));
const heapFlat = flatness(after.map((x) => x.heapUsed));
const last = samples.at(-1)!;
const report = {
  minutes,
  targetRate: rate,
  achievedRate: Math.round((created / loadSeconds) * 10) / 10,
  ticketsCreated: created,
  ticketsAcknowledged: sent.length,
  intakeFailures: failures.length,
  faultsInjected: Object.values(faults).reduce((a, b) => a + b, 0),
  faultsByKind: faults,
  ticketsRouted: routed.size,
  ticketsResolved: resolved.size,
  // Without a settled run, "lost" counts tickets still unfinished (routed or not) when the settle window closed.
  settled,
  settleSeconds: Math.round((Date.now() - started) / 1000 - loadSeconds),
  lost: lost.length,
  duplicated: duplicated.length,
  crmSampleChecked: sampleSet.length,
  crmSampleProblems: crmProblems.length,
  deadLetters: dead.length,
  samplesAfterWarmup: after.length,
  rssMB: { atWarmupEndPeak: mb(rss.first), lastHalfPeak: mb(rss.second), growthPct: rss.growthPct, flat: rss.flat, final: mb(last.rss) },
  heapUsedMB: { firstHalfPeak: mb(heapFlat.first), lastHalfPeak: mb(heapFlat.second), growthPct: heapFlat.growthPct, final: mb(last.heapUsed) },
  outboxPeak: Math.max(...samples.map((x) => x.outbox ?? 0)),
  store: args.store,
  ...(onPostgres
    ? { databaseMB: mb(last.history), databaseBytesPerTicket: Math.round(last.history / Math.max(1, routed.size)) }
    : { liveFileAndLogMB: { firstHalfPeak: mb(live.first), lastHalfPeak: mb(live.second), growthPct: live.growthPct, flat: live.flat }, peakWhileCompactingMB: mb(Math.max(...after.map((x) => x.live + x.compacting))), historyFilesMB: mb(last.history), historyBytesPerTicket: Math.round(last.history / Math.max(1, routed.size)) }),
};
say(JSON.stringify(report, null, 2));
for (const x of [...failures.slice(0, 5), ...lost.slice(0, 10), ...duplicated.slice(0, 10), ...crmProblems.slice(0, 10), ...dead.slice(0, 5).map((d) => `dead letter ${d.id}: ${d.lastError}`)]) say(`  ${x}`);
await world.close();
await rm(dataDir, { recursive: true, force: true });
await cluster?.stop();
const ok = settled && failures.length === 0 && lost.length === 0 && duplicated.length === 0 && crmProblems.length === 0 && dead.length === 0 && rss.flat && (onPostgres || live.flat);
say(ok ? 'soak: PASS (nothing lost, nothing duplicated, memory and live files flat after warm-up)' : `soak: FAIL (${settled ? 'see above' : 'the backlog did not drain within the settle window: the service did not keep up with the rate'})`);
process.exit(ok ? 0 : 1);
