// The HubSpot properties Tierline writes (and the two custom ones it reads), as provisioned on install: one property
// group per object and one definition per property. Names come from manifest.json; this table adds the HubSpot
// type of each, and a test keeps the two in step.
import { createHash } from 'node:crypto';
import manifest from '../../manifest.json' with { type: 'json' };
import { TIERS } from '../../core/segment.ts';

export const HUBSPOT_MANIFEST = manifest.connectors.hubspot;

export type HsObjectType = 'tickets' | 'companies' | 'contacts';

export type PropertyDef = {
  name: string;
  label: string;
  description: string;
  type: 'string' | 'number' | 'datetime' | 'enumeration' | 'bool';
  fieldType: 'text' | 'textarea' | 'number' | 'date' | 'select' | 'booleancheckbox';
  options?: { label: string; value: string; displayOrder: number }[];
  /** HubSpot refuses a second record with the same value: what makes the intake's ticket creation idempotent. */
  hasUniqueValue?: boolean;
};

const opts = (values: readonly string[]) => values.map((v, i) => ({ label: v.charAt(0).toUpperCase() + v.slice(1), value: v, displayOrder: i }));

/** Every Tierline property, whatever object it sits on. */
const SPECS: Record<string, Omit<PropertyDef, 'name'>> = {
  tierline_status: { label: 'Tierline status', description: 'Where the ticket stands in Tierline routing.', type: 'enumeration', fieldType: 'select', options: opts(['waiting', 'assigned', 'answered', 'resolved']) },
  tierline_queue: { label: 'Tierline queue', description: 'The queue Tierline routed the ticket to.', type: 'string', fieldType: 'text' },
  tierline_agent: { label: 'Tierline agent', description: 'The agent who owns the ticket in Telegram.', type: 'string', fieldType: 'text' },
  tierline_segment: { label: 'Tierline segment', description: 'The customer segment used for routing (tier, category, language, region).', type: 'string', fieldType: 'text' },
  tierline_tier: { label: 'Tierline tier', description: 'The customer tier used for routing.', type: 'enumeration', fieldType: 'select', options: opts(TIERS) },
  tierline_rule: { label: 'Tierline rule', description: 'The routing rule that matched.', type: 'string', fieldType: 'text' },
  tierline_routed_at: { label: 'Tierline routed at', description: 'When Tierline routed the ticket.', type: 'datetime', fieldType: 'date' },
  tierline_topic_link: { label: 'Tierline Telegram topic', description: 'Link to the Telegram forum topic of the ticket.', type: 'string', fieldType: 'text' },
  tierline_first_response_minutes: { label: 'Tierline first response (minutes)', description: 'Minutes from routing to the agent’s first reply.', type: 'number', fieldType: 'number' },
  tierline_resolved_at: { label: 'Tierline resolved at', description: 'When the Telegram topic was resolved.', type: 'datetime', fieldType: 'date' },
  tierline_sla_met: { label: 'Tierline SLA met', description: 'Whether the first reply came within the queue’s SLA.', type: 'bool', fieldType: 'booleancheckbox', options: [{ label: 'Yes', value: 'true', displayOrder: 0 }, { label: 'No', value: 'false', displayOrder: 1 }] },
  tierline_reason: { label: 'Tierline reason', description: 'Why the ticket is where it is, in one line.', type: 'string', fieldType: 'textarea' },
  tierline_history: { label: 'Tierline routing history', description: 'Every routing event of the ticket, newest last (the notes on the timeline carry the full explanations).', type: 'string', fieldType: 'textarea' },
  tierline_product: { label: 'Product (Tierline)', description: 'The product the ticket is about; Tierline routes on it.', type: 'string', fieldType: 'text' },
  tierline_churn_risk: { label: 'Churn risk % (Tierline)', description: 'Likelihood to churn, 0-100; Tierline routes at-risk accounts with priority.', type: 'number', fieldType: 'number' },
  tierline_telegram_user_id: { label: 'Telegram user id (Tierline)', description: 'The customer’s Telegram user id, set by the Tierline intake bot.', type: 'string', fieldType: 'text' },
  tierline_intake_key: { label: 'Telegram intake key (Tierline)', description: 'Set on tickets the Tierline Telegram bot opens; unique, so a retried creation finds the first ticket.', type: 'string', fieldType: 'text', hasUniqueValue: true },
};

const OBJECT_KEYS: Record<HsObjectType, 'tickets' | 'companies' | 'contacts'> = { tickets: 'tickets', companies: 'companies', contacts: 'contacts' };

/** The Tierline properties of one object: everything it writes plus the tierline_* properties it reads or the intake sets. */
export function propertyDefs(objectType: HsObjectType): PropertyDef[] {
  const key = OBJECT_KEYS[objectType];
  const writes = (HUBSPOT_MANIFEST.writes as Record<string, string[]>)[key] ?? [];
  const reads = ((HUBSPOT_MANIFEST.reads as Record<string, string[]>)[key] ?? []).filter((n) => n.startsWith('tierline_'));
  const intake = ((HUBSPOT_MANIFEST.intake as Record<string, string[]>)[key] ?? []).filter((n) => n.startsWith('tierline_'));
  return [...new Set([...writes, ...reads, ...intake])].map((name) => {
    const spec = SPECS[name];
    if (!spec) throw new Error(`no HubSpot property definition for ${objectType}.${name} (listed in manifest.json)`);
    return { name, ...spec, ...(spec.options ? { options: spec.options.map((o) => ({ ...o })) } : {}) };
  });
}

export const PROVISIONED_OBJECTS: HsObjectType[] = ['tickets', 'companies', 'contacts'];

export const PROPERTY_GROUP = HUBSPOT_MANIFEST.propertyGroup;

/** Changes whenever a definition changes, so installs provisioned with older definitions are upgraded on start. */
export const DEFINITIONS_VERSION = createHash('sha256')
  .update(JSON.stringify(PROVISIONED_OBJECTS.map((o) => [o, propertyDefs(o)])))
  .digest('hex')
  .slice(0, 12);

export const TICKET_WRITES: string[] = HUBSPOT_MANIFEST.writes.tickets;
export const COMPANY_WRITES: string[] = HUBSPOT_MANIFEST.writes.companies;
