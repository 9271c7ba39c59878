// What the Telegram intake bot needs from HubSpot (CrmIntakePort): the contact by email, phone or Telegram user id
// (CRM search API) and their primary company, a contact created when the admin allows it, the Telegram user id stored
// on the contact (tierline_telegram_user_id), and the ticket created with the contact and company associated.
// Creating a ticket is made idempotent by tierline_intake_key, a property with unique values: a retry first reads the
// ticket by that key (GET ...?idProperty=), and a create that races an earlier one gets 409 and reads it the same way.
import { AppError } from '../../core/errors.ts';
import type { CrmCustomer, CrmIntakePort, Logger } from '../../core/ports.ts';
import type { TicketRef } from '../../core/segment.ts';
import type { PortalSession } from './client.ts';

type HsObj = { id: string; properties?: Record<string, string | null>; associations?: Record<string, { results?: { id: string; type?: string }[] }> };

/** HubSpot-defined association type ids: ticket -> contact, ticket -> company (primary). */
const TICKET_TO_CONTACT = 16;
const TICKET_TO_COMPANY_PRIMARY = 26;
const CONTACT_PROPS = ['firstname', 'lastname', 'email', 'phone', 'tierline_telegram_user_id'];
/** The form's categories as HubSpot's ticket categories; anything else is a general inquiry. */
const CATEGORY: Record<string, string> = { billing: 'BILLING_ISSUE', technical: 'PRODUCT_ISSUE', account: 'GENERAL_INQUIRY' };

export type HubspotIntakeOptions = {
  session: (portalId: string) => PortalSession;
  logger: Logger;
  /** Pipeline and stage new tickets start in (HubSpot's default pipeline "0", stage "1" = New). */
  pipeline?: { id: string; stage: string };
};

export function createHubspotIntake(o: HubspotIntakeOptions): CrmIntakePort {
  const pipeline = o.pipeline ?? { id: '0', stage: '1' };

  const portal = (account: string) => {
    if (!/^\d{1,20}$/.test(account)) throw new AppError('invalid_input', `"${account.slice(0, 40)}" is not a HubSpot portal id; set the intake's CRM account to the portal id.`);
    return o.session(account);
  };

  async function toCustomer(s: PortalSession, c: HsObj): Promise<CrmCustomer> {
    const full = (await s.run(`read contact ${c.id}`, (cl) => cl.crm.contacts.basicApi.getById(c.id, CONTACT_PROPS, undefined, ['companies']), { idempotent: true })) as HsObj;
    const list = full.associations?.companies?.results ?? [];
    const company = (list.find((x) => x.type === 'contact_to_company') ?? list[0])?.id ?? null;
    const p = full.properties ?? c.properties ?? {};
    const name = [p.firstname, p.lastname].filter(Boolean).join(' ') || null;
    return { contactId: String(c.id), companyId: company ? String(company) : null, name, email: p.email || null, phone: p.phone || null, telegramUserId: p.tierline_telegram_user_id || null };
  }

  return {
    async findCustomer(account, by) {
      const s = portal(account);
      // One filter group per identifier (ORed), the Telegram id first: it is the strongest match.
      const filters = [
        by.telegramUserId ? { propertyName: 'tierline_telegram_user_id', operator: 'EQ', value: by.telegramUserId } : null,
        by.email ? { propertyName: 'email', operator: 'EQ', value: by.email.toLowerCase() } : null,
        by.phone ? { propertyName: 'phone', operator: 'EQ', value: by.phone } : null,
      ].filter((f): f is { propertyName: string; operator: string; value: string } => !!f);
      if (!filters.length) return null;
      for (const f of filters) {
        const r = (await s.run('search contacts for the Telegram intake', (cl) => cl.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [f as never] }], properties: CONTACT_PROPS, limit: 2, after: undefined as never, sorts: [] }), { idempotent: true })) as { results?: HsObj[] };
        const hit = r.results?.[0];
        if (hit) return toCustomer(s, hit);
      }
      return null;
    },

    async createContact(account, c) {
      const s = portal(account);
      const [first, ...rest] = (c.name ?? '').trim().split(/\s+/);
      const properties: Record<string, string> = { tierline_telegram_user_id: c.telegramUserId };
      if (c.email) properties.email = c.email.toLowerCase();
      if (c.phone) properties.phone = c.phone;
      if (first) properties.firstname = first;
      if (rest.length) properties.lastname = rest.join(' ');
      try {
        const made = (await s.run('create a contact for the Telegram intake', (cl) => cl.crm.contacts.basicApi.create({ properties, associations: [] }), { idempotent: false })) as HsObj;
        return { contactId: String(made.id), companyId: null, name: c.name ?? null, email: properties.email ?? null, phone: properties.phone ?? null, telegramUserId: c.telegramUserId };
      } catch (err) {
        // "Contact already exists. Existing ID: 123": a retry after a lost answer, or someone added them meanwhile.
        const id = err instanceof AppError && err.code === 'conflict' ? /Existing ID: (\d+)/.exec(err.message)?.[1] : undefined;
        if (!id) throw err;
        await s.run(`store the Telegram user id on contact ${id}`, (cl) => cl.crm.contacts.basicApi.update(id, { properties: { tierline_telegram_user_id: c.telegramUserId } }), { idempotent: true });
        return toCustomer(s, { id });
      }
    },

    async linkTelegramUser(account, contactId, telegramUserId) {
      const s = portal(account);
      await s.run(`store the Telegram user id on contact ${contactId}`, (cl) => cl.crm.contacts.basicApi.update(contactId, { properties: { tierline_telegram_user_id: telegramUserId } }), { idempotent: true });
    },

    async createTicket(account, t) {
      const s = portal(account);
      const ref = (id: string): TicketRef => ({ crm: 'hubspot', account, ticketId: String(id) });
      const byKey = async (): Promise<string | null> => {
        try {
          const r = (await s.run('read the intake ticket by its key', (cl) => cl.crm.tickets.basicApi.getById(t.idempotencyKey, ['subject'], undefined, undefined, false, 'tierline_intake_key'), { idempotent: true })) as HsObj;
          return String(r.id);
        } catch (err) {
          if (err instanceof AppError && err.code === 'not_found') return null;
          throw err;
        }
      };
      const existing = await byKey();
      if (existing) return ref(existing);
      const associations = [
        ...(t.contactId ? [{ to: { id: t.contactId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: TICKET_TO_CONTACT }] }] : []),
        ...(t.companyId ? [{ to: { id: t.companyId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: TICKET_TO_COMPANY_PRIMARY }] }] : []),
      ];
      const properties: Record<string, string> = {
        subject: t.subject.slice(0, 250),
        content: t.description,
        hs_pipeline: pipeline.id,
        hs_pipeline_stage: pipeline.stage,
        hs_ticket_category: CATEGORY[t.category] ?? 'GENERAL_INQUIRY',
        hs_language: t.language,
        tierline_product: t.product,
        tierline_intake_key: t.idempotencyKey,
      };
      try {
        const made = (await s.run('create the ticket for the Telegram intake', (cl) => cl.crm.tickets.basicApi.create({ properties, associations: associations as never }), { idempotent: false })) as HsObj;
        return ref(made.id);
      } catch (err) {
        if (err instanceof AppError && err.code === 'conflict') {
          const id = await byKey();
          if (id) return ref(id);
        }
        throw err;
      }
    },
  };
}
