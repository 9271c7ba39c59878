// Process-level test rig. The test process holds everything that must outlive the services it kills: the HubSpot and
// Salesforce sandboxes (HTTP on loopback), the Telegram sandbox world (served to the services over loopback by
// remote.ts), and a small round-robin forwarder that plays the load balancer in front of the service processes. The
// services run as child processes (procs/service.ts) and may be killed with SIGKILL at any moment.
//
// Deliveries are retried the way the platforms retry them: HubSpot re-sends a webhook batch that was not answered
// with 2xx (attemptNumber + 1), Salesforce keeps an unacknowledged Outbound Message and sends it again.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startHubspotSandbox, type HubspotSandbox } from '../../connectors/hubspot/sandbox/index.ts';
import { startSalesforceSandbox, type SalesforceSandbox } from '../../connectors/salesforce/sandbox/index.ts';
import { createTelegramSandbox, SANDBOX_AGENTS, SANDBOX_GROUPS, type TelegramSandbox } from '../../connectors/telegram/sandbox/index.ts';
import { serveTelegramSandbox, type TelegramSandboxServer } from '../../connectors/telegram/sandbox/remote.ts';
import type { ServiceChildOptions } from './procs/service.ts';

const SERVICE_SCRIPT = fileURLToPath(new URL('./procs/service.ts', import.meta.url));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the load balancer

export type Balancer = {
  url: string;
  add(name: string, url: string): void;
  remove(name: string): void;
  /** Requests each backend answered (the instances' share of the webhook work). */
  served(): Record<string, number>;
  close(): Promise<void>;
};

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Round-robin over the live backends; a backend that refuses the connection is skipped, none left answers 502. */
export async function startBalancer(): Promise<Balancer> {
  const backends: { name: string; url: string }[] = [];
  const served: Record<string, number> = {};
  let turn = 0;
  const server: Server = createServer((req, res) => {
    (async () => {
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length', 'keep-alive'].includes(k)) headers[k] = v;
      for (let tries = 0; tries < Math.max(1, backends.length); tries++) {
        const b = backends[turn++ % Math.max(1, backends.length)];
        if (!b) break;
        let r: Response;
        try {
          r = await fetch(b.url + (req.url ?? '/'), { method: req.method ?? 'GET', headers, ...(body.length ? { body } : {}), signal: AbortSignal.timeout(30_000) });
        } catch {
          continue; // killed or not listening yet: the next backend gets it
        }
        const out = Buffer.from(await r.arrayBuffer());
        served[b.name] = (served[b.name] ?? 0) + 1;
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream', 'content-length': out.length });
        return res.end(out);
      }
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'upstream', message: 'no Tierline instance is up' } }));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    add(name, url) {
      const i = backends.findIndex((b) => b.name === name);
      if (i >= 0) backends.splice(i, 1);
      backends.push({ name, url });
    },
    remove(name) {
      const i = backends.findIndex((b) => b.name === name);
      if (i >= 0) backends.splice(i, 1);
    },
    served: () => ({ ...served }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

// ------------------------------------------------------------------ the sandboxes

export type World = {
  lb: Balancer;
  hubspot: HubspotSandbox;
  salesforce: SalesforceSandbox;
  telegram: TelegramSandbox;
  telegramServer: TelegramSandboxServer;
  /** What a service process needs to reach all of the above. */
  external: ServiceChildOptions['external'];
  close(): Promise<void>;
};

/** The sandboxes with their platform limits raised, so that thousands of tickets finish in seconds. */
export async function startWorld(): Promise<World> {
  const lb = await startBalancer();
  const clientSecret = randomBytes(16).toString('hex');
  const hubspot = await startHubspotSandbox({ clientSecret, webhookUrl: `${lb.url}/webhooks/hubspot`, seed: true, rateLimit: null });
  const salesforce = await startSalesforceSandbox({ outboundUrl: `${lb.url}/webhooks/salesforce`, seed: true });
  const telegram = createTelegramSandbox({ seed: true, limits: { perGroupPerMinute: 1_000_000, perAccountPerSecond: 100_000 } });
  const telegramServer = await serveTelegramSandbox(telegram);
  return {
    lb,
    hubspot,
    salesforce,
    telegram,
    telegramServer,
    external: {
      hubspot: { url: hubspot.url, accessToken: hubspot.accessToken, clientSecret, rateLimit: { max: 100_000, windowMs: 10_000 } },
      salesforce: { url: salesforce.url, orgId: salesforce.orgId },
      telegram: { url: telegramServer.url, pacing: { perGroupPerMinute: 1_000_000, perAccountPerSecond: 100_000 } },
    },
    async close() {
      await telegramServer.close();
      await hubspot.close();
      await salesforce.close();
      await lb.close();
    },
  };
}

// ------------------------------------------------------------------ service processes

export type ServiceProc = {
  name: string;
  proc: ChildProcess;
  /** Resolves with the service's own URL once it listens; rejects if it dies first. */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail(): string;
  alive(): boolean;
};

/** env: added to the child's environment (the power-cut test's TIERLINE_TEST_SYNC_LOG). */
export function spawnService(name: string, opts: ServiceChildOptions, lb: Balancer, env: Record<string, string> = {}): ServiceProc {
  const proc = spawn(process.execPath, [SERVICE_SCRIPT, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
    proc.on('exit', (code, signal) => {
      alive = false;
      lb.remove(name);
      ok({ code, signal });
    }),
  );
  const ready = new Promise<string>((ok, fail) => {
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /ready (\S+)\n/.exec(out);
      if (m) {
        lb.add(name, m[1]!);
        ok(m[1]!);
      }
    });
    void exited.then(({ code, signal }) => fail(new Error(`service ${name} exited (${signal ?? code}) before it was ready:\n${err.slice(-3000)}`)));
  });
  ready.catch(() => undefined);
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  return { name, proc, ready, exited, stderrTail: () => err.slice(-4000), alive: () => alive };
}

export async function kill(p: ServiceProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p.alive()) return;
  p.proc.kill(signal);
  await p.exited;
}

