// The Salesforce side of Tierline as data: every custom field the connector reads or writes, with the type and size
// the org holds. The force-app/ SFDX source is generated from this list (metadata-source.ts), the sandbox enforces it,
// the write-back truncates to it, and a test checks it against manifest.json and the files in force-app/.
import { HISTORY_KINDS } from '../../core/ports.ts';
import { TIERS } from '../../core/segment.ts';

export const API_VERSION = '62.0';

export type FieldType = 'Text' | 'LongTextArea' | 'Picklist' | 'DateTime' | 'Number' | 'Currency' | 'Percent' | 'Url' | 'Lookup';

export type FieldSpec = {
  object: 'Case' | 'Account' | 'Contact' | 'Routing_Event__c';
  name: string;
  label: string;
  type: FieldType;
  description: string;
  /** Text length; for Number/Currency/Percent the precision (total digits). */
  length?: number;
  scale?: number;
  /** Picklist values as [api name, label]. */
  values?: readonly (readonly [string, string])[];
  /** Restricted picklists refuse values outside the list. */
  restricted?: boolean;
  referenceTo?: 'Case' | 'Account';
  relationshipName?: string;
  relationshipLabel?: string;
  externalId?: boolean;
  unique?: boolean;
  /** Fields Tierline writes (integration permission set gets edit access). */
  written: boolean;
};

const TIER_VALUES = TIERS.map((t) => [t, t[0]!.toUpperCase() + t.slice(1)] as const);
const YES_NO = [
  ['Yes', 'Yes'],
  ['No', 'No'],
] as const;

