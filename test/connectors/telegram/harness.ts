// The Telegram connector against its sandbox through GramJS, on a manual clock: nothing waits in real time.
import type { Group } from '../../../core/config.ts';
import type { Logger, MessengerEvent, TopicRef } from '../../../core/ports.ts';
import type { Store } from '../../../core/ports.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { createManualClock, type ManualClock } from '../../../connectors/telegram/clock.ts';
import { createTelegramConnector, type TelegramConnector, type TelegramConnectorOptions } from '../../../connectors/telegram/index.ts';
import { createTelegramSandbox, SANDBOX_GROUPS, type TelegramSandbox, type TelegramSandboxOptions } from '../../../connectors/telegram/sandbox/index.ts';
import { createMemoryStore } from '../../../server/storage/memory-store.ts';

export const silentLogger = (sink?: { level: string; msg: string; fields?: Record<string, unknown> }[]): Logger => {
  const make = (): Logger => ({
    debug: () => {},
    info: (msg, fields) => void sink?.push({ level: 'info', msg, ...(fields ? { fields } : {}) }),
    warn: (msg, fields) => void sink?.push({ level: 'warn', msg, ...(fields ? { fields } : {}) }),
    error: (msg, fields) => void sink?.push({ level: 'error', msg, ...(fields ? { fields } : {}) }),
    child: () => make(),
  });
  return make();
};

export const SAMPLE_GROUPS: Group[] = SANDBOX_GROUPS.map((g) => ({ id: g.id, title: g.title }));
export const channelOf = (groupId: string) => SANDBOX_GROUPS.find((g) => g.id === groupId)!.channelId;
export const ALICE = { id: '7000000001', name: 'Alice Meyer' };
export const BRUNO = { id: '7000000002', name: 'Bruno Costa' };

export type Harness = {
  clock: ManualClock;
  sandbox: TelegramSandbox;
  store: Store;
  events: MessengerEvent[];
  open: TopicRef[];
  groups: Group[];
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
  connector: TelegramConnector;
  /** A second connector process on the same store and sandbox (a restart after a crash). */
  restart(): Promise<TelegramConnector>;
  stop(): Promise<void>;
};

export async function setup(o: { as?: 'user' | 'bot'; pacing?: TelegramConnectorOptions['pacing']; sandbox?: TelegramSandboxOptions; groups?: Group[]; start?: boolean; clock?: ManualClock; store?: Store } = {}): Promise<Harness> {
  const clock = o.clock ?? createManualClock();
  const sandbox = createTelegramSandbox({ seed: true, clock, ...(o.sandbox ?? {}) });
  const store = o.store ?? createMemoryStore({ clock });
  const events: MessengerEvent[] = [];
  const open: TopicRef[] = [];
  const groups = o.groups ?? structuredClone(SAMPLE_GROUPS);
  const logs: Harness['logs'] = [];
  const connectors: TelegramConnector[] = [];
  const build = () => {
    const c = createTelegramConnector({
      mode: 'sandbox',
      env: o.as === 'bot' ? { botToken: sandbox.botToken } : {},
      store,
      secrets: createSecretBox('telegram-tests-secrets-key-0123456789abcdef'),
      logger: silentLogger(logs),
      clock,
      groups: () => groups,
      onEvent: async (e) => void events.push(e),
      openTopics: async () => [...open],
      ...(o.pacing ? { pacing: o.pacing } : {}),
      sandbox,
    });
    connectors.push(c);
    return c;
  };
  const connector = build();
  if (o.start !== false) await connector.start();
  return {
    clock,
    sandbox,
    store,
    events,
    open,
    groups,
    logs,
    connector,
    async restart() {
      const c = build();
      await c.start();
      return c;
    },
    async stop() {
      for (const c of connectors) await c.stop();
    },
  };
}

/** Runs a promise to completion while advancing the manual clock (pacing and flood waits need time to pass). */
export async function drive<T>(clock: ManualClock, p: Promise<T>, maxSteps = 10_000): Promise<T> {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  let failed = false;
  p.then(
    (v) => {
      done = true;
      value = v;
    },
    (e) => {
      done = true;
      failed = true;
      error = e;
    },
  );
  for (let i = 0; i < maxSteps && !done; i++) {
    await clock.advance(0);
    if (done) break;
    if (!(await clock.next())) await clock.advance(0);
  }
  if (!done) throw new Error('drive: the promise did not settle (nothing left to advance)');
  if (failed) throw error;
  return value as T;
}