// ------------------------------------------------------------------ tickets

export type Sent = { n: number; crm: 'hubspot' | 'salesforce'; id: string; subject: string; attempts: number };

/** Creates a HubSpot ticket and delivers its creation event until an instance answers 2xx, as HubSpot retries. */
export async function hubspotTicket(w: World, n: number, subject: string, stop: () => boolean): Promise<Sent> {
  const t = await w.hubspot.createTicket({ subject, notify: false });
  const ev = w.hubspot.event('ticket.creation', t.id);
  let attempts = 0;
  for (;;) {
    attempts += 1;
    const d = await w.hubspot.sendEvents([{ ...ev, attemptNumber: attempts - 1 }]).catch(() => null);
    if (d && d.status >= 200 && d.status < 300) break;
    if (stop()) throw new Error(`HubSpot ticket ${t.id} was never acknowledged (${attempts} attempts)`);
    await sleep(Math.min(1_000, 50 * attempts));
  }
  return { n, crm: 'hubspot', id: t.id, subject, attempts };
}

/** Creates a Salesforce Case; its Outbound Message is acknowledged now or on one of the sandbox's retries. */
export async function salesforceCase(w: World, n: number, subject: string): Promise<Sent> {
  const c = await w.salesforce.createCase({ subject });
  return { n, crm: 'salesforce', id: c.id, subject, attempts: c.delivery?.attempts ?? 0 };
}

/** Salesforce's retries of unacknowledged Outbound Messages, sooner than its real backoff so the test stays short. */
export function retryOutbound(w: World, everyMs = 300): { stop(): void; pending(): number } {
  let busy = false;
  const t = setInterval(() => {
    if (busy) return;
    busy = true;
    w.salesforce.flushOutbound().finally(() => (busy = false));
  }, everyMs);
  return { stop: () => clearInterval(t), pending: () => w.salesforce.deliveries().filter((d) => d.status === 'pending').length };
}

export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms: number, every = 100, status?: () => Promise<string> | string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${status ? `; ${await status()}` : ''}`);
    await sleep(every);
  }
}

// ------------------------------------------------------------------ what the world shows

export const agentByName = new Map(SANDBOX_AGENTS.map((a) => [`${a.firstName} ${a.lastName}`, a.id]));
export const channelOfGroup = new Map<string, string>(SANDBOX_GROUPS.map((g) => [g.id, g.channelId]));

/** Topics the services created in the world (every creation, deleted or not), by the marker in their title. */
export function topicsByMarker(w: World, marker: (title: string) => string | null): Map<string, { channelId: string; topicId: number; title: string }[]> {
  const out = new Map<string, { channelId: string; topicId: number; title: string }[]>();
  for (const c of w.telegram.topicCreations()) {
    const m = marker(c.title);
    if (!m) continue;
    const list = out.get(m) ?? [];
    list.push({ channelId: c.channelId, topicId: c.topicId, title: c.title });
    out.set(m, list);
  }
  return out;
}

/** The outbox depth across the instances, as /metrics reports it (null if no instance answers). */
export async function outboxDepth(url: string): Promise<number | null> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const line = text.split('\n').find((l) => l.startsWith('tierline_outbox_depth'));
    return line ? Number(line.split(' ').pop()) : null;
  } catch {
    return null;
  }
}

export const percent = (part: number, whole: number) => `${whole ? Math.round((part / whole) * 1000) / 10 : 0}%`;
