// The service as it runs: `npm start` in sandbox mode, in a process of its own (service-proc.ts), measured from outside;
// the sandboxes it talks to live in this process.
//  1. Webhook acknowledgement: a second process (load-worker.ts) sends signed HubSpot deliveries at a fixed rate
//     (open loop) for a fixed time; we report latency percentiles and check that every event was stored.
//  2. End to end with sandbox upstreams that add latency to every call (100 ms by default): for tickets created in the
//     HubSpot and Salesforce sandboxes, the time from the webhook leaving the CRM to the agent's card in the Telegram
//     topic AND the outcome on the CRM record; and the service's own share of it (storing the webhook's events, plus
//     each step's time not spent waiting on an upstream call, plus the time a step sat due before it was claimed).
//  3. The service process's resident memory, sampled throughout (from /proc, as `ps` shows it).
import { spawn, type ChildProcess } from 'node:child_process';
import { START_FLAGS } from './start-flags.ts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHubspotSandbox, type HubspotSandbox } from '../../connectors/hubspot/sandbox/index.ts';
import { startSalesforceSandbox, type SalesforceSandbox } from '../../connectors/salesforce/sandbox/index.ts';
import { createTelegramSandbox, type TelegramSandbox } from '../../connectors/telegram/sandbox/index.ts';
import { serveTelegramSandbox } from '../../connectors/telegram/sandbox/remote.ts';
import type { TicketTiming } from '../../server/step-timing.ts';
import { freePort } from '../setup/ports.ts';
import type { BenchServiceOptions } from './service-proc.ts';

export type E2eOptions = { rate?: number; seconds?: number; tickets?: number; intervalMs?: number; latencyMs?: number };

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : NaN);
const r2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SERVICE = fileURLToPath(new URL('./service-proc.ts', import.meta.url));
/** TIERLINE_BENCH_SERVICE_FLAGS: extra Node flags for the service process only, to look inside a run (--trace-gc, --cpu-prof). */
const debugFlags = () => (process.env.TIERLINE_BENCH_SERVICE_FLAGS ?? '').split(/\s+/).filter(Boolean);

/** Resident memory of a process, from /proc (what the operator's `ps` shows as RSS). */
async function rssOf(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
  return m ? Number(m[1]) * 1024 : 0;
}

type Bench = {
  url: string;
  hubspot: HubspotSandbox;
  salesforce: SalesforceSandbox;
  forum: TelegramSandbox;
  /** The service process's peak resident memory since the bench started it (sampled every 100 ms). */
  peakRss(): number;
  timing(keys: string[]): Promise<Record<string, TicketTiming | null>>;
  routed(): Promise<number>;
};

/**
 * The sandboxes here (each call answered after latencyMs), the service in a child process pointed at them, as
 * `npm start` would run it with no credentials (the sandboxes' default limits, the connectors' default pacing).
 */
