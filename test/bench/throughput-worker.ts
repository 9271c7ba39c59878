// Closed-loop load for webhook throughput: keeps `concurrency` signed HubSpot deliveries in flight, spread round
// robin over the service instances' own addresses (as a load balancer would), for `seconds`, and prints how many
// were acknowledged per second. Runs in its own process so it does not share an event loop with what it measures.
// Usage: node test/bench/throughput-worker.ts '<json spec>'
import { createHmac } from 'node:crypto';
import http from 'node:http';

type Spec = { urls: string[]; publicUrl: string; concurrency: number; seconds: number; warmupSeconds: number; eventsPerTicket: number; secret: string; portalId: number; appId: number; ticketIds: string[]; firstEventId: number };

const spec = JSON.parse(process.argv[2]!) as Spec;
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
const targets = spec.urls.map((u) => new URL(u));
let next = 0;
let ok = 0;
let failed = 0;
/** Why deliveries were not acknowledged: HTTP status or socket error code. */
const why: Record<string, number> = {};
let counting = false;
let stop = false;

function send(i: number): Promise<void> {
  const target = targets[i % targets.length]!;
  const ticketId = spec.ticketIds[Math.floor(i / spec.eventsPerTicket) % spec.ticketIds.length]!;
  const body = JSON.stringify([{ eventId: spec.firstEventId + i, subscriptionId: 11, portalId: spec.portalId, appId: spec.appId, occurredAt: Date.now(), subscriptionType: 'ticket.creation', attemptNumber: 0, objectId: Number(ticketId), changeSource: 'CRM_UI' }]);
  const ts = String(Date.now());
  const sig = createHmac('sha256', spec.secret).update(`POST${spec.publicUrl}/webhooks/hubspot${body}${ts}`).digest('base64');
  return new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port, path: '/webhooks/hubspot', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-hubspot-signature-v3': sig, 'x-hubspot-request-timestamp': ts } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (counting) {
          if (res.statusCode === 200 || res.statusCode === 204) ok++;
          else {
            failed++;
            why[`HTTP ${res.statusCode}`] = (why[`HTTP ${res.statusCode}`] ?? 0) + 1;
          }
        }
        resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (counting) {
        failed++;
        why[err.code ?? err.message] = (why[err.code ?? err.message] ?? 0) + 1;
      }
      resolve();
    });
    req.end(body);
  });
}

async function lane(): Promise<void> {
  while (!stop) await send(next++);
}

const lanes = Array.from({ length: spec.concurrency }, () => lane());
await new Promise((r) => setTimeout(r, spec.warmupSeconds * 1000));
counting = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, spec.seconds * 1000));
counting = false;
const secs = (performance.now() - t0) / 1000;
stop = true;
await Promise.all(lanes);
process.stdout.write(JSON.stringify({ ok, failed, why, seconds: Math.round(secs * 10) / 10, perSecond: Math.round(ok / secs), sent: next }) + '\n');
agent.destroy();
