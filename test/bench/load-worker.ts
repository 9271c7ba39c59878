// A load generator in its own process (so it does not share the service's event loop): sends signed HubSpot
// webhook deliveries at a fixed rate, open loop (each request leaves on schedule whether or not earlier ones were
// answered, so slow answers show up as latency rather than as a lower rate), and prints latency percentiles.
// Usage: node test/bench/load-worker.ts '<json spec>'
import { createHmac } from 'node:crypto';
import http from 'node:http';

// Event i names ticket ticketIds[floor(i / eventsPerTicket)]: a steady stream of new tickets (rate / eventsPerTicket
// per second) among repeat events for tickets already known (property changes, redeliveries). The first
// warmupSeconds are sent the same way but not counted (JIT and connection set-up).
type Spec = { url: string; publicUrl: string; rate: number; seconds: number; warmupSeconds?: number; eventsPerTicket?: number; secret: string; portalId: number; appId: number; ticketIds: string[] };

const spec = JSON.parse(process.argv[2]!) as Spec;
const target = new URL(spec.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const latencies: number[] = [];
let ok = 0;
let failed = 0;
const statuses: Record<string, number> = {};
const errors: Record<string, number> = {};

const perTicket = spec.eventsPerTicket ?? 1;
const warmup = Math.round(spec.rate * (spec.warmupSeconds ?? 0));

function send(i: number): Promise<void> {
  const ticketId = spec.ticketIds[Math.floor(i / perTicket) % spec.ticketIds.length]!;
  const counted = i >= warmup;
  const body = JSON.stringify([
    { eventId: 1_000_000 + i, subscriptionId: 11, portalId: spec.portalId, appId: spec.appId, occurredAt: Date.now(), subscriptionType: 'ticket.creation', attemptNumber: 0, objectId: Number(ticketId), changeSource: 'CRM_UI' },
  ]);
  const ts = String(Date.now());
  const uri = `${spec.publicUrl}/webhooks/hubspot`;
  const sig = createHmac('sha256', spec.secret).update(`POST${uri}${body}${ts}`).digest('base64');
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(
      { host: target.hostname, port: target.port, path: '/webhooks/hubspot', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': ts } },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (counted) latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
          if (res.statusCode === 200 || res.statusCode === 204) ok++;
          else failed++;
          resolve();
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1;
      failed++;
      resolve();
    });
    req.end(body);
  });
}

const total = warmup + spec.rate * spec.seconds;
const t0 = performance.now();
const inflight: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / spec.rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  inflight.push(send(i));
}
await Promise.all(inflight);
const elapsed = (performance.now() - t0) / 1000 - (spec.warmupSeconds ?? 0);
latencies.sort((a, b) => a - b);
const p = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0) * 100) / 100;
process.stdout.write(JSON.stringify({ sent: total, warmup, ok, failed, statuses, errors, seconds: Math.round(elapsed * 10) / 10, achievedRate: Math.round((total - warmup) / elapsed), p50Ms: p(0.5), p95Ms: p(0.95), p99Ms: p(0.99), maxMs: p(1) }) + '\n');
agent.destroy();
