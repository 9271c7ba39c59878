// What every console page receives: the dependencies the server passes in, the read model and a few lookups.
import type { MiddlewareHandler } from 'hono';
import type { RoutingConfig } from '../../core/config.ts';
import type { Clock, ConfigVersion, Logger, Store } from '../../core/ports.ts';
import type { ConnectorHealth, ConnectorMappings, SandboxForum } from '../contracts.ts';
import type { ReadModel } from './read-model.ts';
import type { ConsoleEnv } from './auth.ts';

export type ConsoleDeps = {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Sign-in secret (ADMIN_TOKEN). Compared in constant time; never logged. */
  adminToken: string;
  /** The service's public URL; https makes the session cookie Secure and __Host- prefixed. */
  publicUrl: string;
  connectors: () => Promise<{ id: string; health: ConnectorHealth }[]>;
  /** Where an admin installs the app into a CRM, e.g. '/oauth/hubspot/install'. */
  installLinks: { hubspot?: string; salesforce?: string };
  mappings: Record<string, ConnectorMappings>;
  /** Only in sandbox mode (Telegram simulated). */
  sandboxForum?: SandboxForum;
  /** The sample-ticket generator in sandbox mode. */
  generator?: { paused(): boolean; pause(): void; resume(): void };
  /** Validates (throws ConfigError with problems) and saves a new version. */
  saveConfig: (input: unknown, meta: { author: string; note: string }) => Promise<ConfigVersion>;
  rollbackConfig: (version: number, author: string) => Promise<ConfigVersion>;
};

export type ConsoleContext = ConsoleDeps & {
  model: ReadModel;
  sandbox: boolean;
};

/** How page modules declare routes: the console adds its security headers in front of every handler. */
export type Routes = {
  get(path: string, ...handlers: MiddlewareHandler<ConsoleEnv>[]): void;
  post(path: string, ...handlers: MiddlewareHandler<ConsoleEnv>[]): void;
};

/** Display names for queues and agents, falling back to the id for ones the configuration no longer has. */
export function namesOf(config: RoutingConfig | null | undefined) {
  const queues = new Map((config?.queues ?? []).map((q) => [q.id, q.name]));
  const agents = new Map((config?.agents ?? []).map((a) => [a.id, a.name]));
  return {
    queue: (id: string | null | undefined) => (id ? (queues.get(id) ?? id) : '–'),
    agent: (id: string | null | undefined) => (id ? (agents.get(id) ?? id) : '–'),
  };
}

export const DAY_MS = 86_400_000;

/** Midnight UTC of the day `ms` falls in. */
export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}
