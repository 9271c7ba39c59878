// The intake bot against the Telegram sandbox through GramJS (a second client, logged in as the sandbox bot, next to
// the connector's user account), the real pipeline on the memory store, and a CRM that keeps contacts and tickets the
// way HubSpot or Salesforce would for the intake (idempotent ticket creation, Telegram id on the contact).
import { AppError } from '../../../../core/errors.ts';
import { parseRoutingConfig } from '../../../../core/config.ts';
import { createPipeline, type Pipeline } from '../../../../core/pipeline.ts';
import type { CrmContext, CrmCustomer, CrmIntakePort, CrmPort, CrmWriteBack, Store } from '../../../../core/ports.ts';
import { ticketKey, validateSegment, type TicketRef, type Tier } from '../../../../core/segment.ts';
import { createSecretBox } from '../../../../connectors/shared/secrets.ts';
import { createManualClock, type ManualClock } from '../../../../connectors/telegram/clock.ts';
import { createTelegramConnector, type TelegramConnector } from '../../../../connectors/telegram/index.ts';
import { createTelegramIntake, type IntakeSettings, type TelegramIntake } from '../../../../connectors/telegram/intake/index.ts';
import { createTelegramSandbox, SANDBOX_BOT, SANDBOX_GROUPS, type TelegramSandbox } from '../../../../connectors/telegram/sandbox/index.ts';
import { createMemoryStore } from '../../../../server/storage/memory-store.ts';
import { SAMPLE_CONFIG } from '../../../../server/sandbox/sample-config.ts';
import { silentLogger } from '../harness.ts';

export const BOT = SANDBOX_BOT.id;
export const BILL = '8000000001'; // en, known by email bill.lumbergh@initech.example
export const HANK = '8000000002'; // de, known by phone +493055501001
export const NORA = '8000000004'; // de-AT, unknown
export const channelOf = (groupId: string) => SANDBOX_GROUPS.find((g) => g.id === groupId)!.channelId;

type Contact = CrmCustomer & { tier: Tier | null; companyName: string | null };

/** A CRM with what the intake needs; tickets it creates are what fetchContext reads back. */
export function fakeIntakeCrm() {
  const contacts: Contact[] = [
    { contactId: 'c-1', companyId: 'co-1', name: 'Bill Lumbergh', email: 'bill.lumbergh@initech.example', phone: '+15125550100', telegramUserId: null, tier: 'enterprise', companyName: 'Initech' },
    { contactId: 'c-2', companyId: 'co-2', name: 'Hank Scorpio', email: 'hank.scorpio@globex.example', phone: '+493055501001', telegramUserId: null, tier: 'premium', companyName: 'Globex' },
  ];
  const tickets = new Map<string, { ref: TicketRef; subject: string; description: string; contactId: string | null; companyId: string | null; product: string; category: string; language: string }>();
  const byKey = new Map<string, string>();
  const writes: (CrmWriteBack & { ref: TicketRef })[] = [];
  const calls: string[] = [];
  let failCreate = 0;
  let failFind = 0;
  let next = 900;
  const pub = (c: Contact): CrmCustomer => ({ contactId: c.contactId, companyId: c.companyId, name: c.name, email: c.email, phone: c.phone, telegramUserId: c.telegramUserId });
  const intake: CrmIntakePort = {
    async findCustomer(_account, by) {
      calls.push(`find:${JSON.stringify(by)}`);
      if (failFind > 0) {
        failFind -= 1;
        throw new AppError('upstream', 'HubSpot answered 503; try again.');
      }
      const c = contacts.find((x) => (by.telegramUserId && x.telegramUserId === by.telegramUserId) || (by.email && x.email === by.email) || (by.phone && x.phone === by.phone));
      return c ? pub(c) : null;
    },
    async createContact(_account, c) {
      calls.push('createContact');
      const made: Contact = { contactId: `c-${contacts.length + 1}`, companyId: null, name: c.name ?? null, email: c.email ?? null, phone: c.phone ?? null, telegramUserId: c.telegramUserId, tier: null, companyName: null };
      contacts.push(made);
      return pub(made);
    },
    async linkTelegramUser(_account, contactId, telegramUserId) {
      calls.push(`link:${contactId}`);
      contacts.find((c) => c.contactId === contactId)!.telegramUserId = telegramUserId;
    },
    async createTicket(account, t) {
      calls.push('createTicket');
      if (failCreate > 0) {
        failCreate -= 1;
        throw new AppError('upstream', 'HubSpot answered 502; retried.');
      }
      const had = byKey.get(t.idempotencyKey);
      if (had) return tickets.get(had)!.ref;
      const ref: TicketRef = { crm: 'hubspot', account, ticketId: String(next++) };
      tickets.set(ticketKey(ref), { ref, ...t });
      byKey.set(t.idempotencyKey, ticketKey(ref));
      return ref;
    },
  };
  const port: CrmPort = {
    crm: 'hubspot',
    async fetchContext(ref) {
      const t = tickets.get(ticketKey(ref));
      if (!t) throw new AppError('not_found', 'gone');
      const c = contacts.find((x) => x.contactId === t.contactId) ?? null;
      const { segment, issues } = validateSegment({ tier: c?.tier ?? null, product: t.product, category: t.category, language: t.language, source: { ref, companyId: t.companyId, contactId: t.contactId } });
      const ctx: CrmContext = { ref, subject: t.subject, description: t.description, customerName: c?.name ?? null, companyName: c?.companyName ?? null, recordUrl: `https://crm.example/${ref.ticketId}`, segment, issues };
      return ctx;
    },
    async writeBack(ref, update) {
      if (writes.some((w) => w.entry.key === update.entry.key)) return;
      writes.push({ ...structuredClone(update), ref });
    },
  };
  return { intake, port, contacts, tickets, writes, calls, failCreate: (n: number) => void (failCreate = n), failFind: (n: number) => void (failFind = n) };
}

