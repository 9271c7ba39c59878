// What the connector's parts share once it is connected: the GramJS client, the account, peers, pacing, time.
import type { Group } from '../../core/config.ts';
import type { Logger, MessengerEvent, Store, TopicRef } from '../../core/ports.ts';
import type { Api, TelegramClient } from './client.ts';
import type { AccountKind } from './client.ts';
import type { Timers } from './clock.ts';
import type { Pacer } from './pacer.ts';
import type { PeerDirectory } from './peers.ts';
import type { TelegramSandbox } from './sandbox/index.ts';

export type Ctx = {
  mode: 'real' | 'sandbox';
  kind: AccountKind;
  selfId: string;
  selfName: string;
  client: TelegramClient;
  store: Store;
  logger: Logger;
  timers: Timers;
  peers: PeerDirectory;
  pacer: Pacer;
  groups: () => Group[];
  sandbox: TelegramSandbox | undefined;
  onEvent: (e: MessengerEvent) => Promise<void>;
  openTopics: () => Promise<TopicRef[]>;
  /** Records a failure for health(). */
  note: (err: unknown) => void;
};

export type CallOpts = { lane: string; priority: number; send: boolean; label: string };

/** Every Telegram request goes through the pacer: per-group and per-account limits, flood waits, priorities. */
export function call<T>(ctx: Ctx, o: CallOpts, request: Api.AnyRequest): Promise<T> {
  return ctx.pacer.submit<T>({ ...o, run: () => ctx.client.invoke(request) as Promise<T> });
}

export function userName(u: { firstName?: string | undefined; lastName?: string | undefined }): string {
  return [u.firstName, u.lastName].filter(Boolean).join(' ');
}