const caseOutcome = (name: string, label: string, type: FieldType, description: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({
  object: 'Case',
  name: `Tierline_${name}__c`,
  label: `Tierline ${label}`,
  type,
  description,
  written: true,
  ...extra,
});

const event = (name: string, label: string, type: FieldType, description: string, extra: Partial<FieldSpec> = {}): FieldSpec => ({
  object: 'Routing_Event__c',
  name: `${name}__c`,
  label,
  type,
  description,
  written: true,
  ...extra,
});

export const CUSTOM_FIELDS: readonly FieldSpec[] = [
  // Read: the segment inputs Tierline's default mapping expects (an org can map its own fields instead).
  { object: 'Case', name: 'Product__c', label: 'Product', type: 'Picklist', description: 'Product the case is about; Tierline routes on it.', values: [['API', 'API'], ['Dashboard', 'Dashboard'], ['Mobile App', 'Mobile App'], ['Billing Portal', 'Billing Portal'], ['Integrations', 'Integrations']], written: false },
  { object: 'Case', name: 'Language__c', label: 'Language', type: 'Picklist', description: 'Language the customer wrote in (ISO 639-1); Tierline routes on it.', values: [['en', 'English'], ['de', 'German'], ['fr', 'French'], ['es', 'Spanish'], ['pt', 'Portuguese'], ['it', 'Italian'], ['nl', 'Dutch'], ['zh', 'Chinese'], ['ja', 'Japanese'], ['ar', 'Arabic'], ['ru', 'Russian'], ['cs', 'Czech']], written: false },
  { object: 'Account', name: 'Tier__c', label: 'Tier', type: 'Picklist', description: 'Customer tier; Tierline routes on it (falls back to Rating, then to lifetime value thresholds).', values: [['Enterprise', 'Enterprise'], ['Premium', 'Premium'], ['Standard', 'Standard'], ['Free', 'Free']], written: false },
  { object: 'Account', name: 'Lifetime_Value__c', label: 'Lifetime Value', type: 'Currency', length: 16, scale: 2, description: 'Revenue to date from this customer; Tierline derives a tier from it when Tier is empty.', written: false },
  { object: 'Account', name: 'Churn_Risk__c', label: 'Churn Risk', type: 'Percent', length: 5, scale: 2, description: 'Likelihood the customer leaves (0-100 %); Tierline routing rules can use it.', written: false },
  { object: 'Case', name: 'Tierline_Intake_Key__c', label: 'Tierline Intake Key', type: 'Text', length: 80, externalId: true, unique: true, description: 'Set on Cases the Tierline Telegram bot opens; the upsert key that makes a retried creation find the first Case.', written: true },
  { object: 'Contact', name: 'Tierline_Telegram_User_Id__c', label: 'Telegram User Id', type: 'Text', length: 32, externalId: true, unique: true, description: 'Numeric Telegram user id, set by the Tierline intake bot.', written: true },

  // Written onto the Case: the current routing outcome.
  caseOutcome('Status', 'Status', 'Picklist', 'Where the ticket is in Tierline.', { values: [['waiting', 'Waiting'], ['assigned', 'Assigned'], ['answered', 'Answered'], ['resolved', 'Resolved']], restricted: true }),
  caseOutcome('Queue', 'Queue', 'Text', 'Tierline queue the case is routed to.', { length: 80 }),
  caseOutcome('Agent', 'Agent', 'Text', 'Agent who owns the case in Telegram.', { length: 80 }),
  caseOutcome('Segment', 'Segment', 'Text', 'The segment routing used, e.g. "enterprise · billing · de · EU".', { length: 255 }),
  caseOutcome('Tier', 'Tier', 'Picklist', 'The tier routing used (from the Account or derived from lifetime value).', { values: TIER_VALUES, restricted: true }),
  caseOutcome('Rule', 'Rule', 'Text', 'Routing rule that matched.', { length: 80 }),
  caseOutcome('Routed_At', 'Routed At', 'DateTime', 'When Tierline routed the case.'),
  caseOutcome('Topic_Link', 'Topic Link', 'Url', 'The Telegram topic where the agent works the case.'),
  caseOutcome('First_Response_Minutes', 'First Response (min)', 'Number', 'Minutes from routing to the first agent reply.', { length: 8, scale: 1 }),
  caseOutcome('Resolved_At', 'Resolved At', 'DateTime', 'When the case was resolved in Telegram.'),
  caseOutcome('SLA_Met', 'SLA Met', 'Picklist', 'Whether the first-response SLA was met (empty while open).', { values: YES_NO, restricted: true }),
  caseOutcome('Reason', 'Reason', 'Text', 'One line: why the case is where it is.', { length: 255 }),

  // One Routing_Event__c per decision and later event: the "Routing History" related list on Case and Account.
  event('Event_Key', 'Event Key', 'Text', 'Tierline history entry key; the upsert key that makes retries idempotent.', { length: 255, externalId: true, unique: true }),
  event('Case', 'Case', 'Lookup', 'The case this event belongs to.', { referenceTo: 'Case', relationshipName: 'Routing_Events', relationshipLabel: 'Routing History' }),
  event('Account', 'Account', 'Lookup', 'The account of the case.', { referenceTo: 'Account', relationshipName: 'Routing_Events', relationshipLabel: 'Routing History' }),
  event('Kind', 'Kind', 'Picklist', 'What happened: routed, first reply, overflow, reassignment, resolution, ...', { values: HISTORY_KINDS.map((k) => [k, k.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase())] as const), restricted: true }),
  event('Queue', 'Queue', 'Text', 'Tierline queue at the time of the event.', { length: 80 }),
  event('Agent', 'Agent', 'Text', 'Agent at the time of the event.', { length: 80 }),
  event('Segment', 'Segment', 'Text', 'Segment at the time of the event.', { length: 255 }),
  event('Tier', 'Tier', 'Picklist', 'Tier at the time of the event.', { values: TIER_VALUES, restricted: true }),
  event('Rule', 'Rule', 'Text', 'Routing rule that matched.', { length: 80 }),
  event('Reason', 'Reason', 'LongTextArea', 'What happened and why, with the full routing explanation for decisions.', { length: 32768 }),
  event('Routed_At', 'At', 'DateTime', 'When the event happened.'),
  event('First_Response_Minutes', 'First Response (min)', 'Number', 'Minutes from routing to the first agent reply.', { length: 8, scale: 1 }),
  event('Resolved_At', 'Resolved At', 'DateTime', 'When the case was resolved.'),
  event('SLA_Met', 'SLA Met', 'Picklist', 'Whether the first-response SLA was met.', { values: YES_NO, restricted: true }),
  event('Topic_Link', 'Topic Link', 'Url', 'The Telegram topic.'),
];

export const ROUTING_EVENT_OBJECT = {
  name: 'Routing_Event__c',
  label: 'Routing Event',
  pluralLabel: 'Routing Events',
  description: 'One Tierline routing decision or later event (first reply, overflow, reassignment, resolution) on a case.',
  nameField: { label: 'Routing Event', displayFormat: 'RE-{000000}' },
} as const;

export function fieldSpec(object: string, name: string): FieldSpec | undefined {
  return CUSTOM_FIELDS.find((f) => f.object === object && f.name === name);
}

/** Maximum characters a text-like field holds (URL fields hold 255). */
export function maxLength(spec: FieldSpec): number | null {
  if (spec.type === 'Url') return 255;
  if (spec.type === 'Text' || spec.type === 'LongTextArea') return spec.length ?? 255;
  return null;
}
