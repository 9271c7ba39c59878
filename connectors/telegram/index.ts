// The Telegram connector: MTProto through GramJS as a user account or a bot (or against the sandbox), behind the
// core's MessengerPort. The server builds it with createTelegramConnector, hands `messenger` to the pipeline, starts
// it, and reads health() for /readyz and the console.
import type { Group } from '../../core/config.ts';
import { AppError, errorMessage } from '../../core/errors.ts';
import type { Clock, Logger, MessengerEvent, MessengerPort, Store, TopicRef } from '../../core/ports.ts';
import type { ConnectorHealth } from '../../server/contracts.ts';
import type { SecretBox } from '../shared/secrets.ts';
import { Raw } from 'telegram/events/index.js';
import { connectClient, toAppError, waitSecondsOf, type TelegramEnv } from './client.ts';
import { toTimers, type Cancel } from './clock.ts';
import type { Ctx } from './context.ts';
import { createEvents } from './events.ts';
import { createLinker, type LinkReport, type Linker } from './link.ts';
import { createMessenger } from './messenger.ts';
import { createPacer } from './pacer.ts';
import { createPeerDirectory } from './peers.ts';
import type { TelegramSandbox } from './sandbox/index.ts';

export { cutUtf8, topicTitleFor, iconColorForTier, TOPIC_ICON_COLORS, TOPIC_TITLE_MAX_BYTES } from './titles.ts';
export { createTelegramSandbox, type TelegramSandbox } from './sandbox/index.ts';
export { createManualClock, type ManualClock } from './clock.ts';
export type { LinkReport, GroupLinkStatus } from './link.ts';

export type TelegramConnectorOptions = {
  mode: 'real' | 'sandbox';
  env: TelegramEnv;
  store: Store;
  secrets: SecretBox;
  logger: Logger;
  /** A manual clock (clock.ts) drives pacing timers in tests and the benchmark; any Clock otherwise. */
  clock: Clock;
  /** Configured groups (core/config.ts); their ids are what TopicRef.groupId carries. */
  groups: () => Group[];
  onEvent: (e: MessengerEvent) => Promise<void>;
  /** Topics of open tickets, re-read after every (re)connect. */
  openTopics: () => Promise<TopicRef[]>;
  pacing?: { perGroupPerMinute?: number; perAccountPerSecond?: number; maxWaitSeconds?: number };
  sandbox?: TelegramSandbox;
};

export type TelegramConnector = {
  readonly mode: 'real' | 'sandbox';
  readonly messenger: MessengerPort;
  readonly sandbox: TelegramSandbox | undefined;
  health(): Promise<ConnectorHealth>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Re-checks every configured group (channel, forum, admin rights) and links it; the console shows the report. */
  linkGroups(): Promise<LinkReport>;
  /** Reads the open topics back (done after every reconnect on its own). */
  reconcile(): Promise<{ topics: number; messages: number }>;
  /** Resolves once every update received so far has been handed to onEvent (tests, shutdown). */
  idle(): Promise<void>;
};

const RETRY_START_MS = 30_000;

