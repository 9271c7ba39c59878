// The intake as `npm start` wires it with no credentials: the sandbox bot next to the sandbox user account, the
// HubSpot sandbox as the CRM. A customer known to HubSpot fills in the form; the ticket is created in HubSpot with
// contact and company, routes once (the HubSpot webhook for the same ticket is the same step) into a topic with the
// company's tier, the agent's answer reaches the customer, and the Telegram id is on the contact.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { PrivateChats } from '../../../../connectors/telegram/sandbox/index.ts';
import { loadEnv } from '../../../../server/env.ts';
import { silentLogger } from '../../../../server/logger.ts';
import { startService, type Service } from '../../../../server/service.ts';

let s: Service | null = null;
let dir = '';
afterEach(async () => {
  await s?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('opens a HubSpot ticket from the Telegram form, routes it once and relays the answer', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tierline-intake-'));
  s = await startService({ env: loadEnv({ DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', SAMPLE_TICKETS_PER_MINUTE: '0' }), logger: silentLogger, simulatedAgents: false });
  const forum = s.forum as unknown as { chats: PrivateChats; botUserId: string };
  const { chats, botUserId: bot } = forum;
  const BILL = '8000000001';
  const botSays = () => chats.chat(BILL, bot).filter((m) => m.fromBot);
  const waitFor = (text: string | RegExp) => until(`the bot to say ${text}`, () => botSays().find((m) => (typeof text === 'string' ? m.text.includes(text) : text.test(m.text))));
  const press = async (label: string) => {
    const m = [...chats.chat(BILL, bot)].reverse().find((x) => x.buttons.flat().some((b) => b.label === label))!;
    chats.press(BILL, m.id, m.buttons.flat().find((b) => b.label === label)!.data);
  };

  chats.send(BILL, bot, { text: '/start' });
  await waitFor('What is your email address?');
  chats.send(BILL, bot, { text: 'bill.lumbergh@initech.example' });
  await waitFor('Which product');
  await press('API');
  await waitFor('What kind of problem');
  await press('Technical');
  await waitFor('Please describe');
  chats.send(BILL, bot, { text: 'Webhooks are delivered twice since the upgrade.' });
  await waitFor('Please check');
  await press('✅ Send');
  const opened = await waitFor(/^Your ticket #\d+ is open/);
  const ticketId = /#(\d+)/.exec(opened.text)![1]!;
  await waitFor('has taken your ticket');

  const hs = s.sandboxes.hubspot!;
  const t = hs.ticket(ticketId)!;
  expect(t.properties).toMatchObject({ tierline_product: 'API', hs_ticket_category: 'PRODUCT_ISSUE', hs_language: 'en' });
  expect(t.companyIds).toEqual([hs.companyByName('Initech')!.id]);
  const contact = hs.contacts().find((c) => c.properties.email === 'bill.lumbergh@initech.example')!;
  expect(t.contactIds).toEqual([contact.id]);
  expect(contact.properties.tierline_telegram_user_id).toBe(BILL);

  const rec = await until('the routed ticket', async () => (await s!.store.tickets({ open: true })).find((x) => x.ref.ticketId === ticketId && x.topic));
  expect(rec.segment?.tier).toBe('enterprise');
  const channel = s.forum!.groups().find((g) => g.id === rec.topic!.groupId)!.channelId;
  expect(s.forum!.topics(channel).filter((x) => x.title.includes('Webhooks are delivered twice'))).toHaveLength(1);

  await s.forum!.reply(channel, rec.topic!.topicId, '7000000001', 'Hi Bill, we are on it.');
  await waitFor('Hi Bill, we are on it.');
  const health = (await (await fetch(`${s.url}/readyz`)).json()) as { connectors: Record<string, { ok: boolean }> };
  expect(health.connectors['telegram-intake']).toMatchObject({ ok: true });
});

it('lets a person play the customer in the console: the form from the simulated chat, buttons included', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tierline-intake-'));
  s = await startService({ env: loadEnv({ DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', SAMPLE_TICKETS_PER_MINUTE: '0' }), logger: silentLogger, simulatedAgents: false });
  const token = readFileSync(s.adminTokenFile!, 'utf8').trim();
  const form = (f: Record<string, string>) => new URLSearchParams(f).toString();
  const page = await fetch(`${s.url}/login`);
  const nonceCookie = page.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const nonce = /name="_login" value="([^"]+)"/.exec(await page.text())![1]!;
  const signIn = await fetch(`${s.url}/login`, { method: 'POST', redirect: 'manual', headers: { cookie: nonceCookie, 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token, _login: nonce, next: '/' }) });
  const cookie = signIn.headers.getSetCookie().find((c) => /tierline_session=/.test(c))!.split(';')[0]!;
  const get = async (path: string) => (await fetch(`${s!.url}${path}`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await get('/forum/customer'))![1]!;
  const post = (path: string, f: Record<string, string>) => fetch(`${s!.url}${path}`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: form({ ...f, _csrf: csrf }) });

  expect(await get('/forum')).toContain('href="/forum/customer"');
  const ALICE = '8000000003';
  expect((await post('/forum/customer/send', { user: ALICE, text: 'Hello' })).status).toBe(303);
  const asked = await until('the first question in the console', async () => {
    const html = await get(`/forum/customer?user=${ALICE}`);
    return html.includes('What is your email address?') ? html : null;
  });
  expect(asked).toContain('Share my phone number');
  await post('/forum/customer/send', { user: ALICE, contact: '1' });
  const products = await until('the product buttons', async () => {
    const html = await get(`/forum/customer?user=${ALICE}`);
    return html.includes('Which product is it about?') ? html : null;
  });
  const message = /name="message" value="(\d+)"/.exec(products.slice(products.lastIndexOf('Which product is it about?')))![1]!;
  await post('/forum/customer/press', { user: ALICE, message, data: 'product:1' });
  await until('the category question', async () => (await get(`/forum/customer?user=${ALICE}`)).includes('What kind of problem is it?'));
});

it('opens a Salesforce Case instead when the intake is pointed at Salesforce, finding the customer by the shared phone', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tierline-intake-'));
  process.env.TELEGRAM_INTAKE_CRM = 'salesforce';
  try {
    s = await startService({ env: loadEnv({ DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', SAMPLE_TICKETS_PER_MINUTE: '0' }), logger: silentLogger, simulatedAgents: false });
  } finally {
    delete process.env.TELEGRAM_INTAKE_CRM;
  }
  const { chats, botUserId: bot } = s.forum as unknown as { chats: PrivateChats; botUserId: string };
  const HANK = '8000000002';
  const botSays = () => chats.chat(HANK, bot).filter((m) => m.fromBot);
  const waitFor = (text: string | RegExp) => until(`the bot to say ${text}`, () => botSays().find((m) => (typeof text === 'string' ? m.text.includes(text) : text.test(m.text))));
  const press = (data: string) => {
    const m = [...chats.chat(HANK, bot)].reverse().find((x) => x.buttons.flat().some((b) => b.data === data))!;
    chats.press(HANK, m.id, data);
  };
  chats.send(HANK, bot, { text: 'Hallo' });
  await waitFor('Wie lautet Ihre E-Mail-Adresse?');
  chats.send(HANK, bot, { contact: { phone: '49 30 5550 1001' } });
  await waitFor('Um welches Produkt geht es?');
  press('product:2');
  await waitFor('Welche Art von Problem');
  press('category:0');
  await waitFor('Bitte beschreiben Sie');
  chats.send(HANK, bot, { text: 'Die Oktoberrechnung wurde doppelt abgebucht.' });
  await waitFor('Bitte prüfen');
  press('confirm:send');
  const opened = await waitFor(/^Ihr Ticket #\w+ ist eröffnet/);
  const caseId = /#(\w+)/.exec(opened.text)![1]!;
  const sf = s.sandboxes.salesforce!;
  const globex = sf.accounts().find((a) => a.Name === 'Globex Corporation')!;
  expect(sf.case(caseId)).toMatchObject({ Origin: 'Telegram', Type: 'Billing', Language__c: 'de', AccountId: globex.Id });
  const hank = sf.contacts().find((c) => c.Id === sf.case(caseId)!.ContactId)!;
  expect(hank).toMatchObject({ LastName: 'Scorpio', Tierline_Telegram_User_Id__c: HANK });
  const rec = await until('the routed Case', async () => (await s!.store.tickets({ open: true })).find((x) => x.ref.ticketId === caseId && x.topic));
  expect(rec.segment?.tier).toBe('enterprise');
  await waitFor('kümmert sich um Ihr Ticket');
});
