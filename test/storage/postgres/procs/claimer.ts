// A child process that works the shared outbox the way the pipeline's runDue does: claim a batch with a lease, run
// one ticket's steps in order and different tickets in parallel, complete each step. Every run is recorded in
// test_runs so the parent can check that no step ran twice and each ticket's steps ran in order.
//
//   node claimer.ts <json options>   prints "ready", waits for "go" on stdin, prints one JSON result line at the end.
import { createInterface } from 'node:readline';
import type { Job } from '../../../../core/ports.ts';
import { openPostgresStore } from '../../../../server/storage/postgres/postgres-store.ts';

export type ClaimerOptions = {
  url: string;
  name: string;
  batch: number;
  leaseMs: number;
  /** Kill this process with SIGKILL right after its Nth claim, mid-batch (crash simulation). */
  dieAfterClaims?: number;
};

async function main(opts: ClaimerOptions): Promise<void> {
  const store = await openPostgresStore({ url: opts.url, instanceId: opts.name, poolSize: 6 });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (l) => {
      if (l.trim() === 'go') {
        rl.close();
        resolve();
      }
    });
  });
  let claims = 0;
  let ran = 0;
  const run = async (j: Job) => {
    await store.pool.query('INSERT INTO test_runs (job_id, ticket_key, seq, instance) VALUES ($1, $2, $3, $4)', [j.id, j.ticketKey, j.payload.seq, opts.name]);
    ran++;
    await store.commit({ completeJobs: [j.id] });
  };
  for (;;) {
    const jobs = await store.claimJobs(Date.now(), opts.batch, opts.leaseMs);
    claims++;
    if (opts.dieAfterClaims !== undefined && claims >= opts.dieAfterClaims && jobs.length) {
      // Start half the batch, then die without completing anything: the lease must hand these to someone else.
      await Promise.all(jobs.slice(0, Math.ceil(jobs.length / 2)).map((j) => store.pool.query('INSERT INTO test_runs (job_id, ticket_key, seq, instance) VALUES ($1, $2, $3, $4)', [j.id, j.ticketKey, j.payload.seq, opts.name])));
      process.kill(process.pid, 'SIGKILL');
    }
    if (!jobs.length) {
      if ((await store.pendingJobs()) === 0) break;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const byTicket = new Map<string, Job[]>();
    for (const j of jobs) byTicket.set(j.ticketKey, [...(byTicket.get(j.ticketKey) ?? []), j]);
    await Promise.all(
      [...byTicket.values()].map(async (list) => {
        for (const j of list) await run(j);
      }),
    );
  }
  await store.close();
  process.stdout.write(JSON.stringify({ name: opts.name, claims, ran }) + '\n');
}

if (import.meta.main) {
  main(JSON.parse(process.argv[2]!) as ClaimerOptions).catch((err) => {
    process.stderr.write(`claimer failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