export function createTelegramConnector(opts: TelegramConnectorOptions): TelegramConnector {
  const timers = toTimers(opts.clock);
  const log = opts.logger;
  const peers = createPeerDirectory(opts.store);
  const pacer = createPacer({ timers, logger: log, waitSecondsOf, ...(opts.pacing ?? {}) });
  let ctx: Ctx | null = null;
  let linker: Linker | null = null;
  let report: LinkReport | null = null;
  let lastError: { message: string; at: number } | null = null;
  let startError: AppError | null = null;
  let starting: Promise<void> | null = null;
  let retryTimer: Cancel | null = null;
  let stopped = false;

  const note = (err: unknown) => {
    lastError = { message: errorMessage(err), at: timers.now() };
  };
  const getCtx = (): Ctx => {
    if (ctx) return ctx;
    throw new AppError(startError ? startError.code : 'upstream', startError ? `Telegram is not connected: ${startError.message}` : 'Telegram is not connected yet; the step is retried.');
  };
  const getLinker = (): Linker => {
    getCtx();
    return linker!;
  };

  const messenger = createMessenger(getCtx, getLinker);
  const events = createEvents(getCtx);

  async function connect(): Promise<void> {
    try {
      const { client, kind, self } = await connectClient({ mode: opts.mode, env: opts.env, secrets: opts.secrets, store: opts.store, logger: log, sandbox: opts.sandbox });
      if (stopped) {
        await client.destroy();
        return;
      }
      const selfId = self.id.toString();
      await peers.load(selfId);
      ctx = {
        mode: opts.mode,
        kind,
        selfId,
        selfName: [self.firstName, self.lastName].filter(Boolean).join(' ') || self.username || selfId,
        client,
        store: opts.store,
        logger: log,
        timers,
        peers,
        pacer,
        groups: opts.groups,
        sandbox: opts.sandbox,
        onEvent: opts.onEvent,
        openTopics: opts.openTopics,
        note,
      };
      linker = createLinker(ctx);
      startError = null;
      client.addEventHandler((u: unknown) => events.onUpdate(u), new Raw({}));
      log.info('telegram connected', { mode: opts.mode, account: kind, id: selfId });
      report = await linker.linkGroups();
      for (const g of report.groups) {
        for (const p of g.problems) log.warn('telegram group needs attention', { group: g.groupId, problem: p });
        for (const w of g.warnings) log.info('telegram group note', { group: g.groupId, note: w });
      }
      await events.reconcile('start');
    } catch (err) {
      startError = toAppError(err, 'connecting');
      note(startError);
      // Only a network failure is worth retrying on our own; a refused login needs the operator.
      const retry = startError.code === 'upstream' || startError.code === 'rate_limited';
      log.error('telegram connector could not start', { error: startError.message, retryInMs: retry ? RETRY_START_MS : null });
      if (retry && !stopped && !ctx) retryTimer = timers.setTimer(() => void start(), RETRY_START_MS);
    }
  }

  function start(): Promise<void> {
    if (ctx || stopped) return Promise.resolve();
    starting ??= connect().finally(() => {
      starting = null;
    });
    return starting;
  }

  return {
    mode: opts.mode,
    messenger,
    sandbox: opts.sandbox,
    start,
    async stop() {
      stopped = true;
      retryTimer?.();
      await starting;
      pacer.stop();
      if (!ctx) return;
      const c = ctx;
      await events.idle().catch(() => {});
      await peers.flushCursors().catch(() => {});
      await c.client.destroy().catch(() => {});
      ctx = null;
    },
    async linkGroups() {
      report = await getLinker().linkGroups();
      return report;
    },
    reconcile: () => events.reconcile('requested'),
    idle: () => events.idle(),
    async health(): Promise<ConnectorHealth> {
      const q = pacer.stats();
      const now = timers.now();
      const waits = q.lanes.filter((l) => l.blockedUntil !== null).map((l) => ({ group: l.lane, seconds: Math.ceil((l.blockedUntil! - now) / 1000) }));
      const st = events.status();
      const groupsOk = report ? report.groups.filter((g) => g.ok).length : 0;
      const groupsAll = report ? report.groups.length : opts.groups().length;
      const parts = [
        opts.mode === 'sandbox' ? 'sandbox' : 'live',
        ctx ? `${ctx.kind === 'bot' ? 'bot' : 'user account'} ${ctx.selfName}` : startError ? `not connected: ${startError.message}` : 'connecting',
        `${groupsOk}/${groupsAll} groups ready`,
        `${q.queued} queued`,
        ...waits.map((w) => `FLOOD_WAIT ${w.seconds} s on group ${w.group}`),
      ];
      if (ctx && !st.connected) parts.push('reconnecting');
      return {
        ok: !!ctx && st.connected && (report?.ok ?? false),
        mode: opts.mode,
        detail: parts.join(' · '),
        lastError: lastError?.message ?? null,
        lastErrorAt: lastError?.at ?? null,
        account: ctx ? { kind: ctx.kind, id: ctx.selfId, name: ctx.selfName } : null,
        groups: report?.groups ?? [],
        pacing: { queued: q.queued, inFlight: q.inFlight, sent: q.dispatched, floodWaits: q.floodWaits, floodWaitSeconds: q.floodWaitSeconds, floodWaitsSurfaced: q.surfaced, waiting: waits },
        lastReconcile: st.lastReconcile,
      };
    },
  };
}
