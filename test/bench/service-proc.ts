// The service the end-to-end bench measures: `npm start` in sandbox mode on the lowdb store, in a process of its own.
// The sandboxes (with their added upstream latency), the load and the watchers live in the bench process, so the
// resident memory and the event loop measured here are Tierline's alone, as an operator's service would be.
//
//   node service-proc.ts <json BenchServiceOptions>   prints "ready <url>", answers questions over IPC, stops on SIGTERM.
//
// IPC: {id, ask: 'timing', keys} -> {id, timing: {key: TicketTiming}}; {id, ask: 'routed'} -> {id, routed}.
import { loadEnv } from '../../server/env.ts';
import { createLogger, silentLogger } from '../../server/logger.ts';
import { startService, type ExternalSandboxes } from '../../server/service.ts';
import { stopOnSigterm } from '../e2e/procs/stop-on-sigterm.ts';

export type BenchServiceOptions = { dataDir: string; port: number; adminToken: string; secretsKey: string; external: ExternalSandboxes };
export type BenchQuestion = { id: number; ask: 'timing'; keys: string[] } | { id: number; ask: 'routed' };

const o = JSON.parse(process.argv[2]!) as BenchServiceOptions;
const url = `http://127.0.0.1:${o.port}`;
const env = loadEnv({ DATA_DIR: o.dataDir, PORT: String(o.port), HOST: '127.0.0.1', PUBLIC_URL: url, ADMIN_TOKEN: o.adminToken, SECRETS_KEY: o.secretsKey, SAMPLE_TICKETS_PER_MINUTE: '0', LOG_LEVEL: 'error' });
// With TIERLINE_BENCH_DEBUG the service's warnings and errors go to stderr (a slow ticket's retries, a lost answer).
const logger = process.env.TIERLINE_BENCH_DEBUG ? createLogger({ level: 'warn', write: (l) => process.stderr.write(`${l}\n`) }) : silentLogger;
const service = await startService({ env, logger, simulatedAgents: false, sampleTicketsPerMinute: 0, external: o.external });
process.stdout.write(`ready ${service.url}\n`);
// With TIERLINE_BENCH_DEBUG, where the memory is (is a high RSS live data, or heap V8 has not returned?).
if (process.env.TIERLINE_BENCH_DEBUG) {
  // --trace-gc times are from about this moment (wall clock ms), to line collections up with slow tickets.
  process.stderr.write(`origin ${JSON.stringify({ at: performance.timeOrigin })}\n`);
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(`mem ${JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round(v / 1e6)])))}\n`);
  }, 1_000).unref();
  // And when the event loop stalls (a timer 10 ms or more late), to line stalls up with slow tickets.
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 15) process.stderr.write(`stall ${JSON.stringify({ ms: Math.round(now - last - 5), at: Date.now() })}\n`);
    last = now;
  }, 5).unref();
}

process.on('message', (m: BenchQuestion) => {
  void (async () => {
    if (m.ask === 'timing') process.send!({ id: m.id, timing: Object.fromEntries(m.keys.map((k) => [k, service.timing.ticket(k) ?? null])) });
    else process.send!({ id: m.id, routed: (await service.store.tickets({})).filter((t) => t.routedAt).length });
  })();
});

stopOnSigterm(service);
