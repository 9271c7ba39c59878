// What the server expects of each connector it mounts, beyond the core ports. Kept here (not in core) because
// these are service concerns: health for /readyz and the console, per-account mappings for the admin API, and the
// sandbox forum the console shows when Telegram runs sandboxed.
import type { Hono } from 'hono';
import type { z } from 'zod';

export type ConnectorMode = 'real' | 'sandbox';

export type ConnectorHealth = {
  ok: boolean;
  mode: ConnectorMode;
  /** One line for the console, e.g. "2 portals installed" or "FLOOD_WAIT 30 s on group support-1". */
  detail: string;
  lastError: string | null;
  /** Something an admin must act on soon (e.g. 80% of Salesforce's daily API allocation used); shown as an alert. */
  alert?: string | null;
  /** Connector-specific figures (rate-limit headroom, API allocation used, flood waits). */
  [extra: string]: unknown;
};

/** Whether an upstream answered a cheap read just now, per connected account (portal / org). */
export type Reachability = {
  ok: boolean;
  accounts: { account: string; ok: boolean; ms: number; error: string | null }[];
  /** Set when the check as a whole failed (e.g. timed out). */
  error?: string;
};

/** Per-account field mapping (HubSpot portal / Salesforce org), editable from the admin API and console. */
export interface ConnectorMappings {
  readonly schema: z.ZodType;
  /** The mapping in force for an account (the default when none was saved). */
  get(account: string): Promise<unknown>;
  /**
   * Validates (throws AppError invalid_input naming the field) and saves as a new version (the previous one stays
   * available for rollback); returns the stored value.
   */
  put(account: string, value: unknown, meta?: { author?: string; note?: string }): Promise<unknown>;
  /** Accounts with a saved mapping or an install. */
  accounts(): Promise<string[]>;
  /** Saved versions of an account's mapping, newest first. */
  versions(account: string): Promise<MappingVersion[]>;
  /** Makes an earlier version current again (saved as a new version); returns the stored value. */
  rollback(account: string, version: number, author: string): Promise<unknown>;
}

export type MappingVersion = { version: number; savedAt: number; author: string; note: string };

export interface CrmConnector {
  readonly id: 'hubspot' | 'salesforce';
  readonly mode: ConnectorMode;
  readonly crm: import('../core/ports.ts').CrmPort;
  /** Webhooks, OAuth, workflow action, card: mounted with app.route('/', routes). */
  readonly routes: Hono;
  readonly mappings: ConnectorMappings;
  health(): Promise<ConnectorHealth>;
  /** Calls the CRM once per connected account (for /readyz); never throws, reports per account. */
  reach(): Promise<Reachability>;
  /** Starts background work (streaming subscriptions, token refresh); idempotent. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------- Sandbox forum (Telegram sandbox, console page 6)

export type SandboxGroup = { id: string; channelId: string; title: string; forum: boolean };
export type SandboxTopic = { topicId: number; title: string; iconColor: number; closed: boolean; createdAt: number; messageCount: number };
export type SandboxMessage = { id: number; fromUserId: string; fromName: string; text: string; at: number; pinned: boolean };
export type SandboxAgent = { telegramUserId: string; name: string; online: boolean };

/** Lets a person act as a Telegram agent in sandbox mode; every action flows through GramJS like a real update. */
export interface SandboxForum {
  groups(): SandboxGroup[];
  topics(groupChannelId: string): SandboxTopic[];
  messages(groupChannelId: string, topicId: number, limit?: number): SandboxMessage[];
  agents(): SandboxAgent[];
  reply(groupChannelId: string, topicId: number, telegramUserId: string, text: string): Promise<void>;
  closeTopic(groupChannelId: string, topicId: number, telegramUserId: string): Promise<void>;
  setOnline(telegramUserId: string, online: boolean): Promise<void>;
}
