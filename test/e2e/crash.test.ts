// Issue 3's crash test. One Tierline process (lowdb store in its data directory) takes a run of tickets from HubSpot
// and Salesforce while agents answer and resolve in Telegram, and is killed with SIGKILL at random moments and
// restarted on the same directory, again and again. The sandboxes live in this (the test) process, so what the
// platforms hold survives every kill. Afterwards every ticket has exactly one topic (with one card), the current
// outcome on its CRM record, a complete history with one write-back per entry, and the only dead letter is the one
// the test caused on purpose (a ticket deleted in HubSpot before its event arrived).
//
// The same run again with power cuts: after each SIGKILL the write-ahead log is cut back to what an fsync had covered
// (procs/sync-recorder.ts), which is what a machine losing power leaves. Changes the store had not synced are gone,
// including steps that had already run because they may start while their batch is saved (Store.commit's
// stepsBeforeSaved); running them again must still give one topic, one card and one note.
//
// TIERLINE_CRASH_TICKETS / TIERLINE_CRASH_KILLS change the size (defaults 300 and 20; the power-cut run does a third
// of the tickets and half the cuts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRoutingConfig } from '../../core/config.ts';
import { silentLogger } from '../../server/logger.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { openLowdbStore } from '../../server/storage/lowdb-store.ts';
import { cardsPerTopic, checkTicket } from './checks.ts';
import { cutToSynced } from './procs/sync-recorder.ts';
import { agentByName, hubspotTicket, kill, outboxDepth, retryOutbound, salesforceCase, sleep, spawnService, startWorld, topicsByMarker, until, type Sent, type ServiceProc, type World } from './harness.ts';
import type { ServiceChildOptions } from './procs/service.ts';

const TICKETS = Number(process.env.TIERLINE_CRASH_TICKETS ?? 300);
const KILLS = Number(process.env.TIERLINE_CRASH_KILLS ?? 20);
const marker = (n: number) => `#c${String(n).padStart(4, '0')}`;
const markerOf = (title: string) => /#c\d{4}/.exec(title)?.[0] ?? null;