async function withService<T>(opts: { latencyMs?: number }, fn: (b: Bench) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tierline-bench-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const latency = opts.latencyMs ? { latencyMs: opts.latencyMs } : {};
  const clientSecret = randomBytes(16).toString('hex');
  const hubspot = await startHubspotSandbox({ clientSecret, webhookUrl: `${url}/webhooks/hubspot`, seed: true, ...latency });
  const salesforce = await startSalesforceSandbox({ outboundUrl: `${url}/webhooks/salesforce`, seed: true, ...latency });
  const forum = createTelegramSandbox({ seed: true });
  const telegram = await serveTelegramSandbox(forum, latency);
  const spec: BenchServiceOptions = {
    dataDir: dir,
    port,
    adminToken: randomBytes(18).toString('hex'),
    secretsKey: randomBytes(32).toString('base64'),
    external: { hubspot: { url: hubspot.url, accessToken: hubspot.accessToken, clientSecret }, salesforce: { url: salesforce.url, orgId: salesforce.orgId }, telegram: { url: telegram.url } },
  };
  const child: ChildProcess = spawn(process.execPath, [...START_FLAGS, ...debugFlags(), SERVICE, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-5_000);
    if (process.env.TIERLINE_BENCH_DEBUG) process.stderr.write(d);
  });
  let peak = 0;
  const sampler = setInterval(() => void rssOf(child.pid!).then((b) => (peak = Math.max(peak, b))), 100);
  let asked = 0;
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  child.on('message', (m: { id: number }) => waiting.get(m.id)?.(m as Record<string, unknown>));
  const ask = (q: { ask: 'timing'; keys: string[] } | { ask: 'routed' }) => new Promise<Record<string, unknown>>((ok) => {
    const id = ++asked;
    waiting.set(id, ok);
    child.send({ ...q, id });
  });
  try {
    await new Promise<void>((ok, fail) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        if (process.env.TIERLINE_BENCH_DEBUG) process.stderr.write(d);
        out += d;
        if (out.includes('ready ')) ok();
      });
      child.once('exit', (code) => fail(new Error(`the service exited (${code}) before it was ready:\n${err}`)));
    });
    return await fn({
      url,
      hubspot,
      salesforce,
      forum,
      peakRss: () => peak,
      timing: async (keys) => (await ask({ ask: 'timing', keys })).timing as Record<string, TicketTiming | null>,
      routed: async () => (await ask({ ask: 'routed' })).routed as number,
    });
  } finally {
    clearInterval(sampler);
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGTERM');
    await exited;
    await telegram.close();
    await hubspot.close();
    await salesforce.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function counter(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function ackBench(rate: number, seconds: number): Promise<Record<string, number | boolean>> {
  return withService({}, async (s) => {
    const hs = s.hubspot;
    // Every delivery has its own event id; each ticket gets eventsPerTicket events in a row, so new tickets arrive
    // at rate / eventsPerTicket per second and are routed (reading real sandbox records) while the load goes on.
    const warmupSeconds = 3;
    const eventsPerTicket = 20;
    const ticketIds: string[] = [];
    const needed = Math.ceil((rate * (seconds + warmupSeconds)) / eventsPerTicket);
    for (let i = 0; i < needed; i++) ticketIds.push((await hs.createTicket({ subject: `Load ticket ${i}`, notify: false })).id);
    const before = await (await fetch(`${s.url}/metrics`)).text();
    const spec = { url: s.url, publicUrl: s.url, rate, seconds, warmupSeconds, eventsPerTicket, secret: hs.clientSecret, portalId: Number(hs.portalId), appId: Number(hs.appId), ticketIds };
    const child = spawn(process.execPath, [new URL('./load-worker.ts', import.meta.url).pathname, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((ok, fail) => child.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`load worker exited with ${code}`)))));
    const load = JSON.parse(out) as { sent: number; warmup: number; ok: number; failed: number; statuses: Record<string, number>; errors: Record<string, number>; achievedRate: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
    if (load.failed) process.stderr.write(`ack bench: ${load.failed} deliveries not acknowledged: statuses ${JSON.stringify(load.statuses)}, errors ${JSON.stringify(load.errors)}\n`);
    const after = await (await fetch(`${s.url}/metrics`)).text();
    const received = counter(after, 'tierline_events_received_total', 'crm="hubspot"') - counter(before, 'tierline_events_received_total', 'crm="hubspot"');
    // Routed so far (the routing of the last tickets may still be running; their Telegram sends are paced).
    const routed = await s.routed();
    return {
      'e2e.ack.eventsSent': load.sent,
      'e2e.ack.warmupEvents': load.warmup,
      'e2e.ack.newTicketsPerSecond': rate / eventsPerTicket,
      'e2e.ack.eventsAcknowledged': load.ok,
      'e2e.ack.eventsNotAcknowledged': load.failed,
      'e2e.ack.eventsStored': received,
      'e2e.ack.noneLost': load.ok === load.sent && received === load.sent,
      'e2e.ack.ticketsRouted': routed,
      'e2e.ack.achievedPerSecond': load.achievedRate,
      'e2e.ack.p50Ms': load.p50Ms,
      'e2e.ack.p95Ms': load.p95Ms,
      'e2e.ack.p99Ms': load.p99Ms,
      'e2e.ack.maxMs': load.maxMs,
      'e2e.ack.peakRssMB': Math.round(s.peakRss() / 1e6),
    };
  });
}

async function latencyBench(tickets: number, intervalMs: number, latencyMs: number): Promise<Record<string, number | boolean>> {
  return withService({ latencyMs }, async (s) => {
    const hs = s.hubspot;
    const sf = s.salesforce;
    const forum = s.forum;
    type Probe = { key: string; t0: number; webhookMs: number; subject: string; notified?: number; updated?: number; crmUpdated: () => boolean };
    const probes: Probe[] = [];

    // Watch for the card (it carries the explanation) in any topic, and for the outcome on the CRM record.
    const seen = new Set<string>();
    const watcher = setInterval(() => {
      const now = performance.now();
      for (const g of forum.groups()) {
        for (const t of forum.topics(g.channelId)) {
          if (seen.has(`${g.channelId}:${t.topicId}`)) continue;
          const p = probes.find((x) => !x.notified && t.title.includes(x.subject));
          if (p && forum.messages(g.channelId, t.topicId).some((m) => m.text.includes('Why this ticket is here'))) {
            p.notified = now;
            seen.add(`${g.channelId}:${t.topicId}`);
          }
        }
      }
      for (const p of probes) if (!p.updated && p.crmUpdated()) p.updated = now;
    }, 5);

    // Two warm-up tickets (one per CRM) go first and are not counted: the first run of each path compiles it.
    const warmup = 2;
    for (let i = 0; i < tickets + warmup; i++) {
      const subject = `Bench ${i} ${Math.random().toString(36).slice(2, 8)}`;
      const t0 = performance.now();
      if (i % 2 === 0) {
        const t = await hs.createTicket({ subject });
        probes.push({ key: `hubspot:${hs.portalId}:${t.id}`, t0, webhookMs: performance.now() - t0, subject, crmUpdated: () => !!hs.ticket(t.id)?.properties.tierline_topic_link });
      } else {
        const c = await sf.createCase({ subject });
        probes.push({ key: `salesforce:${sf.orgId}:${c.id}`, t0, webhookMs: performance.now() - t0, subject, crmUpdated: () => !!sf.case(c.id)?.Tierline_Topic_Link__c });
      }
      await sleep(intervalMs);
    }
    const deadline = performance.now() + 60_000;
    while (probes.some((p) => !p.notified || !p.updated) && performance.now() < deadline) await sleep(20);
    clearInterval(watcher);

    probes.splice(0, warmup);
    const done = probes.filter((p) => p.notified && p.updated);
    const total = done.map((p) => Math.max(p.notified!, p.updated!) - p.t0);
    const timing = await s.timing(done.map((p) => p.key));
    const own = done.map((p) => {
      const t = timing[p.key];
      return t ? t.intakeMs + t.ownMs + t.pickupMs : NaN;
    });
    if (process.env.TIERLINE_BENCH_DEBUG) process.stderr.write((await (await fetch(`${s.url}/metrics`)).text()).split('\n').filter((l) => /^tierline_(rate_limit|upstream_errors|job_failures)/.test(l)).join('\n') + '\n');
    if (process.env.TIERLINE_BENCH_DEBUG) for (const p of done) process.stderr.write(JSON.stringify({ key: p.key, at: Math.round(performance.timeOrigin + p.t0), webhookMs: r2(p.webhookMs), total: r2(Math.max(p.notified!, p.updated!) - p.t0), ...timing[p.key] }) + '\n');
    return {
      'e2e.latency.upstreamLatencyMs': latencyMs,
      'e2e.latency.tickets': probes.length,
      'e2e.latency.completed': done.length,
      'e2e.latency.p50Ms': Math.round(pct(total, 0.5)),
      'e2e.latency.p95Ms': Math.round(pct(total, 0.95)),
      'e2e.latency.maxMs': Math.round(pct(total, 1)),
      'e2e.latency.ownShareP50Ms': r2(pct(own, 0.5)),
      'e2e.latency.ownShareP99Ms': r2(pct(own, 0.99)),
      'e2e.latency.peakRssMB': Math.round(s.peakRss() / 1e6),
    };
  });
}

export { ackBench, latencyBench };

export async function benchE2e(opts: E2eOptions = {}): Promise<Record<string, number | boolean>> {
  const ack = await ackBench(opts.rate ?? 500, opts.seconds ?? 60);
  // One ticket every 10 s keeps each forum group under Telegram's 20 sends a minute (a ticket is a topic, a card and a
  // pin: 18 a minute) even when every ticket lands in the same group, so this figure is the service's latency, not
  // Telegram's flood limit; at 8 s the seventh ticket in a minute waits ~13 s for its card, by design. Throttled
  // behaviour is measured by the Telegram burst bench.
  const latency = await latencyBench(opts.tickets ?? 24, opts.intervalMs ?? 10_000, opts.latencyMs ?? 100);
  return { ...ack, ...latency, 'e2e.peakRssMB': Math.max(Number(ack['e2e.ack.peakRssMB']), Number(latency['e2e.latency.peakRssMB'])) };
}
