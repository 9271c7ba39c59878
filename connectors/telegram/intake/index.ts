// The Telegram intake: customers write to the team's bot in a private chat, the intake form (core/intake-form.ts)
// asks who they are and what is wrong, the CRM is searched for them (CrmIntakePort), the ticket is created there and
// handed to the pipeline like a webhook would, and from then on the chat and the ticket's forum topic are relayed both
// ways (text and media, edits), with the agent's internal notes kept in the topic.
//
// Durability: every incoming message is handled once (per-customer high-water mark of message ids), and what it
// causes is written as steps into the customer's outbox in the same kv record as the new conversation state; the steps
// then run through the bot's pacer with random_ids derived from what they copy, so a crash at any point repeats a
// step at most, and Telegram drops the repeat (RANDOM_ID_DUPLICATE). Private updates missed while down are read back
// with updates.getDifference from the saved pts; topic messages by id after the last one seen.
import { Hono } from 'hono';
import { Raw } from 'telegram/events/index.js';
import { timingSafeEqual } from 'node:crypto';
import { AppError, errorMessage } from '../../../core/errors.ts';
import type { Group } from '../../../core/config.ts';
import { DEFAULT_FORM_OPTIONS, formLanguage, stepForm, startForm, type FormInput, type FormOptions, type FormReply, type FormResult } from '../../../core/intake-form.ts';
import { fnv64 } from '../../../core/ids.ts';
import type { Clock, CrmIntakePort, CrmPort, Intake, Logger, Store } from '../../../core/ports.ts';
import { ticketKey, type CrmId, type TicketRef } from '../../../core/segment.ts';
import type { ConnectorHealth } from '../../../server/contracts.ts';
import type { SecretBox } from '../../shared/secrets.ts';
import { Api, type TelegramClient } from '../client.ts';
import { settle, toTimers, type Cancel } from '../clock.ts';
import { topicOfMessage } from '../events.ts';
import { createPacer } from '../pacer.ts';
import { NS_PEERS as CONNECTOR_PEERS } from '../peers.ts';
import { waitSecondsOf } from '../client.ts';
import type { TelegramSandbox } from '../sandbox/index.ts';
import { connectBot, createBotApi, type BotApi, type BotEnv, type Markup } from './bot.ts';
import { CustomerSchema, NS, RELAY_MAP_TTL_MS, RelayInSchema, RelayOutSchema, type Action, type CustomerRecord, type NewAction } from './records.ts';
import { reopenTicket } from './reopen.ts';
import { TEXTS } from './texts.ts';

export type IntakeSettings = {
  form: FormOptions;
  /** Create a CRM contact for a customer the CRM does not know (off: the ticket has no contact and routes as unknown). */
  createContacts: boolean;
  /** Topic messages starting with one of these stay in the topic (internal notes). */
  notePrefixes: string[];
  /** A customer who writes within this time after resolution reopens the ticket; later, a new form starts. */
  reopenWindowMs: number;
  /** Per customer: at most `messages` in `windowMs`; more are dropped (the customer is told once). */
  rateLimit: { messages: number; windowMs: number };
  maxOpenTickets: number;
  /** Telegram user ids that are ignored (the admin API adds more). */
  blocked: string[];
  /** How often pending steps (a topic not there yet, a CRM that was down) are retried. */
  retryMs: number;
};

export const DEFAULT_INTAKE_SETTINGS: IntakeSettings = {
  form: DEFAULT_FORM_OPTIONS,
  createContacts: false,
  notePrefixes: ['//', '/note'],
  reopenWindowMs: 7 * 24 * 3600_000,
  rateLimit: { messages: 20, windowMs: 60_000 },
  maxOpenTickets: 2,
  blocked: [],
  retryMs: 5_000,
};

export type IntakeCrm = { crm: CrmId; account: string; port: CrmIntakePort };

export type TelegramIntakeOptions = {
  mode: 'real' | 'sandbox';
  env: BotEnv;
  store: Store;
  secrets: SecretBox;
  logger: Logger;
  clock: Clock;
  /** The pipeline's intake: the created ticket is accepted like a webhook delivery (deduped per ticket). */
  intake: Intake;
  /** The CRM tickets are opened in (null while none is connected: completed forms wait). */
  crm: () => Promise<IntakeCrm | null>;
  /** Configured forum groups (to find the channel of a ticket's topic). */
  groups: () => Group[];
  sandbox?: TelegramSandbox | undefined;
  settings?: Partial<IntakeSettings>;
  /** Bearer token of the admin API (block list routes). */
  adminToken?: () => string;
  pacing?: { perChatPerMinute?: number; perGroupPerMinute?: number; perAccountPerSecond?: number };
};

export type TelegramIntake = {
  readonly mode: 'real' | 'sandbox';
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<ConnectorHealth>;
  /** Wraps a CRM port so the customer hears about their ticket's write-backs (taken, resolved, reopened). */
  observe(port: CrmPort): CrmPort;
  /** Admin API: GET/PUT/DELETE /api/v1/intake/blocked[/:telegramUserId]. */
  readonly routes: Hono;
  block(userId: string, reason?: string): Promise<void>;
  unblock(userId: string): Promise<boolean>;
  /** Resolves once every update received so far is handled and every runnable step ran (tests, shutdown). */
  idle(): Promise<void>;
  /** Runs pending steps now (a topic appeared, a CRM came back); done on a timer as well. */
  kick(): Promise<void>;
  /** The bot's Telegram user id once connected. */
  botId(): string | null;
};

