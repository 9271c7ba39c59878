// What the Telegram intake bot needs from Salesforce (CrmIntakePort): the Contact by email (SOQL), by phone (SOSL,
// which matches however the number was typed) or by Telegram user id, with its Account; a Contact created when the
// admin allows it; the Telegram user id on the Contact (Tierline_Telegram_User_Id__c, an external id); and the Case
// with ContactId and AccountId. Both creates are upserts on an external id (the Telegram user id, the intake key
// Tierline_Intake_Key__c), so a retry after a lost answer finds the record the first attempt made.
import { AppError } from '../../core/errors.ts';
import type { CrmCustomer, CrmIntakePort } from '../../core/ports.ts';
import type { OrgSession } from './client.ts';

type ContactRow = { Id: string; Name?: string | null; Email?: string | null; Phone?: string | null; AccountId?: string | null; Tierline_Telegram_User_Id__c?: string | null };
type Upserted = { id?: string; success?: boolean; created?: boolean; errors?: { message?: string; errorCode?: string; statusCode?: string }[] };

const FIELDS = 'Id, Name, Email, Phone, AccountId, Tierline_Telegram_User_Id__c';
/** The form's categories as Case Type values; anything else is "Other". */
const CASE_TYPE: Record<string, string> = { billing: 'Billing', technical: 'Technical', account: 'Question' };
const ORG = /^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$/;

const soqlString = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** SOSL reserves ? & | ! { } [ ] ( ) ^ ~ * : \ " ' + - in a search term. */
const soslTerm = (v: string) => v.replace(/[?&|!{}[\]()^~*:\\"'+-]/g, (c) => `\\${c}`);

function toCustomer(r: ContactRow): CrmCustomer {
  return { contactId: r.Id, companyId: r.AccountId ?? null, name: r.Name ?? null, email: r.Email ?? null, phone: r.Phone ?? null, telegramUserId: r.Tierline_Telegram_User_Id__c ?? null };
}

function failed(what: string, r: Upserted): AppError {
  const e = r.errors?.[0];
  return new AppError('upstream', `Salesforce refused to ${what} (${e?.errorCode ?? e?.statusCode ?? 'error'}: ${(e?.message ?? '').slice(0, 200)}).`);
}

export function createSalesforceIntake(o: { session: (orgId: string) => Promise<OrgSession> }): CrmIntakePort {
  const org = async (account: string) => {
    if (!ORG.test(account)) throw new AppError('invalid_input', `"${account.slice(0, 40)}" is not a Salesforce org id (00D…); set the intake's CRM account to the org id.`);
    return o.session(account);
  };

  async function one(s: OrgSession, where: string): Promise<ContactRow | null> {
    const r = await s.run('read', 'find the Contact for the Telegram intake', async (conn) => await conn.query<ContactRow>(`SELECT ${FIELDS} FROM Contact WHERE ${where} LIMIT 1`, { autoFetch: false, maxFetch: 1 }));
    return (r.records?.[0] as ContactRow | undefined) ?? null;
  }

  return {
    async findCustomer(account, by) {
      const s = await org(account);
      if (by.telegramUserId) {
        const r = await one(s, `Tierline_Telegram_User_Id__c = ${soqlString(by.telegramUserId)}`);
        if (r) return toCustomer(r);
      }
      if (by.email) {
        const r = await one(s, `Email = ${soqlString(by.email.toLowerCase())}`);
        if (r) return toCustomer(r);
      }
      if (by.phone) {
        const sosl = `FIND {${soslTerm(by.phone)}} IN PHONE FIELDS RETURNING Contact(${FIELDS}) LIMIT 5`;
        const res = (await s.run('read', 'search Contacts by phone for the Telegram intake', (conn) => conn.search(sosl))) as unknown as { searchRecords?: ContactRow[] };
        const r = res.searchRecords?.[0];
        if (r) return toCustomer(r);
      }
      return null;
    },

    async createContact(account, c) {
      const s = await org(account);
      const parts = (c.name ?? '').trim().split(/\s+/).filter(Boolean);
      const last = parts.length > 1 ? parts.slice(1).join(' ') : parts[0] || c.email || c.phone || `Telegram ${c.telegramUserId}`;
      const rec: Record<string, unknown> = { Tierline_Telegram_User_Id__c: c.telegramUserId, LastName: last.slice(0, 80) };
      if (parts.length > 1) rec.FirstName = parts[0]!.slice(0, 40);
      if (c.email) rec.Email = c.email.toLowerCase();
      if (c.phone) rec.Phone = c.phone;
      const r = (await s.run('write', 'create the Contact for the Telegram intake', (conn) => conn.sobject('Contact').upsert(rec as never, 'Tierline_Telegram_User_Id__c'))) as unknown as Upserted;
      if (r.success === false) throw failed('create the Contact', r);
      const made = await one(s, `Tierline_Telegram_User_Id__c = ${soqlString(c.telegramUserId)}`);
      if (!made) throw new AppError('upstream', 'Salesforce created the Contact but does not return it yet; the step is retried.');
      return toCustomer(made);
    },

    async linkTelegramUser(account, contactId, telegramUserId) {
      const s = await org(account);
      // The id is unique across Contacts: if another Contact holds it (the customer identified as someone else
      // before), it moves to this one.
      const holder = await one(s, `Tierline_Telegram_User_Id__c = ${soqlString(telegramUserId)}`);
      if (holder?.Id === contactId) return;
      if (holder) await s.run('write', 'move the Telegram user id off the previous Contact', (conn) => conn.sobject('Contact').update({ Id: holder.Id, Tierline_Telegram_User_Id__c: null } as never));
      const r = (await s.run('write', 'store the Telegram user id on the Contact', (conn) => conn.sobject('Contact').update({ Id: contactId, Tierline_Telegram_User_Id__c: telegramUserId } as never))) as unknown as Upserted;
      if (r.success === false) throw failed('store the Telegram user id on the Contact', r);
    },

    async createTicket(account, t) {
      const s = await org(account);
      const rec: Record<string, unknown> = {
        Tierline_Intake_Key__c: t.idempotencyKey,
        Subject: t.subject.slice(0, 255),
        Description: t.description,
        Origin: 'Telegram',
        Type: CASE_TYPE[t.category] ?? 'Other',
        Product__c: t.product,
        Language__c: t.language,
        ContactId: t.contactId,
        AccountId: t.companyId,
      };
      const r = (await s.run('write', 'create the Case for the Telegram intake', (conn) => conn.sobject('Case').upsert(rec as never, 'Tierline_Intake_Key__c'))) as unknown as Upserted;
      if (r.success === false) throw failed('create the Case', r);
      let id = r.id ?? null;
      if (!id) {
        const q = await s.run('read', 'read the intake Case by its key', async (conn) => await conn.query<{ Id: string }>(`SELECT Id FROM Case WHERE Tierline_Intake_Key__c = ${soqlString(t.idempotencyKey)} LIMIT 1`, { autoFetch: false, maxFetch: 1 }));
        id = (q.records?.[0] as { Id: string } | undefined)?.Id ?? null;
      }
      if (!id) throw new AppError('upstream', 'Salesforce upserted the Case but returned no id; the step is retried.');
      return { crm: 'salesforce', account, ticketId: id };
    },
  };
}
