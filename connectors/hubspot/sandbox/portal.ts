// One HubSpot account (portal) held in memory: CRM objects with string property values, property definitions and
// groups, associations with HubSpot's type ids, and workflow-action callbacks. Writes are validated the way HubSpot
// validates them (unknown property, bad enumeration option, bad number), so the connector meets real errors here.
export const OBJECT_TYPES = ['tickets', 'companies', 'contacts', 'notes', 'products'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** Object type ids and singular names, as the v3/v4 APIs accept them in paths. */
export const TYPE_ALIASES: Record<string, ObjectType> = {
  tickets: 'tickets', ticket: 'tickets', '0-5': 'tickets',
  companies: 'companies', company: 'companies', '0-2': 'companies',
  contacts: 'contacts', contact: 'contacts', '0-1': 'contacts',
  notes: 'notes', note: 'notes', '0-46': 'notes',
  products: 'products', product: 'products', '0-7': 'products',
};

export const SINGULAR: Record<ObjectType, string> = { tickets: 'ticket', companies: 'company', contacts: 'contact', notes: 'note', products: 'product' };

/** HubSpot-defined association type ids (from -> to). The first of two is the primary/default one. */
const TYPE_IDS: Record<string, number[]> = {
  'tickets>companies': [26, 339],
  'companies>tickets': [25, 340],
  'tickets>contacts': [16],
  'contacts>tickets': [15],
  'contacts>companies': [1, 279],
  'companies>contacts': [2, 280],
  'notes>tickets': [228],
  'tickets>notes': [227],
  'notes>companies': [190],
  'companies>notes': [189],
  'notes>contacts': [202],
  'contacts>notes': [201],
};

export function associationTypeIds(from: ObjectType, to: ObjectType): number[] {
  return TYPE_IDS[`${from}>${to}`] ?? [];
}

export type HsObjectRecord = { id: string; properties: Record<string, string | null>; createdAt: string; updatedAt: string; archived: boolean };
export type PropOption = { label: string; value: string; displayOrder: number; hidden: boolean };
export type PropDef = {
  name: string;
  label: string;
  description: string;
  type: string;
  fieldType: string;
  groupName: string;
  options: PropOption[];
  hubspotDefined: boolean;
  /** HubSpot refuses a second record with the same value (up to ten such properties per object). */
  hasUniqueValue?: boolean;
  createdAt: string;
  updatedAt: string;
};
export type PropGroup = { name: string; label: string; displayOrder: number; archived: boolean };
/** Stored once per pair; `primary` marks the primary company of a ticket or contact. */
export type Association = { a: { type: ObjectType; id: string }; b: { type: ObjectType; id: string }; primary: boolean };
export type Callback = { callbackId: string; ticketId: string; state: 'BLOCKED' | 'COMPLETED'; outputFields: Record<string, string> | null; createdAt: number; completedAt: number | null };

export type ValidationProblem = { name: string; error: 'PROPERTY_DOESNT_EXIST' | 'INVALID_OPTION' | 'INVALID_INTEGER' | 'INVALID_DATE' | 'READ_ONLY_VALUE'; message: string };

/** A create that would repeat the value of a unique property (HubSpot answers 409 CONFLICT). */
export class UniqueConflict extends Error {
  readonly existingId: string;
  readonly property: string;
  constructor(type: string, property: string, value: string, existingId: string) {
    super(`A ${type} with ${property} "${value}" already exists (the property requires unique values). Existing ID: ${existingId}`);
    this.existingId = existingId;
    this.property = property;
  }
}

export class ValidationFailure extends Error {
  readonly problems: ValidationProblem[];
  constructor(problems: ValidationProblem[]) {
    super(`Property values were not valid: ${JSON.stringify(problems.map((p) => ({ isValid: false, message: p.message, error: p.error, name: p.name, localizedErrorMessage: p.message })))}`);
    this.problems = problems;
  }
}

/**
 * HubSpot's default ticket pipeline ("Support Pipeline"): the stage ids hs_pipeline_stage takes, and each stage's
 * ticketState, which is how HubSpot says a stage is closed (stage names and ids differ per portal).
 */
export const TICKET_PIPELINES = [
  {
    id: '0',
    label: 'Support Pipeline',
    stages: [
      { id: '1', label: 'New', ticketState: 'OPEN' },
      { id: '2', label: 'Waiting on contact', ticketState: 'OPEN' },
      { id: '3', label: 'Waiting on us', ticketState: 'OPEN' },
      { id: '4', label: 'Closed', ticketState: 'CLOSED' },
    ],
  },
] as const;

const STANDARD: Record<ObjectType, [string, string, string, string[]?][]> = {
  tickets: [
    ['subject', 'string', 'text'],
    ['content', 'string', 'textarea'],
    ['hs_pipeline', 'enumeration', 'select', TICKET_PIPELINES.map((x) => x.id)],
    ['hs_pipeline_stage', 'enumeration', 'select', TICKET_PIPELINES.flatMap((x) => x.stages.map((st) => st.id))],
    ['hs_ticket_priority', 'enumeration', 'select', ['LOW', 'MEDIUM', 'HIGH', 'URGENT']],
    ['hs_ticket_category', 'enumeration', 'checkbox', ['PRODUCT_ISSUE', 'BILLING_ISSUE', 'FEATURE_REQUEST', 'GENERAL_INQUIRY']],
    ['hs_language', 'string', 'text'],
    ['createdate', 'datetime', 'date'],
    ['hs_lastmodifieddate', 'datetime', 'date'],
    ['hs_object_id', 'number', 'number'],
  ],
  companies: [
    ['name', 'string', 'text'],
    ['domain', 'string', 'text'],
    ['industry', 'string', 'text'],
    ['hs_ideal_customer_profile', 'enumeration', 'radio', ['tier_1', 'tier_2', 'tier_3']],
    ['total_revenue', 'number', 'number'],
    ['annualrevenue', 'number', 'number'],
    ['country', 'string', 'text'],
    ['createdate', 'datetime', 'date'],
    ['hs_lastmodifieddate', 'datetime', 'date'],
    ['hs_object_id', 'number', 'number'],
  ],
  contacts: [
    ['firstname', 'string', 'text'],
    ['lastname', 'string', 'text'],
    ['email', 'string', 'text'],
    ['phone', 'string', 'phonenumber'],
    ['hs_language', 'string', 'text'],
    ['country', 'string', 'text'],
    ['createdate', 'datetime', 'date'],
    ['lastmodifieddate', 'datetime', 'date'],
    ['hs_object_id', 'number', 'number'],
  ],
  notes: [
    ['hs_note_body', 'string', 'html'],
    ['hs_timestamp', 'datetime', 'date'],
    ['createdate', 'datetime', 'date'],
    ['hs_lastmodifieddate', 'datetime', 'date'],
    ['hs_object_id', 'number', 'number'],
  ],
  products: [
    ['name', 'string', 'text'],
    ['price', 'number', 'number'],
    ['hs_sku', 'string', 'text'],
    ['createdate', 'datetime', 'date'],
    ['hs_lastmodifieddate', 'datetime', 'date'],
    ['hs_object_id', 'number', 'number'],
  ],
};

const READ_ONLY = new Set(['createdate', 'hs_lastmodifieddate', 'lastmodifieddate', 'hs_object_id']);
const DEFAULT_GROUP: Record<ObjectType, string> = { tickets: 'ticketinformation', companies: 'companyinformation', contacts: 'contactinformation', notes: 'engagement', products: 'productinformation' };

export type Portal = ReturnType<typeof createPortal>;

export function createPortal(o: { portalId: string; now: () => number; idBase: number; currency?: string; timeZone?: string }) {
  const iso = () => new Date(o.now()).toISOString();
  let nextId = o.idBase;
  const objects = Object.fromEntries(OBJECT_TYPES.map((t) => [t, new Map<string, HsObjectRecord>()])) as Record<ObjectType, Map<string, HsObjectRecord>>;
  const props = Object.fromEntries(OBJECT_TYPES.map((t) => [t, new Map<string, PropDef>()])) as Record<ObjectType, Map<string, PropDef>>;
  const groups = Object.fromEntries(OBJECT_TYPES.map((t) => [t, new Map<string, PropGroup>()])) as Record<ObjectType, Map<string, PropGroup>>;
  const associations: Association[] = [];
  /** The same associations by either end ("type:id"), so reading an object's associations does not scan them all. */
  const byEnd = new Map<string, Association[]>();
  const endKey = (type: ObjectType, id: string) => `${type}:${id}`;
  const ends = (type: ObjectType, id: string) => byEnd.get(endKey(type, id)) ?? [];
  const callbacks = new Map<string, Callback>();

  for (const t of OBJECT_TYPES) {
    groups[t].set(DEFAULT_GROUP[t], { name: DEFAULT_GROUP[t], label: `${SINGULAR[t]} information`, displayOrder: 0, archived: false });
    for (const [name, type, fieldType, values] of STANDARD[t]) {
      props[t].set(name, {
        name,
        label: name,
        description: '',
        type,
        fieldType,
        groupName: DEFAULT_GROUP[t],
        options: (values ?? []).map((v, i) => ({ label: v, value: v, displayOrder: i, hidden: false })),
        hubspotDefined: true,
        createdAt: iso(),
        updatedAt: iso(),
      });
    }
  }

  function validate(type: ObjectType, values: Record<string, unknown>, creating: boolean): Record<string, string> {
    const problems: ValidationProblem[] = [];
    const out: Record<string, string> = {};
    for (const [name, raw] of Object.entries(values)) {
      const def = props[type].get(name);
      if (!def) {
        problems.push({ name, error: 'PROPERTY_DOESNT_EXIST', message: `Property "${name}" does not exist` });
        continue;
      }
      if (READ_ONLY.has(name)) {
        if (!creating) problems.push({ name, error: 'READ_ONLY_VALUE', message: `${name} is a read only property; its value cannot be set.` });
        continue;
      }
      const v = raw === null || raw === undefined ? '' : String(raw);
      if (v !== '') {
        if (def.type === 'number' && !Number.isFinite(Number(v))) problems.push({ name, error: 'INVALID_INTEGER', message: `${JSON.stringify(v)} is not a valid number` });
        else if (def.type === 'datetime' && !/^\d{10,16}$/.test(v) && Number.isNaN(Date.parse(v))) problems.push({ name, error: 'INVALID_DATE', message: `${JSON.stringify(v)} is not a valid datetime` });
        else if ((def.type === 'enumeration' || def.type === 'bool') && def.options.length) {
          const allowed = new Set(def.options.map((x) => x.value));
          const parts = def.fieldType === 'checkbox' ? v.split(';') : [v];
          const bad = parts.find((p) => !allowed.has(p));
          if (bad !== undefined) problems.push({ name, error: 'INVALID_OPTION', message: `${bad} was not one of the allowed options: [${[...allowed].map((a) => `label: "${a}"\nvalue: "${a}"`).join(', ')}]` });
        }
      }
      out[name] = v;
    }
    if (problems.length) throw new ValidationFailure(problems);
    return out;
  }

  function create(type: ObjectType, values: Record<string, unknown>): HsObjectRecord {
    const clean = validate(type, values, true);
    for (const [name, v] of Object.entries(clean)) {
      if (!v || !props[type].get(name)?.hasUniqueValue) continue;
      const dup = [...objects[type].values()].find((r) => !r.archived && r.properties[name] === v);
      if (dup) throw new UniqueConflict(SINGULAR[type], name, v, dup.id);
    }
    const id = String(nextId++);
    const at = iso();
    const rec: HsObjectRecord = { id, properties: { ...clean, hs_object_id: id, createdate: at, [type === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate']: at }, createdAt: at, updatedAt: at, archived: false };
    objects[type].set(id, rec);
    return rec;
  }

  function update(type: ObjectType, id: string, values: Record<string, unknown>): HsObjectRecord | null {
    const rec = objects[type].get(id);
    if (!rec || rec.archived) return null;
    const clean = validate(type, values, false);
    const at = iso();
    Object.assign(rec.properties, clean, { [type === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate']: at });
    rec.updatedAt = at;
    return rec;
  }

  /** A live record by a unique property's value (GET ...?idProperty=). */
  function getBy(type: ObjectType, property: string, value: string): HsObjectRecord | null {
    if (!props[type].get(property)?.hasUniqueValue && property !== 'hs_object_id') return null;
    return [...objects[type].values()].find((r) => !r.archived && r.properties[property] === value) ?? null;
  }

  function get(type: ObjectType, id: string): HsObjectRecord | null {
    const rec = objects[type].get(id);
    return rec && !rec.archived ? rec : null;
  }

  function archive(type: ObjectType, id: string): boolean {
    const rec = objects[type].get(id);
    if (!rec || rec.archived) return false;
    rec.archived = true;
    rec.properties.hs_lastmodifieddate = iso();
    return true;
  }

  function associate(fromType: ObjectType, fromId: string, toType: ObjectType, toId: string, primary = false): void {
    if (associated(fromType, fromId, toType).includes(toId)) return;
    if (primary) for (const a of ends(fromType, fromId)) if (a.a.type === fromType && a.a.id === fromId && a.b.type === toType) a.primary = false;
    const x: Association = { a: { type: fromType, id: fromId }, b: { type: toType, id: toId }, primary };
    associations.push(x);
    for (const k of new Set([endKey(fromType, fromId), endKey(toType, toId)])) (byEnd.get(k) ?? byEnd.set(k, []).get(k)!).push(x);
  }

  /** Ids of live objects of toType associated with the object, primary first. */
  function associated(fromType: ObjectType, fromId: string, toType: ObjectType): string[] {
    const out: { id: string; primary: boolean }[] = [];
    for (const x of ends(fromType, fromId)) {
      if (x.a.type === fromType && x.a.id === fromId && x.b.type === toType) out.push({ id: x.b.id, primary: x.primary });
      else if (x.b.type === fromType && x.b.id === fromId && x.a.type === toType) out.push({ id: x.a.id, primary: false });
    }
    return out
      .filter((x) => get(toType, x.id))
      .sort((p, q) => Number(q.primary) - Number(p.primary))
      .map((x) => x.id)
      .filter((id, i, all) => all.indexOf(id) === i);
  }

  function isPrimary(fromType: ObjectType, fromId: string, toType: ObjectType, toId: string): boolean {
    return ends(fromType, fromId).some((x) => x.primary && x.a.type === fromType && x.a.id === fromId && x.b.type === toType && x.b.id === toId);
  }

  return {
    id: o.portalId,
    currency: o.currency ?? 'USD',
    timeZone: o.timeZone ?? 'Europe/Berlin',
    objects,
    props,
    groups,
    associations,
    callbacks,
    validate,
    create,
    update,
    get,
    getBy,
    archive,
    associate,
    associated,
    isPrimary,
    iso,
  };
}