describe.each([
  { how: 'killed with SIGKILL', powerCut: false, tickets: TICKETS, kills: KILLS },
  { how: 'cut off by a power failure (SIGKILL, then the log cut back to its last fsync)', powerCut: true, tickets: Math.ceil(TICKETS / 3), kills: Math.ceil(KILLS / 2) },
])('the service $how at random moments (lowdb store)', ({ powerCut, tickets: TICKETS, kills: KILLS }) => {
  let w: World | null = null;
  let current: ServiceProc | null = null;
  let dir = '';
  afterAll(async () => {
    if (current) await kill(current);
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (dir) await rm(`${dir}.synced`, { force: true });
  });

  it(`${TICKETS} tickets, ${KILLS} ${powerCut ? 'power cuts' : 'kills'}: one topic each, the current outcome on the CRM record, a complete history, no stray dead letter`, { timeout: 120_000 }, async () => {
    const t0 = Date.now();
    w = await startWorld();
    const world = w;
    dir = await mkdtemp(join(tmpdir(), 'tierline-crash-'));
    const opts: ServiceChildOptions = {
      dataDir: dir,
      publicUrl: world.lb.url,
      adminToken: randomBytes(24).toString('hex'),
      secretsKey: randomBytes(32).toString('base64'),
      external: world.external,
      pipeline: { backoffBaseMs: 200, backoffMaxMs: 2_000 },
    };
    const syncLog = `${dir}.synced`;
    let starts = 0;
    const start = async () => {
      starts += 1;
      current = spawnService(`s${starts}`, opts, world.lb, powerCut ? { TIERLINE_TEST_SYNC_LOG: syncLog, TIERLINE_TEST_SYNC_DELAY_MS: '30' } : {});
      await current.ready;
    };
    await start();
    const outbound = retryOutbound(world);

    // ---------------------------------------------------------------- tickets, arriving throughout the run
    const sent: Sent[] = [];
    let feeding = true;
    const feeder = (async () => {
      const deleted = await world.hubspot.createTicket({ subject: `${marker(0)} Deleted before Tierline read it`, notify: false });
      world.hubspot.deleteTicket(deleted.id);
      const ev = world.hubspot.event('ticket.creation', deleted.id);
      await until('the deleted ticket’s event to be accepted', async () => ((await world.hubspot.sendEvents([ev]).catch(() => null))?.status ?? 500) < 300, 60_000, 100);
      const inFlight = new Set<Promise<void>>();
      for (let n = 1; n <= TICKETS; n++) {
        const subject = `${marker(n)} ${['Login fails after reset', 'Invoice shows wrong VAT', 'API returns 429', 'Export is empty'][n % 4]}`;
        const p = (n % 2 ? hubspotTicket(world, n, subject, () => Date.now() - t0 > 100_000) : salesforceCase(world, n, subject)).then((s) => void sent.push(s));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= 8) await Promise.race(inFlight);
        // Transient faults along the way; none of them may end as a dead letter.
        if (n % 50 === 25) world.hubspot.inject5xx(2, { match: { method: 'POST' } });
        if (n % 50 === 40) world.telegram.injectError({ method: 'messages.SendMessage', error: 'FLOOD_WAIT_1' });
        await sleep(15);
      }
      await Promise.all(inFlight);
      feeding = false;
    })();

    // ---------------------------------------------------------------- agents answering and resolving in Telegram
    const replied = new Set<string>();
    const resolved = new Set<string>();
    let agentsOn = true;
    const agents = (async () => {
      while (agentsOn) {
        const pinned = new Map(world.telegram.groups().flatMap((g) => world.telegram.allMessages(g.channelId).filter((x) => x.pinned).map((x) => [`${g.channelId}/${x.topicId}`, x] as const)));
        for (const [m, list] of topicsByMarker(world, markerOf)) {
          const n = Number(m.slice(2));
          if (n % 3 !== 0 || resolved.has(m) || list.length !== 1) continue;
          const { channelId, topicId } = list[0]!;
          const card = pinned.get(`${channelId}/${topicId}`);
          if (!card) continue;
          const assignee = [...agentByName].find(([name]) => card.text.includes(`Assigned to ${name}`))?.[1] ?? agentByName.get('Ivan Petrov')!;
          if (!replied.has(m)) {
            await world.telegram.reply(channelId, topicId, assignee, 'Looking into it now.');
            replied.add(m);
          } else if (n % 6 === 0) {
            await world.telegram.reply(channelId, topicId, assignee, '/resolve');
            resolved.add(m);
          }
        }
        await sleep(150);
      }
    })();

    // ---------------------------------------------------------------- SIGKILL at random moments, restart each time
    const downtimes: number[] = [];
    let bytesCut = 0;
    for (let k = 0; k < KILLS; k++) {
      await sleep(150 + Math.floor(Math.random() * 1_100));
      await kill(current!);
      if (powerCut) bytesCut += cutToSynced(dir, syncLog);
      const down = Date.now();
      await start();
      downtimes.push(Date.now() - down);
    }
    await feeder;
    const fedAt = Date.now();

    // ---------------------------------------------------------------- settle: every ticket through, nothing queued
    const all = () => sent.map((s) => marker(s.n));
    await until(
      'every ticket to have its topic and card, the agents to have acted, and the outbox to be empty',
      async () => {
        const topics = topicsByMarker(world, markerOf);
        if (outbound.pending() > 0) return false;
        if (!all().every((m) => topics.has(m))) return false;
        const dueReplies = all().filter((m) => Number(m.slice(2)) % 3 === 0);
        if (!dueReplies.every((m) => replied.has(m)) || !dueReplies.filter((m) => Number(m.slice(2)) % 6 === 0).every((m) => resolved.has(m))) return false;
        return (await outboxDepth(world.lb.url)) === 0;
      },
      60_000,
      250,
    );
    agentsOn = false;
    await agents;
    // The last replies must have reached the service; give the outbox a moment to show what they caused.
    await sleep(1_000);
    await until('the outbox to drain', async () => (await outboxDepth(world.lb.url)) === 0, 30_000, 200);
    outbound.stop();
    const doneAt = Date.now();
    await kill(current!, 'SIGTERM');

    // ---------------------------------------------------------------- what the store, Telegram and the CRMs show
    const store = await openLowdbStore({ dir, logger: silentLogger, clock: { now: () => Date.now() } });
    try {
      const config = parseRoutingConfig(SAMPLE_CONFIG);
      const queueName = (id: string) => config.queues.find((q) => q.id === id)?.name ?? id;
      const agentName = (id: string) => config.agents.find((a) => a.id === id)?.name ?? id;
      const tickets = await store.tickets({});
      const byMarker = new Map(tickets.map((t) => [markerOf(t.subject ?? ''), t]));
      const { entries } = await store.history({ limit: 100_000 });
      const historyOf = new Map<string, typeof entries>();
      for (const e of entries) historyOf.set(e.ticketKey, [...(historyOf.get(e.ticketKey) ?? []), e]);
      const topics = topicsByMarker(world, markerOf);
      const cards = cardsPerTopic(world);
      const closed = new Set(world.telegram.groups().flatMap((g) => world.telegram.topics(g.channelId).filter((x) => x.closed).map((x) => `${g.channelId}/${x.topicId}`)));
      const problems: string[] = [];
      for (const s of sent) {
        const t = byMarker.get(marker(s.n));
        const history = t ? (historyOf.get(t.key) ?? []) : [];
        problems.push(...checkTicket(world, { sent: s, key: t?.key ?? '?', ticket: t, history }, topics.get(marker(s.n)) ?? [], { queueName, agentName, cards }));
        const kinds = history.map((e) => e.kind);
        if (s.n % 3 === 0 && !kinds.some((k) => k === 'first_reply' || k === 'reply_by_other')) problems.push(`${marker(s.n)}: the agent's reply is not in the history`);
        if (s.n % 6 === 0 && kinds.filter((k) => k === 'resolved').length !== 1) problems.push(`${marker(s.n)}: ${kinds.filter((k) => k === 'resolved').length} resolutions in the history`);
        const topic = topics.get(marker(s.n))?.[0];
        if (s.n % 6 === 0 && topic && !closed.has(`${topic.channelId}/${topic.topicId}`)) problems.push(`${marker(s.n)}: resolved but its topic is open`);
      }
      const dead = await store.deadJobs();
      const deletedKey = `hubspot:${world.hubspot.portalId}:`;
      const injected = dead.filter((j) => j.kind === 'route' && j.ticketKey.startsWith(deletedKey) && !tickets.some((t) => t.key === j.ticketKey));
      const stray = dead.filter((j) => !injected.includes(j));

      const decisions = entries.filter((e) => e.kind === 'routed').length;
      const figures = {
        tickets: sent.length,
        kills: KILLS,
        ...(powerCut ? { logBytesCut: bytesCut } : {}),
        restarts: starts - 1,
        seconds: Math.round((doneAt - t0) / 100) / 10,
        feedSeconds: Math.round((fedAt - t0) / 100) / 10,
        meanRestartMs: Math.round(downtimes.reduce((a, b) => a + b, 0) / Math.max(1, downtimes.length)),
        hubspotRedeliveries: sent.filter((s) => s.crm === 'hubspot').reduce((a, s) => a + s.attempts - 1, 0),
        salesforceAttempts: world.salesforce.deliveries().reduce((a, d) => a + d.attempts, 0),
        historyEntries: entries.length,
        decisionsPerSecond: Math.round((decisions / ((doneAt - t0) / 1000)) * 10) / 10,
        agentReplies: replied.size,
        resolutions: resolved.size,
        deadLetters: dead.length,
        deadLettersInjected: injected.length,
        telegram: world.telegramServer.stats(),
      };
      process.stdout.write(`\n[crash test${powerCut ? ', power cuts' : ''}] ${JSON.stringify(figures)}\n`);
      expect(problems.slice(0, 20)).toEqual([]);
      expect(stray.map((j) => `${j.kind} ${j.ticketKey}: ${j.lastError}`)).toEqual([]);
      expect(injected).toHaveLength(1);
      expect(sent).toHaveLength(TICKETS);
    } finally {
      await store.close();
    }
  });
});
