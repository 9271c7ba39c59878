// A Tierline-like writer for the crash test: opens a lowdb data directory and commits routing outcomes in a loop,
// several at once (so log writes are grouped), compacting often (so kills land in compactions too), and prints
// "ack N" once commit N has resolved. The parent SIGKILLs it at a random moment and checks every acknowledged
// outcome survived whole.
//   node lowdb-writer.ts DIR FIRST_N
import { openLowdbStore } from '../../../server/storage/lowdb-store.ts';
import type { Batch } from '../../../core/ports.ts';
import { DAY, entry, job, ticket, timer } from '../fixtures.ts';

export function outcome(n: number, now: number): Batch {
  const key = `hubspot:42:${n}`;
  // Every third ticket is resolved two days ago, so compactions move it (and its entry) out to the dated files.
  const closed = n % 3 === 0;
  return {
    tickets: [ticket(key, closed ? { status: 'resolved', resolvedAt: now - 2 * DAY, updatedAt: now - 2 * DAY } : { updatedAt: now })],
    jobs: [job(`post:${key}`, { ticketKey: key, nextAt: now })],
    timers: [timer(`sla_breach:${key}`, now + 900_000, { ticketKey: key })],
    history: [entry(key, 1, { at: closed ? now - 2 * DAY : now })],
    counters: [{ op: 'load', agentId: 'alice', delta: 1 }],
  };
}

if (import.meta.main) {
  const [dir, first] = process.argv.slice(2);
  const store = await openLowdbStore({ dir: dir!, clock: { now: () => Date.now() }, compactWalRecords: 40, compactWalBytes: 48 << 10, compactEveryMs: 0 });
  process.stdout.write('open\n');
  let next = Number(first);
  const worker = async () => {
    for (;;) {
      const n = next++;
      await store.commit(outcome(n, Date.now()));
      process.stdout.write(`ack ${n}\n`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}