export type IntakeHarness = {
  clock: ManualClock;
  sandbox: TelegramSandbox;
  store: Store;
  crm: ReturnType<typeof fakeIntakeCrm>;
  pipeline: Pipeline;
  connector: TelegramConnector;
  intake: TelegramIntake;
  /** Builds a new intake on the same store and sandbox (a restart); the old one must be stopped first. */
  restart(settings?: Partial<IntakeSettings>): Promise<TelegramIntake>;
  /** Runs everything until nothing moves: updates, intake steps, pipeline steps, Telegram events. */
  settle(): Promise<void>;
  say(userId: string, text: string): Promise<void>;
  press(userId: string, label: string): Promise<void>;
  /** The bot's messages to the customer since the last call. */
  heard(userId: string): string[];
  lastButtons(userId: string): string[];
  stop(): Promise<void>;
};

export async function setupIntake(o: { settings?: Partial<IntakeSettings>; crm?: ReturnType<typeof fakeIntakeCrm> } = {}): Promise<IntakeHarness> {
  const clock = createManualClock();
  const sandbox = createTelegramSandbox({ seed: true, clock });
  const store = createMemoryStore({ clock });
  await store.saveConfig(parseRoutingConfig(SAMPLE_CONFIG), { author: 'test', note: '', at: clock.now() });
  const crm = o.crm ?? fakeIntakeCrm();
  const secrets = createSecretBox('telegram-tests-secrets-key-0123456789abcdef');
  const groups = parseRoutingConfig(SAMPLE_CONFIG).groups;
  let pipeline!: Pipeline;
  const intakes: TelegramIntake[] = [];
  const build = (settings?: Partial<IntakeSettings>) => {
    const i = createTelegramIntake({
      mode: 'sandbox',
      env: {},
      store,
      secrets,
      logger: silentLogger(),
      clock,
      intake: { accept: (e) => pipeline.intake.accept(e) },
      crm: async () => ({ crm: 'hubspot', account: '42', port: crm.intake }),
      groups: () => groups,
      sandbox,
      settings: { ...o.settings, ...settings },
      adminToken: () => 'admin-token-for-tests',
      pacing: { perChatPerMinute: 10_000, perGroupPerMinute: 10_000, perAccountPerSecond: 10_000 },
    });
    intakes.push(i);
    return i;
  };
  let intake = build();
  const observed = { port: crm.port };
  const connector = createTelegramConnector({
    mode: 'sandbox',
    env: {},
    store,
    secrets,
    logger: silentLogger(),
    clock,
    groups: () => groups,
    onEvent: (e) => pipeline.onMessengerEvent(e),
    openTopics: async () => (await store.tickets({ open: true })).flatMap((t) => (t.topic ? [t.topic] : [])),
    sandbox,
  });
  pipeline = createPipeline({ store, clock, logger: silentLogger(), crm: () => intakes.at(-1)!.observe(observed.port), messenger: connector.messenger });
  await connector.start();
  await intake.start();
  const seen = new Map<string, number>();

  const h: IntakeHarness = {
    clock,
    sandbox,
    store,
    crm,
    pipeline,
    connector,
    get intake() {
      return intake;
    },
    async restart(settings) {
      intake = build(settings);
      await intake.start();
      await h.settle();
      return intake;
    },
    async settle() {
      for (let i = 0; i < 40; i++) {
        await clock.advance(0);
        await connector.idle();
        await intake.idle();
        const r = await pipeline.runDue();
        await clock.advance(0);
        await connector.idle();
        await intake.idle();
        if (r.jobs === 0 && r.timers === 0 && i > 1) {
          // one more round to be sure nothing was queued by the last events
          const again = await pipeline.runDue();
          if (again.jobs === 0) return;
        }
      }
    },
    async say(userId, text) {
      sandbox.chats!.send(userId, BOT, { text });
      await h.settle();
    },
    async press(userId, label) {
      const chat = sandbox.chats!.chat(userId, BOT);
      const m = [...chat].reverse().find((x) => x.buttons.flat().some((b) => b.label === label));
      if (!m) throw new Error(`no button "${label}" in the chat; last: ${JSON.stringify(chat.at(-1))}`);
      sandbox.chats!.press(userId, m.id, m.buttons.flat().find((b) => b.label === label)!.data);
      await h.settle();
    },
    heard(userId) {
      const chat = sandbox.chats!.chat(userId, BOT).filter((m) => m.fromBot);
      const from = seen.get(userId) ?? 0;
      seen.set(userId, chat.length);
      return chat.slice(from).map((m) => m.text);
    },
    lastButtons(userId) {
      const m = sandbox.chats!.chat(userId, BOT).filter((x) => x.fromBot).at(-1);
      return [...(m?.buttons.flat().map((b) => b.label) ?? []), ...(m?.keyboard?.flat().map((b) => b.label) ?? [])];
    },
    async stop() {
      for (const i of intakes) await i.stop();
      await connector.stop();
    },
  };
  return h;
}