const FORM_PRIORITY = 50;
/** Write-backs the customer hears about: taken (routed/assigned/reassigned/overflow to an agent), waiting, resolved. */
const NOTICE_KINDS = new Set(['routed', 'assigned', 'reassigned', 'overflow', 'resolved']);
const RELAY_PRIORITY = { enterprise: 40, premium: 30, standard: 20, free: 10 } as const;

export function createTelegramIntake(opts: TelegramIntakeOptions): TelegramIntake {
  const { store, logger: log } = opts;
  const timers = toTimers(opts.clock);
  const s: IntakeSettings = { ...DEFAULT_INTAKE_SETTINGS, ...opts.settings, form: { ...DEFAULT_INTAKE_SETTINGS.form, ...opts.settings?.form } };
  // Telegram allows a bot about one message a second in a private chat and about twenty a minute in a group.
  const newPacers = () => ({
    chats: createPacer({ timers, logger: log, waitSecondsOf, perGroupPerMinute: opts.pacing?.perChatPerMinute ?? 60, perAccountPerSecond: opts.pacing?.perAccountPerSecond ?? 30 }),
    groups: createPacer({ timers, logger: log, waitSecondsOf, perGroupPerMinute: opts.pacing?.perGroupPerMinute ?? 20, perAccountPerSecond: opts.pacing?.perAccountPerSecond ?? 30 }),
  });
  let pacers = newPacers();
  let client: TelegramClient | null = null;
  let bot: BotApi | null = null;
  let selfId: string | null = null;
  let selfName = '';
  let lastError: string | null = null;
  let retryTimer: Cancel | null = null;
  let stopped = false;
  const locks = new Map<string, Promise<void>>();
  const running = new Map<string, Promise<void>>();
  const rerun = new Set<string>();
  let updates: Promise<void> = Promise.resolve();
  const handled = { messages: 0, relayedIn: 0, relayedOut: 0, opened: 0, dropped: 0 };

  const note = (err: unknown) => {
    lastError = errorMessage(err);
  };

  // ---------------------------------------------------------------- records

  async function load(userId: string): Promise<CustomerRecord | null> {
    const raw = await store.kvGet(NS.customers, userId);
    if (!raw) return null;
    const p = CustomerSchema.safeParse(raw);
    if (!p.success) {
      log.warn('stored intake conversation is invalid; starting it over', { user: userId });
      return null;
    }
    return p.data;
  }

  const fresh = (userId: string, lang: string | null, name: string): CustomerRecord => ({ userId, lang: formLanguage(lang), name, form: null, promptMsgId: null, buttons: [], lastPrompt: null, lastInId: 0, known: null, lookedUp: false, tickets: [], recent: [], tooFastAt: null, notified: [], seq: 0, outbox: [] });

  /** Customers with pending steps (all saves go through here; filled from the store on start). */
  const pending = new Set<string>();
  let customers = 0;
  const save = async (r: CustomerRecord) => {
    await store.kvPut(NS.customers, r.userId, r);
    if (r.outbox.length) pending.add(r.userId);
    else pending.delete(r.userId);
  };

  function push(r: CustomerRecord, a: NewAction): void {
    r.seq += 1;
    r.outbox.push({ ...a, id: r.seq } as Action);
  }

  /** Per-customer critical sections: a record is read, changed and written back without interleaving. */
  function lock<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(userId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    locks.set(userId, tail);
    void tail.then(() => {
      if (locks.get(userId) === tail) locks.delete(userId);
    });
    return run;
  }

  /** Runs a customer's pending steps (one runner per customer; a call while it runs makes it look again). */
  function drive(userId: string): Promise<void> {
    if (running.has(userId)) {
      rerun.add(userId);
      return running.get(userId)!;
    }
    const p = (async () => {
      do {
        rerun.delete(userId);
        await runOutbox(userId);
      } while (rerun.has(userId) && !stopped);
    })()
      .catch((err) => {
        note(err);
        log.error('intake steps failed', { user: userId, error: errorMessage(err) });
      })
      .finally(() => running.delete(userId));
    running.set(userId, p);
    return p;
  }

  async function isBlocked(userId: string): Promise<boolean> {
    return s.blocked.includes(userId) || !!(await store.kvGet(NS.blocked, userId));
  }

  async function groupOfChannel(channelId: string): Promise<string | null> {
    for (const g of opts.groups()) if (g.telegramChannelId === channelId) return g.id;
    const sb = opts.sandbox?.groups().find((g) => g.channelId === channelId);
    if (sb && opts.groups().some((g) => g.id === sb.id)) return sb.id;
    // Groups linked by title: the connector stored their channel ids (kv telegram:peers); read-only here.
    for (const { value } of await store.kvList<{ groupId: string; channelId: string }>(CONNECTOR_PEERS)) if (value.channelId === channelId) return value.groupId;
    return null;
  }

  async function channelOfGroup(groupId: string): Promise<string | null> {
    const g = opts.groups().find((x) => x.id === groupId);
    if (g?.telegramChannelId) return g.telegramChannelId;
    const sb = opts.sandbox?.groups().find((x) => x.id === groupId);
    if (sb) return sb.channelId;
    const peer = await store.kvGet<{ channelId: string }>(CONNECTOR_PEERS, groupId);
    return peer?.channelId ?? null;
  }

  // ---------------------------------------------------------------- form

  function markupOf(r: CustomerRecord, reply: FormReply): Markup {
    if (reply.requestContact) return { contact: { share: TEXTS[r.lang].sharePhone, cancel: reply.buttons.flat().find((b) => b.data === 'nav:cancel')?.label ?? 'Cancel' } };
    return reply.buttons.length ? { inline: reply.buttons } : { hide: true };
  }

  function ask(r: CustomerRecord, reply: FormReply): void {
    r.buttons = reply.buttons.flat();
    const markup = markupOf(r, reply);
    r.lastPrompt = { text: reply.text, markup };
    push(r, { kind: 'say', text: reply.text, markup, prompt: reply.buttons.length > 0 });
  }

  function knownIdentifier(r: CustomerRecord) {
    return r.known?.identifier ?? undefined;
  }

  function applyForm(r: CustomerRecord, res: FormResult, now: number): void {
    const before = r.form?.step ?? null;
    if (res.kind === 'continue') {
      if (before === 'identify' && res.state.step !== 'identify' && res.state.answers.identifier) push(r, { kind: 'say', text: TEXTS[r.lang].identified(res.state.answers.identifier.value), markup: { hide: true }, prompt: false });
      r.form = res.state;
      ask(r, res.reply);
      return;
    }
    r.form = null;
    r.buttons = [];
    r.promptMsgId = null;
    r.lastPrompt = null;
    if (res.kind === 'cancelled') return void push(r, { kind: 'say', text: res.reply.text, markup: { hide: true }, prompt: false });
    push(r, { kind: 'say', text: res.reply.text, markup: { hide: true }, prompt: false });
    push(r, { kind: 'open', idempotencyKey: `tg-${r.userId}-${now}`, lang: res.lang, answers: res.answers, attempts: 0 });
  }

  async function openTickets(r: CustomerRecord): Promise<{ key: string; resolvedAt: number | null }[]> {
    const out: { key: string; resolvedAt: number | null }[] = [];
    for (const t of r.tickets) {
      const rec = await store.getTicket(t.key);
      out.push({ key: t.key, resolvedAt: rec?.status === 'resolved' ? (rec.resolvedAt ?? rec.updatedAt) : null });
    }
    return out;
  }

  async function lookUp(r: CustomerRecord): Promise<void> {
    if (r.lookedUp) return;
    try {
      const c = await opts.crm();
      if (!c) return;
      const found = await c.port.findCustomer(c.account, { telegramUserId: r.userId });
      // Only an answer counts: after a failed lookup the next form looks again.
      r.lookedUp = true;
      if (found) r.known = { crm: c.crm, account: c.account, contactId: found.contactId, companyId: found.companyId, identifier: found.email ? { kind: 'email', value: found.email } : found.phone ? { kind: 'phone', value: found.phone } : null };
    } catch (err) {
      // Not knowing them only means asking for the email.
      log.warn('intake: CRM lookup by Telegram id failed', { user: r.userId, error: errorMessage(err) });
    }
  }

  // ---------------------------------------------------------------- incoming

  type Incoming = { kind: 'message'; userId: string; msgId: number; text: string; contact: { phone: string; own: boolean } | null; media: boolean } | { kind: 'callback'; userId: string; queryId: string; msgId: number; data: string } | { kind: 'edit'; userId: string; msgId: number; text: string };

  async function onIncoming(inc: Incoming, who: { langCode: string | null; name: string } | undefined): Promise<void> {
    const now = timers.now();
    let r = await load(inc.userId);
    if (!r) {
      r = fresh(inc.userId, who?.langCode ?? null, who?.name ?? inc.userId);
      customers += 1;
    }
    if (inc.kind === 'callback') {
      await bot?.answerCallback(inc.queryId, r.promptMsgId === inc.msgId ? undefined : TEXTS[r.lang].staleButton);
      if (r.promptMsgId !== inc.msgId || !r.form) return;
      if (await isBlocked(r.userId)) return;
      applyForm(r, stepForm(r.form, { kind: 'button', data: inc.data }, now, r.lang, s.form, knownIdentifier(r)), now);
      await save(r);
      return;
    }
    if (inc.kind === 'edit') {
      const map = RelayInSchema.safeParse(await store.kvGet(NS.relay, `in:${inc.userId}:${inc.msgId}`));
      if (!map.success || map.data.topicMsgId === null) return;
      const t = r.tickets.at(-1);
      if (t) push(r, { kind: 'in', ticketKey: t.key, msgId: inc.msgId, edit: inc.text });
      await save(r);
      return;
    }
    if (inc.msgId <= r.lastInId) return; // seen before (catch-up after a restart)
    r.lastInId = inc.msgId;
    handled.messages += 1;
    if (await isBlocked(r.userId)) {
      handled.dropped += 1;
      return void (await save(r));
    }
    r.recent = [...r.recent.filter((t) => t > now - s.rateLimit.windowMs), now];
    if (r.recent.length > s.rateLimit.messages) {
      handled.dropped += 1;
      if (!r.tooFastAt || r.tooFastAt <= now - s.rateLimit.windowMs) {
        r.tooFastAt = now;
        push(r, { kind: 'say', text: TEXTS[r.lang].tooFast, markup: null, prompt: false });
      }
      return void (await save(r));
    }
    const text = inc.text.trim();
    const command = /^\/(start|new|cancel|stop)(?:@\w+)?\b/i.exec(text)?.[1]?.toLowerCase() ?? null;

    // A form in progress takes the message as an answer (or resumes on /start).
    if (r.form) {
      if ((command === 'start' || command === 'new') && r.lastPrompt && now - r.form.updatedAt <= s.form.expiresAfterMs) {
        // Coming back later: the same question again, the answers so far kept.
        push(r, { kind: 'say', text: r.lastPrompt.text, markup: r.lastPrompt.markup, prompt: 'inline' in (r.lastPrompt.markup ?? {}) });
        return void (await save(r));
      }
      let input: FormInput;
      const byLabel = r.buttons.find((b) => b.label === text);
      if (inc.contact) input = { kind: 'contact', phone: inc.contact.phone, ownContact: inc.contact.own };
      else if (byLabel) input = { kind: 'button', data: byLabel.data };
      else if (inc.media && !text) {
        push(r, { kind: 'say', text: TEXTS[r.lang].textPlease, markup: null, prompt: false });
        return void (await save(r));
      } else input = { kind: 'text', text };
      applyForm(r, stepForm(r.form, input, now, r.lang, s.form, knownIdentifier(r)), now);
      return void (await save(r));
    }

    const tickets = await openTickets(r);
    const open = tickets.filter((t) => t.resolvedAt === null);
    const opening = r.outbox.some((a) => a.kind === 'open');
    if (command === 'new' || command === 'start') {
      if (open.length + (opening ? 1 : 0) >= s.maxOpenTickets) {
        push(r, { kind: 'say', text: TEXTS[r.lang].capReached(open.length + (opening ? 1 : 0)), markup: null, prompt: false });
        return void (await save(r));
      }
      if (command === 'start' && (open.length || opening)) {
        push(r, { kind: 'say', text: TEXTS[r.lang].newHint, markup: null, prompt: false });
        return void (await save(r));
      }
      await lookUp(r);
      applyForm(r, startForm(r.lang, now, s.form, knownIdentifier(r)), now);
      return void (await save(r));
    }
    if (command === 'cancel' || command === 'stop') return void (await save(r));

    // An open ticket, or one being opened (then the copy waits behind the opening step and goes to the new ticket).
    const current = opening ? '' : open.at(-1)?.key;
    if (current !== undefined) {
      push(r, { kind: 'in', ticketKey: current, msgId: inc.msgId });
      return void (await save(r));
    }
    // Resolved lately: reopen and relay.
    const last = tickets.at(-1);
    if (last && last.resolvedAt !== null && now - last.resolvedAt <= s.reopenWindowMs) {
      push(r, { kind: 'reopen', ticketKey: last.key });
      push(r, { kind: 'in', ticketKey: last.key, msgId: inc.msgId });
      return void (await save(r));
    }
    // Anything else opens the form; the message itself only starts it.
    await lookUp(r);
    applyForm(r, startForm(r.lang, now, s.form, knownIdentifier(r)), now);
    await save(r);
  }

  // ---------------------------------------------------------------- topic side

  async function onTopicMessage(m: Api.Message, channelId: string, edit: boolean): Promise<void> {
    if (!bot || !selfId) return;
    await relayTopicMessage(m, channelId, edit);
    // The cursor moves only once the message is queued for the customer: a crash before re-reads it after the restart.
    if (!edit && m.id > ((await store.kvGet<number>(NS.state, `cursor:${channelId}`)) ?? 0)) await store.kvPut(NS.state, `cursor:${channelId}`, m.id);
  }

  async function relayTopicMessage(m: Api.Message, channelId: string, edit: boolean): Promise<void> {
    const from = m.fromId instanceof Api.PeerUser ? m.fromId.userId.toString() : null;
    if (!from || from === selfId) return;
    const topicId = topicOfMessage(m);
    const groupId = await groupOfChannel(channelId);
    if (!groupId) return;
    const ticket = await store.findTicketByTopic(groupId, topicId);
    if (!ticket) return;
    const link = await store.kvGet<{ userId: string }>(NS.tickets, ticket.key);
    if (!link) return;
    const cfg = (await store.getConfig())?.config;
    if (!cfg?.agents.some((a) => a.telegramUserId === from)) return; // only the team's agents reach the customer
    const text = m.message ?? '';
    if (s.notePrefixes.some((p) => text.trimStart().toLowerCase().startsWith(p.toLowerCase()))) return;
    if (/^\/[a-z_]+/i.test(text.trimStart())) return; // commands (/resolve, /reassign, ...) are for Tierline
    const queued = await lock(link.userId, async () => {
      const r = await load(link.userId);
      if (!r) return false;
      if (edit) {
        const map = RelayOutSchema.safeParse(await store.kvGet(NS.relay, `out:${channelId}:${m.id}`));
        if (!map.success || map.data.chatMsgId === null) return false;
        push(r, { kind: 'out', channelId, msgId: m.id, edit: text });
      } else {
        if (await store.kvGet(NS.relay, `out:${channelId}:${m.id}`)) return false;
        if (r.outbox.some((a) => a.kind === 'out' && a.channelId === channelId && a.msgId === m.id && a.edit === undefined)) return false;
        push(r, { kind: 'out', channelId, msgId: m.id });
      }
      await save(r);
      return true;
    });
    if (queued) void drive(link.userId);
  }

  /** An agent deleted messages in a topic: their copies in the customer's chat go too (customers' own deletions in
   * a private chat are not reported to bots, so those copies stay in the topic). */
  async function onTopicDeletes(channelId: string, ids: number[]): Promise<void> {
    for (const id of ids) {
      const map = RelayOutSchema.safeParse(await store.kvGet(NS.relay, `out:${channelId}:${id}`));
      if (!map.success || map.data.chatMsgId === null) continue;
      const userId = map.data.userId;
      await lock(userId, async () => {
        const r = await load(userId);
        if (!r) return;
        push(r, { kind: 'out', channelId, msgId: id, delete: true });
        await save(r);
      });
      void drive(userId);
    }
  }

  // ---------------------------------------------------------------- steps

  type StepResult = { done: boolean; apply?: (r: CustomerRecord) => void | Promise<void> };

  /** Runs a customer's pending steps in order; stops at the first that has to wait (kept for the next kick). */
  async function runOutbox(userId: string): Promise<void> {
    for (;;) {
      if (!bot || stopped) return;
      const r = await lock(userId, () => load(userId));
      const a = r?.outbox[0];
      if (!r || !a) return;
      let res: StepResult;
      try {
        res = await runStep(r, a);
      } catch (err) {
        note(err);
        const code = err instanceof AppError ? err.code : 'upstream';
        if (code === 'rate_limited' || code === 'upstream' || a.kind === 'open') {
          log.warn('intake step will be retried', { user: userId, step: a.kind, error: errorMessage(err) });
          if (a.kind === 'open')
            await lock(userId, async () => {
              const cur = await load(userId);
              const head = cur?.outbox[0];
              if (!cur || head?.id !== a.id || head.kind !== 'open') return;
              head.attempts += 1;
              if (head.attempts === 3) {
                cur.seq += 1;
                cur.outbox.splice(1, 0, { id: cur.seq, kind: 'say', text: TEXTS[cur.lang].openFailed, markup: null, prompt: false });
              }
              await save(cur);
            });
          return;
        }
        log.error('intake step dropped', { user: userId, step: a.kind, error: errorMessage(err) });
        res = { done: true };
      }
      if (!res.done) return;
      await lock(userId, async () => {
        const cur = (await load(userId))!;
        cur.outbox = cur.outbox.filter((x) => x.id !== a.id);
        await res.apply?.(cur);
        await save(cur);
      });
      if (a.kind === 'open') await afterOpen(userId);
    }
  }

  async function priorityOf(ticketKey: string): Promise<number> {
    const t = await store.getTicket(ticketKey);
    return t?.segment?.tier ? RELAY_PRIORITY[t.segment.tier] : 0;
  }

  /** Done (or can never be done), or waiting for something (the topic); `apply` records what the step learned. */
  async function runStep(r: CustomerRecord, a: Action): Promise<StepResult> {
    const b = bot!;
    switch (a.kind) {
      case 'say': {
        const sent = await b.sendText(r.userId, a.text, a.markup, fnv64(a.randomKey ?? `intake:${r.userId}:${a.id}`), FORM_PRIORITY);
        return { done: true, apply: (cur) => void (a.prompt && sent.id !== null && (cur.promptMsgId = sent.id)) };
      }
      case 'open':
        return openTicket(r, a);
      case 'reopen': {
        const t = await store.getTicket(a.ticketKey);
        const reopened = await reopenTicket(store, timers, a.ticketKey, 'the customer wrote again in Telegram');
        if (t?.topic) {
          const channelId = await channelOfGroup(t.topic.groupId);
          if (channelId) await b.reopenTopic(channelId, t.topic.topicId);
        }
        return { done: true, apply: (cur) => void (reopened && push(cur, { kind: 'say', text: TEXTS[cur.lang].reopened, markup: null, prompt: false, randomKey: `intake:reopened:${a.ticketKey}:${t?.seq ?? 0}` })) };
      }
      case 'in': {
        // '' = the ticket that was being opened when the message came (its opening step ran before this one).
        const t = await store.getTicket(a.ticketKey || (r.tickets.at(-1)?.key ?? ''));
        if (!t?.topic) return { done: false }; // routed but no topic yet: the write-back of "routed" kicks us
        const channelId = await channelOfGroup(t.topic.groupId);
        if (!channelId) throw new AppError('misconfigured', `The intake bot cannot find the Telegram group "${t.topic.groupId}"; link the groups from the console.`);
        const key = `in:${r.userId}:${a.msgId}`;
        if (a.edit !== undefined) {
          const map = RelayInSchema.safeParse(await store.kvGet(NS.relay, key));
          if (map.success && map.data.topicMsgId !== null) await b.editText({ channelId: map.data.channelId }, map.data.topicMsgId, a.edit, await priorityOf(t.key));
          return { done: true };
        }
        const res = await b.copy({ userId: r.userId }, [a.msgId], { channelId, topicId: t.topic.topicId }, [fnv64(`intake:in:${r.userId}:${a.msgId}@${t.topic.topicId}`)], await priorityOf(t.key));
        if (!res.duplicate || !(await store.kvGet(NS.relay, key))) await store.kvPut(NS.relay, key, { userId: r.userId, channelId, topicMsgId: res.ids[0] ?? null }, { ttlMs: RELAY_MAP_TTL_MS });
        handled.relayedIn += 1;
        return { done: true };
      }
      case 'out': {
        const key = `out:${a.channelId}:${a.msgId}`;
        if (a.delete) {
          const map = RelayOutSchema.safeParse(await store.kvGet(NS.relay, key));
          if (map.success && map.data.chatMsgId !== null) await b.deleteInChat(r.userId, [map.data.chatMsgId], FORM_PRIORITY);
          return { done: true };
        }
        if (a.edit !== undefined) {
          const map = RelayOutSchema.safeParse(await store.kvGet(NS.relay, key));
          if (map.success && map.data.chatMsgId !== null) await b.editText({ userId: r.userId }, map.data.chatMsgId, a.edit, FORM_PRIORITY);
          return { done: true };
        }
        const res = await b.copy({ channelId: a.channelId }, [a.msgId], { userId: r.userId }, [fnv64(`intake:out:${a.channelId}:${a.msgId}`)], FORM_PRIORITY);
        if (!res.duplicate || !(await store.kvGet(NS.relay, key))) await store.kvPut(NS.relay, key, { userId: r.userId, chatMsgId: res.ids[0] ?? null }, { ttlMs: RELAY_MAP_TTL_MS });
        handled.relayedOut += 1;
        return { done: true };
      }
    }
  }

  const accepting = new Map<string, { ref: TicketRef; idempotencyKey: string }>();

  async function openTicket(r: CustomerRecord, a: Extract<Action, { kind: 'open' }>): Promise<StepResult> {
    const c = await opts.crm();
    if (!c) throw new AppError('misconfigured', 'No CRM is connected for the Telegram intake; connect HubSpot or Salesforce. Completed forms wait and are opened then.');
    const id = a.answers.identifier;
    const by = id.kind === 'email' ? { email: id.value } : { phone: id.value };
    let customer: { contactId: string; companyId: string | null } | null = null;
    if (r.known && r.known.crm === c.crm && r.known.account === c.account && r.known.contactId && r.known.identifier?.value === id.value) customer = { contactId: r.known.contactId, companyId: r.known.companyId };
    if (!customer) {
      const found = await c.port.findCustomer(c.account, by);
      if (found) {
        if (found.telegramUserId !== r.userId) await c.port.linkTelegramUser(c.account, found.contactId, r.userId);
        customer = { contactId: found.contactId, companyId: found.companyId };
      } else if (s.createContacts) {
        const made = await c.port.createContact(c.account, { ...by, name: r.name, telegramUserId: r.userId });
        customer = { contactId: made.contactId, companyId: made.companyId };
      }
    }
    const subject = `${a.answers.product}: ${a.answers.description.replace(/\s+/g, ' ').slice(0, 80)}`;
    const ref = await c.port.createTicket(c.account, { subject, description: a.answers.description, contactId: customer?.contactId ?? null, companyId: customer?.companyId ?? null, product: a.answers.product, category: a.answers.category, language: a.lang, idempotencyKey: a.idempotencyKey });
    const key = ticketKey(ref);
    // The index first: once the pipeline has the ticket, its write-backs and topic must find the customer.
    await store.kvPut(NS.tickets, key, { userId: r.userId });
    accepting.set(r.userId, { ref, idempotencyKey: a.idempotencyKey });
    return {
      done: true,
      apply: (cur) => {
        if (!cur.tickets.some((t) => t.key === key)) cur.tickets.push({ key, ref, openedAt: timers.now(), idempotencyKey: a.idempotencyKey });
        cur.known = { crm: c.crm, account: c.account, contactId: customer?.contactId ?? null, companyId: customer?.companyId ?? null, identifier: id };
        push(cur, { kind: 'say', text: TEXTS[cur.lang].opened(`#${ref.ticketId}`), markup: null, prompt: false });
      },
    };
  }

  /** Hands the opened ticket to the pipeline, after the customer's record lists it (so its notices find them). */
  async function afterOpen(userId: string): Promise<void> {
    const x = accepting.get(userId);
    if (!x) return;
    accepting.delete(userId);
    // Exactly once into routing: the pipeline keys the route step by ticket, so the CRM's own webhook for the same
    // ticket (HubSpot ticket.creation, the Salesforce outbound message) is the same step and is ignored. A crash
    // before this line leaves the ticket to that webhook, or to start(), which hands over every listed ticket the
    // store does not know yet.
    await opts.intake.accept([{ idempotencyKey: `telegram-intake:${x.idempotencyKey}`, ref: x.ref, reason: 'created', at: timers.now() }]);
    handled.opened += 1;
    log.info('intake ticket opened', { ticket: ticketKey(x.ref) });
  }

  // ---------------------------------------------------------------- updates

  async function savePts(pts: number | undefined): Promise<void> {
    if (!pts) return;
    const cur = (await store.kvGet<{ pts: number; date: number }>(NS.state, 'updates')) ?? { pts: 0, date: 0 };
    if (pts > cur.pts) await store.kvPut(NS.state, 'updates', { pts, date: cur.date });
  }

  function incomingOf(m: Api.TypeMessage): Incoming | null {
    if (!(m instanceof Api.Message) || m.out || !(m.peerId instanceof Api.PeerUser)) return null;
    const userId = m.peerId.userId.toString();
    if (userId === selfId) return null;
    const contact = m.media instanceof Api.MessageMediaContact ? { phone: m.media.phoneNumber, own: m.media.userId?.toString() === userId } : null;
    const media = !!m.media && !contact;
    return { kind: 'message', userId, msgId: m.id, text: m.message ?? '', contact, media };
  }

  /** Handles one incoming private event under the customer's lock, then lets their steps run. */
  async function incoming(inc: Incoming, who: { langCode: string | null; name: string } | undefined): Promise<void> {
    await lock(inc.userId, () => onIncoming(inc, who));
    void drive(inc.userId);
  }

  async function handleUpdate(u: unknown): Promise<void> {
    if (!bot) return;
    const entities = (u as { _entities?: Map<unknown, unknown> })._entities;
    const people = await bot.learn(entities);
    if (u instanceof Api.UpdateNewMessage) {
      const inc = incomingOf(u.message);
      if (inc) await incoming(inc, people.get(inc.userId));
      await savePts(u.pts);
    } else if (u instanceof Api.UpdateShortMessage) {
      // Telegram's short form of a private text message (the sender is already known to us, so no user object).
      if (!u.out) {
        const userId = u.userId.toString();
        await incoming({ kind: 'message', userId, msgId: u.id, text: u.message ?? '', contact: null, media: false }, people.get(userId));
      }
      await savePts(u.pts);
    } else if (u instanceof Api.UpdateEditMessage) {
      const m = u.message;
      if (m instanceof Api.Message && !m.out && m.peerId instanceof Api.PeerUser) {
        const userId = m.peerId.userId.toString();
        await incoming({ kind: 'edit', userId, msgId: m.id, text: m.message ?? '' }, people.get(userId));
      }
      await savePts(u.pts);
    } else if (u instanceof Api.UpdateBotCallbackQuery) {
      const userId = u.userId.toString();
      const data = u.data ? Buffer.from(u.data).toString() : '';
      await incoming({ kind: 'callback', userId, queryId: u.queryId.toString(), msgId: u.msgId, data }, people.get(userId));
    } else if (u instanceof Api.UpdateDeleteChannelMessages) {
      await onTopicDeletes(u.channelId.toString(), u.messages);
    } else if (u instanceof Api.UpdateNewChannelMessage || u instanceof Api.UpdateEditChannelMessage) {
      const m = u.message;
      if (m instanceof Api.Message && m.peerId instanceof Api.PeerChannel) await onTopicMessage(m, m.peerId.channelId.toString(), u instanceof Api.UpdateEditChannelMessage);
    }
  }

  function onUpdate(u: unknown): void {
    updates = updates.then(() => handleUpdate(u)).catch((err) => {
      note(err);
      log.error('intake update failed', { error: errorMessage(err) });
    });
  }

  /** What arrived while the bot was not connected: private messages since the saved pts, topic messages by id. */
  async function catchUp(): Promise<void> {
    const b = bot!;
    const saved = await store.kvGet<{ pts: number; date: number }>(NS.state, 'updates');
    if (!saved) {
      await store.kvPut(NS.state, 'updates', await b.state());
    } else {
      let cur = saved;
      for (let i = 0; i < 20; i++) {
        const d = await b.difference(cur.pts, cur.date);
        if (!d.state) break;
        const people = await b.learn(d.entities);
        for (const m of d.messages) {
          const inc = incomingOf(m);
          if (inc) await incoming(inc, people.get(inc.userId));
        }
        await store.kvPut(NS.state, 'updates', d.state);
        if (d.state.pts <= cur.pts) break;
        cur = d.state;
      }
    }
    // Tickets opened in the CRM whose hand-over to the pipeline a crash may have cut: accepting again is a no-op.
    const channels = new Set<string>();
    const all = await store.kvList<unknown>(NS.customers);
    customers = all.length;
    for (const { value } of all) {
      const p = CustomerSchema.safeParse(value);
      if (!p.success) continue;
      if (p.data.outbox.length) pending.add(p.data.userId);
      for (const t of p.data.tickets) {
        const rec = await store.getTicket(t.key);
        if (!rec) await opts.intake.accept([{ idempotencyKey: `telegram-intake:${t.idempotencyKey}`, ref: t.ref, reason: 'created', at: timers.now() }]);
        else if (rec.topic && rec.status !== 'resolved') {
          const ch = await channelOfGroup(rec.topic.groupId);
          if (ch) channels.add(ch);
        }
      }
    }
    // Topic messages of open intake tickets after the last one seen.
    for (const ch of channels) {
      let from = ((await store.kvGet<number>(NS.state, `cursor:${ch}`)) ?? 0) + 1;
      for (let page = 0; page < 20; page++) {
        const ids = Array.from({ length: 50 }, (_, i) => from + i);
        const { messages, entities } = await b.channelMessages(ch, ids);
        await b.learn(entities);
        for (const m of messages) if (m instanceof Api.Message) await onTopicMessage(m, ch, false);
        if (!messages.some((m) => !(m instanceof Api.MessageEmpty))) break;
        from += 50;
      }
    }
  }

  async function kick(): Promise<void> {
    if (!bot) return;
    await absorbNotices();
    await Promise.all([...pending].map((u) => drive(u)));
  }

  function scheduleRetry(): void {
    if (stopped) return;
    retryTimer = timers.setTimer(() => {
      void kick().finally(scheduleRetry);
    }, s.retryMs);
  }

  // ---------------------------------------------------------------- CRM write-backs -> the customer

  function observe(port: CrmPort): CrmPort {
    const observed: CrmPort = {
      crm: port.crm,
      fetchContext: (ref) => port.fetchContext(ref),
      async writeBack(ref, update) {
        await port.writeBack(ref, update);
        try {
          await onOutcome(update.entry.ticketKey, update.entry.kind, update.entry.key, update.entry.agentId);
        } catch (err) {
          // The customer's notice is ours to retry; the CRM write-back itself succeeded.
          log.warn('intake: could not queue the customer notice', { ticket: update.entry.ticketKey, error: errorMessage(err) });
        }
      },
    };
    // The port's optional parts pass through unchanged (a workflow action waiting on notRouted must not hang).
    if (port.reserveWriteBack) observed.reserveWriteBack = (ref, entryKey) => port.reserveWriteBack!(ref, entryKey);
    if (port.notRouted) observed.notRouted = (ref, reason) => port.notRouted!(ref, reason);
    return observed;
  }

  /**
   * A write-back happened (on whichever instance ran it): the notice is queued under its own key (the history entry's),
   * never by changing the customer's record here, so an instance without the bot cannot race the one that has it.
   */
  async function onOutcome(key: string, kind: string, entryKey: string, agentId: string | null): Promise<void> {
    if (!NOTICE_KINDS.has(kind)) return;
    const link = await store.kvGet<{ userId: string }>(NS.tickets, key);
    if (!link) return;
    await store.kvPut(NS.notices, entryKey, { userId: link.userId, kind, agentId });
    if (bot) void absorbNotices().then(() => drive(link.userId));
  }

  /** Moves queued notices into their customers' outboxes (once each: the entry key is remembered). */
  async function absorbNotices(): Promise<void> {
    for (const { key: entryKey, value } of await store.kvList<{ userId: string; kind: string; agentId: string | null }>(NS.notices)) {
      await lock(value.userId, async () => {
        const r = await load(value.userId);
        if (r && !r.notified.includes(entryKey)) {
          const cfg = (await store.getConfig())?.config;
          const agent = value.agentId ? (cfg?.agents.find((a) => a.id === value.agentId)?.name ?? null) : null;
          const t = TEXTS[r.lang];
          const k = value.kind;
          const text = k === 'resolved' ? t.resolved(Math.round(s.reopenWindowMs / 86_400_000)) : agent ? t.taken(agent) : k === 'routed' ? t.waiting : null;
          r.notified = [...r.notified, entryKey].slice(-50);
          if (text) push(r, { kind: 'say', text, markup: null, prompt: false, randomKey: `intake:note:${entryKey}` });
          await save(r);
        }
        await store.kvDelete(NS.notices, entryKey);
      });
    }
  }

  // ---------------------------------------------------------------- admin API

  const routes = new Hono();
  const authed = (h: string | undefined) => {
    const want = opts.adminToken?.() ?? '';
    const got = (h ?? '').replace(/^Bearer\s+/i, '');
    return !!want && got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want));
  };
  routes.use('/api/v1/intake/*', async (c, next) => {
    if (!authed(c.req.header('authorization'))) return c.json({ error: { code: 'unauthorized', message: 'Send the admin token as "Authorization: Bearer <ADMIN_TOKEN>".' } }, 401);
    await next();
  });
  routes.get('/api/v1/intake/blocked', async (c) => c.json({ blocked: [...s.blocked.map((id) => ({ telegramUserId: id, reason: 'configuration', at: null })), ...(await store.kvList<{ reason: string; at: number }>(NS.blocked)).map(({ key, value }) => ({ telegramUserId: key, reason: value.reason, at: value.at }))] }));
  routes.put('/api/v1/intake/blocked/:id', async (c) => {
    const id = c.req.param('id');
    if (!/^\d{1,20}$/.test(id)) return c.json({ error: { code: 'invalid_input', message: 'The id must be a numeric Telegram user id.' } }, 400);
    const body = (await c.req.json().catch(() => ({}))) as { reason?: unknown };
    await block(id, typeof body.reason === 'string' ? body.reason.slice(0, 200) : 'blocked by an admin');
    return c.json({ telegramUserId: id, blocked: true });
  });
  routes.delete('/api/v1/intake/blocked/:id', async (c) => c.json({ telegramUserId: c.req.param('id'), blocked: !(await unblock(c.req.param('id'))) && s.blocked.includes(c.req.param('id')) }));

  async function block(userId: string, reason = 'blocked by an admin'): Promise<void> {
    await store.kvPut(NS.blocked, userId, { reason, at: timers.now() });
  }
  async function unblock(userId: string): Promise<boolean> {
    return store.kvDelete(NS.blocked, userId);
  }

  // ---------------------------------------------------------------- lifecycle

  return {
    mode: opts.mode,
    routes,
    observe,
    block,
    unblock,
    kick,
    botId: () => selfId,
    async start() {
      if (client) return;
      // Started again after stop() (a new election won): fresh pacing, the outbox carries on where it was.
      if (stopped) {
        stopped = false;
        pacers = newPacers();
      }
      try {
        const c = await connectBot({ mode: opts.mode, env: opts.env, store, secrets: opts.secrets, sandbox: opts.sandbox });
        client = c.client;
        selfId = c.self.id.toString();
        selfName = c.self.username ? `@${c.self.username}` : (c.self.firstName ?? selfId);
        bot = createBotApi({ client, pacers, store, logger: log, selfId });
        client.addEventHandler((u: unknown) => onUpdate(u), new Raw({}));
        await catchUp();
        await kick();
        scheduleRetry();
        log.info('telegram intake bot connected', { bot: selfName });
      } catch (err) {
        note(err);
        const retry = err instanceof AppError && (err.code === 'upstream' || err.code === 'rate_limited');
        log.error('telegram intake bot could not start', { error: errorMessage(err), retryInMs: retry ? 30_000 : null });
        const c = client as TelegramClient | null;
        client = null;
        bot = null;
        await c?.destroy().catch(() => {});
        if (retry && !stopped) retryTimer = timers.setTimer(() => void this.start(), 30_000);
      }
    },
    async stop() {
      stopped = true;
      retryTimer?.();
      pacers.chats.stop();
      pacers.groups.stop();
      const c = client;
      client = null;
      bot = null;
      // Steps still in flight are not waited for (an answer may never come); each is in its customer's outbox until
      // it is done and runs again, with the same random_id, on the next start.
      await c?.destroy().catch(() => {});
    },
    async idle() {
      for (let i = 0; i < 50; i++) {
        const u = updates;
        await u;
        // A step whose answer never comes (a cut connection) must not hold idle() forever.
        await Promise.race([Promise.all([...locks.values(), ...running.values()]), settle(30)]);
        await settle(2);
        if (u === updates && !locks.size) return;
      }
    },
    async health(): Promise<ConnectorHealth> {

      return {
        ok: !!bot,
        mode: opts.mode,
        detail: [bot ? `intake bot ${selfName}` : `intake bot not connected${lastError ? `: ${lastError}` : ''}`, `${customers} customers`, `${pending.size} with pending steps`, `${handled.opened} tickets opened`].join(' · '),
        lastError,
        relayed: { in: handled.relayedIn, out: handled.relayedOut },
        dropped: handled.dropped,
        pacing: { queued: pacers.chats.stats().queued + pacers.groups.stats().queued, floodWaits: pacers.chats.stats().floodWaits + pacers.groups.stats().floodWaits },
      };
    },
  };
}
