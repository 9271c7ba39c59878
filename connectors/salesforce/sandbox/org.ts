// The sandbox org's data: objects, their fields (standard ones plus the custom fields of schema.ts once "deployed"),
// records with recycle-bin deletes, and the validation Salesforce applies on writes, producing the documented error
// codes (INVALID_FIELD, STRING_TOO_LONG, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, ENTITY_IS_DELETED, ...).
import { randomUUID } from 'node:crypto';
import { CUSTOM_FIELDS, ROUTING_EVENT_OBJECT, type FieldSpec } from '../schema.ts';
import { to18 } from '../ids.ts';

export type FieldKind = 'id' | 'string' | 'textarea' | 'picklist' | 'datetime' | 'double' | 'currency' | 'percent' | 'url' | 'reference' | 'email' | 'phone' | 'boolean' | 'autonumber';

export type FieldDesc = {
  name: string;
  kind: FieldKind;
  length?: number;
  values?: string[];
  restricted?: boolean;
  referenceTo?: string;
  relationshipName?: string;
  writable: boolean;
  externalId?: boolean;
  unique?: boolean;
  custom: boolean;
};

export type ObjectDesc = { name: string; prefix: string; fields: Map<string, FieldDesc>; custom: boolean };

export type SfRecord = Record<string, unknown> & { Id: string };

/** A request-level error: HTTP status and the documented body [{message, errorCode, fields}]. */
export class SfError extends Error {
  readonly status: number;
  readonly errorCode: string;
  readonly fields: string[];
  constructor(status: number, errorCode: string, message: string, fields: string[] = []) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.fields = fields;
  }
  body() {
    return [{ message: this.message, errorCode: this.errorCode, ...(this.fields.length ? { fields: this.fields } : {}) }];
  }
}

/** A per-record error as sObject Collections report it (statusCode, not errorCode). */
export type RecordError = { statusCode: string; message: string; fields: string[] };
export type SaveResult = { id?: string; success: boolean; errors: RecordError[]; created?: boolean };

const std = (name: string, kind: FieldKind, extra: Partial<FieldDesc> = {}): FieldDesc => ({ name, kind, writable: true, custom: false, ...extra });
const ro = (name: string, kind: FieldKind, extra: Partial<FieldDesc> = {}): FieldDesc => std(name, kind, { writable: false, ...extra });

/** The Case statuses this org counts as closed (a real org's CaseStatus.IsClosed); IsClosed follows Status. */
const CLOSED_CASE_STATUSES = new Set(['Closed']);
const AUDIT = [ro('Id', 'id'), ro('IsDeleted', 'boolean'), ro('CreatedDate', 'datetime'), ro('LastModifiedDate', 'datetime'), ro('SystemModstamp', 'datetime'), std('OwnerId', 'reference', { referenceTo: 'User', relationshipName: 'Owner' })];

function specToDesc(f: FieldSpec): FieldDesc {
  const kind: FieldKind = { Text: 'string', LongTextArea: 'textarea', Picklist: 'picklist', DateTime: 'datetime', Number: 'double', Currency: 'currency', Percent: 'percent', Url: 'url', Lookup: 'reference' }[f.type] as FieldKind;
  return {
    name: f.name,
    kind,
    ...(f.type === 'Text' || f.type === 'LongTextArea' ? { length: f.length ?? 255 } : f.type === 'Url' ? { length: 255 } : {}),
    ...(f.values ? { values: f.values.map((v) => v[0]), restricted: !!f.restricted } : {}),
    ...(f.referenceTo ? { referenceTo: f.referenceTo, relationshipName: f.name.replace(/__c$/, '__r') } : {}),
    writable: true,
    ...(f.externalId ? { externalId: true } : {}),
    ...(f.unique ? { unique: true } : {}),
    custom: true,
  };
}

function objectDesc(name: string, prefix: string, fields: FieldDesc[], custom = false): ObjectDesc {
  return { name, prefix, custom, fields: new Map(fields.map((f) => [f.name, f])) };
}

/** Standard objects as a fresh org has them, plus the read fields the customer already keeps (Tier__c, ...). */
function standardObjects(): Map<string, ObjectDesc> {
  const m = new Map<string, ObjectDesc>();
  m.set('User', objectDesc('User', '005', [...AUDIT.filter((f) => f.name !== 'OwnerId'), std('Username', 'string', { length: 80 }), std('Name', 'string', { length: 121, writable: false }), std('Email', 'email', { length: 80 })]));
  m.set(
    'Account',
    objectDesc('Account', '001', [
      ...AUDIT,
      std('Name', 'string', { length: 255 }),
      std('Rating', 'picklist', { values: ['Hot', 'Warm', 'Cold'] }),
      std('AnnualRevenue', 'currency'),
      std('BillingCountry', 'string', { length: 80 }),
      std('Industry', 'picklist', { values: ['Technology', 'Healthcare', 'Retail', 'Manufacturing', 'Finance', 'Transportation', 'Food & Beverage', 'Media'] }),
      std('Type', 'picklist', { values: ['Customer - Direct', 'Customer - Channel', 'Prospect', 'Partner', 'Other'] }),
    ]),
  );
  m.set(
    'Contact',
    objectDesc('Contact', '003', [
      ...AUDIT,
      std('FirstName', 'string', { length: 40 }),
      std('LastName', 'string', { length: 80 }),
      ro('Name', 'string', { length: 121 }),
      std('Email', 'email', { length: 80 }),
      std('Phone', 'phone', { length: 40 }),
      std('AccountId', 'reference', { referenceTo: 'Account', relationshipName: 'Account' }),
    ]),
  );
  m.set(
    'Case',
    objectDesc('Case', '500', [
      ...AUDIT,
      ro('CaseNumber', 'string', { length: 30 }),
      std('Subject', 'string', { length: 255 }),
      std('Description', 'textarea', { length: 32000 }),
      std('Status', 'picklist', { values: ['New', 'Working', 'Escalated', 'Closed'] }),
      std('Priority', 'picklist', { values: ['High', 'Medium', 'Low'] }),
      std('Origin', 'picklist', { values: ['Phone', 'Email', 'Web', 'Telegram'] }),
      std('Type', 'picklist', { values: ['Billing', 'Technical', 'Question', 'Problem', 'Feature Request', 'Other'] }),
      std('Reason', 'picklist', { values: ['Billing', 'Performance', 'Breakdown', 'Installation', 'Feedback', 'Other'] }),
      std('AccountId', 'reference', { referenceTo: 'Account', relationshipName: 'Account' }),
      std('ContactId', 'reference', { referenceTo: 'Contact', relationshipName: 'Contact' }),
      ro('IsClosed', 'boolean'),
      ro('ClosedDate', 'datetime'),
    ]),
  );
  m.set('Product2', objectDesc('Product2', '01t', [...AUDIT, std('Name', 'string', { length: 255 }), std('ProductCode', 'string', { length: 255 }), std('IsActive', 'boolean'), std('Family', 'picklist', { values: ['Platform', 'Add-on'] })]));
  // The segment inputs (Tier__c, Lifetime_Value__c, ...) are the customer's own data in a real org: present from the start.
  for (const f of CUSTOM_FIELDS.filter((x) => !x.written && x.object !== 'Routing_Event__c')) m.get(f.object)!.fields.set(f.name, specToDesc(f));
  return m;
}

let counter = 0;

export type OrgState = ReturnType<typeof createOrg>;

export function createOrg(opts: { orgId: string; now: () => number; deployed: boolean }) {
  const objects = standardObjects();
  const records = new Map<string, Map<string, SfRecord>>();
  const idIndex = new Map<string, string>(); // id -> object
  let caseNumber = 1000;
  let autoNumber = 0;
  const listeners: ((e: { object: string; type: 'CREATE' | 'UPDATE' | 'DELETE'; record: SfRecord; changed: string[] }) => void)[] = [];
  const deployedFields = new Set<string>();

  const podTag = opts.orgId.slice(3, 5);
  function newId(prefix: string): string {
    counter += 1;
    const b62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    let n = counter * 7919 + Math.floor(Math.random() * 7);
    let s = '';
    for (let i = 0; i < 8; i++) {
      s = b62[n % 62] + s;
      n = Math.floor(n / 62);
    }
    return to18(`${prefix}${podTag}00${s}`.slice(0, 15).padEnd(15, '0'));
  }

  // Lookups by a field's value (unique checks, upserts on an external id) through an index built on first use and
  // kept as records are written; an entry may be stale after an update or a rollback, so every hit is re-checked.
  const byValue = new Map<string, Map<string, Map<unknown, Set<string>>>>();
  function indexRecord(object: string, rec: SfRecord, fields?: Iterable<string>): void {
    const forObject = byValue.get(object);
    if (!forObject) return;
    for (const [field, values] of forObject) {
      if (fields && ![...fields].includes(field)) continue;
      const v = rec[field];
      if (v === null || v === undefined) continue;
      (values.get(v) ?? values.set(v, new Set()).get(v)!).add(rec.Id);
    }
  }
  function findByField(object: string, field: string, value: unknown): SfRecord[] {
    let forObject = byValue.get(object);
    if (!forObject) byValue.set(object, (forObject = new Map()));
    let values = forObject.get(field);
    if (!values) {
      forObject.set(field, (values = new Map()));
      for (const r of table(object).values()) if (r[field] !== null && r[field] !== undefined) (values.get(r[field]) ?? values.set(r[field], new Set()).get(r[field])!).add(r.Id);
    }
    const out: SfRecord[] = [];
    for (const id of values.get(value) ?? []) {
      const r = table(object).get(id);
      if (r && r[field] === value) out.push(r);
    }
    return out;
  }

  function table(object: string): Map<string, SfRecord> {
    let t = records.get(object);
    if (!t) records.set(object, (t = new Map()));
    return t;
  }

  /** Deploys the Tierline metadata: Case outcome fields, Contact Telegram id, the Routing_Event__c object. */
  function deploy(fieldNames?: Iterable<string>): void {
    const wanted = fieldNames ? new Set(fieldNames) : null;
    for (const f of CUSTOM_FIELDS) {
      const key = `${f.object}.${f.name}`;
      if (wanted && !wanted.has(key)) continue;
      if (f.object === 'Routing_Event__c' && !objects.has('Routing_Event__c')) {
        objects.set('Routing_Event__c', objectDesc(ROUTING_EVENT_OBJECT.name, 'a0T', [...AUDIT, ro('Name', 'autonumber', { length: 80 })], true));
      }
      objects.get(f.object)!.fields.set(f.name, specToDesc(f));
      deployedFields.add(key);
    }
  }
  if (opts.deployed) deploy();

  function describe(object: string): ObjectDesc {
    const d = objects.get(object);
    if (!d) throw new SfError(404, 'NOT_FOUND', `The requested resource does not exist`);
    return d;
  }

  function get(id: string): { object: string; record: SfRecord } | null {
    const object = idIndex.get(to18(id));
    if (!object) return null;
    const record = table(object).get(to18(id));
    return record ? { object, record } : null;
  }

  const iso = () => new Date(opts.now()).toISOString().replace('Z', '+0000');

  /** Checks one value against its field; returns the per-record error or the normalised value. */
  function checkValue(f: FieldDesc, v: unknown): { ok: true; value: unknown } | { ok: false; error: RecordError } {
    const bad = (statusCode: string, message: string): { ok: false; error: RecordError } => ({ ok: false, error: { statusCode, message, fields: [f.name] } });
    if (v === null || v === undefined || v === '') return { ok: true, value: null };
    switch (f.kind) {
      case 'string':
      case 'textarea':
      case 'url':
      case 'email':
      case 'phone': {
        const s = String(v);
        if (f.length && s.length > f.length) return bad('STRING_TOO_LONG', `${f.name}: data value too large: ${s.slice(0, 20)}... (max length=${f.length})`);
        return { ok: true, value: s };
      }
      case 'picklist': {
        const s = String(v);
        if (f.restricted && !f.values?.includes(s)) return bad('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `bad value for restricted picklist field: ${s}`);
        return { ok: true, value: s };
      }
      case 'datetime': {
        if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) return bad('JSON_PARSER_ERROR', `Cannot deserialize instance of datetime from VALUE_STRING value ${String(v)} or request may be missing a required field`);
        return { ok: true, value: new Date(v).toISOString().replace('Z', '+0000') };
      }
      case 'double':
      case 'currency':
      case 'percent': {
        if (typeof v !== 'number' || !Number.isFinite(v)) return bad('JSON_PARSER_ERROR', `Cannot deserialize instance of double from VALUE_STRING value ${String(v)}`);
        return { ok: true, value: v };
      }
      case 'boolean':
        return { ok: true, value: !!v };
      case 'reference': {
        const target = typeof v === 'string' && /^[a-zA-Z0-9]{15,18}$/.test(v) ? get(v) : null;
        if (!target || (f.referenceTo && target.object !== f.referenceTo)) return bad('INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`);
        if (target.record.IsDeleted) return bad('ENTITY_IS_DELETED', 'entity is deleted');
        return { ok: true, value: target.record.Id };
      }
      default:
        return { ok: true, value: v };
    }
  }

  /**
   * Validates a write. Unknown fields fail the whole request (400 INVALID_FIELD), as Salesforce does when the JSON names
   * a column the org does not have; everything else is a per-record error.
   */
  function prepare(object: string, fields: Record<string, unknown>, mode: 'create' | 'update'): { ok: true; values: Record<string, unknown> } | { ok: false; error: RecordError } {
    const d = describe(object);
    const values: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'attributes' || k === 'Id' || k === 'id') continue;
      const f = d.fields.get(k);
      if (!f) throw new SfError(400, 'INVALID_FIELD', `No such column '${k}' on sobject of type ${object}`);
      if (!f.writable) return { ok: false, error: { statusCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', message: `Unable to create/update fields: ${k}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, fields: [k] } };
      const c = checkValue(f, v);
      if (!c.ok) return c;
      values[k] = c.value;
    }
    for (const f of d.fields.values()) {
      if (!f.unique || values[f.name] === undefined || values[f.name] === null) continue;
      const clash = findByField(object, f.name, values[f.name]).find((r) => !r.IsDeleted && (mode === 'create' || r.Id !== fields.Id));
      if (clash) return { ok: false, error: { statusCode: 'DUPLICATE_VALUE', message: `duplicate value found: ${f.name} duplicates value on record with id: ${clash.Id}`, fields: [f.name] } };
    }
    if (mode === 'create' && object === 'Account' && !values.Name) return { ok: false, error: { statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [Name]', fields: ['Name'] } };
    if (mode === 'create' && object === 'Contact' && !values.LastName) return { ok: false, error: { statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] } };
    return { ok: true, values };
  }

  type Change = { object: string; type: 'CREATE' | 'UPDATE' | 'DELETE'; record: SfRecord; changed: string[] };
  let buffered: Change[] | null = null;
  let journal: Map<string, { object: string; before: SfRecord | null }> | null = null;
  /** Called before a write changes a record, so a rolled-back transaction can put it back. */
  function remember(object: string, id: string, current: SfRecord | null) {
    if (journal && !journal.has(id)) journal.set(id, { object, before: current ? structuredClone(current) : null });
  }
  function emit(object: string, type: Change['type'], record: SfRecord, changed: string[]) {
    const e = { object, type, record: structuredClone(record), changed };
    if (buffered) buffered.push(e);
    else for (const l of listeners) l(e);
  }

  /**
   * Runs writes as one transaction: when keep() says no (allOrNone with a failure), every record returns to its
   * state before and no change event is published, as a rolled-back Salesforce transaction.
   */
  function transaction<T>(fn: () => T, keep: (result: T) => boolean): T {
    // An undo log of the records this transaction touches (null: created by it), not a copy of the whole org: a
    // long-running sandbox holds many thousands of records and each write-back call is a transaction.
    const undo = new Map<string, { object: string; before: SfRecord | null }>();
    journal = undo;
    const numbers = { caseNumber, autoNumber };
    const restore = () => {
      for (const [id, { object, before }] of undo) {
        if (before) {
          table(object).set(id, before);
          indexRecord(object, before);
        }
        else {
          table(object).delete(id);
          idIndex.delete(id);
        }
      }
      caseNumber = numbers.caseNumber;
      autoNumber = numbers.autoNumber;
    };
    buffered = [];
    let result: T;
    try {
      result = fn();
    } catch (err) {
      // A request-level error (400 INVALID_FIELD) means nothing of the request was applied.
      buffered = null;
      journal = null;
      restore();
      throw err;
    }
    journal = null;
    const events = buffered;
    buffered = null;
    if (!keep(result)) {
      restore();
      return result;
    }
    for (const e of events) for (const l of listeners) l(e);
    return result;
  }

  function insert(object: string, fields: Record<string, unknown>, opts2: { system?: boolean } = {}): SaveResult {
    const d = describe(object);
    const p = opts2.system ? { ok: true as const, values: Object.fromEntries(Object.entries(fields).filter(([k]) => k !== 'attributes')) } : prepare(object, fields, 'create');
    if (!p.ok) return { success: false, errors: [p.error] };
    const id = newId(d.prefix);
    const now = iso();
    const rec: SfRecord = { Id: id, IsDeleted: false, CreatedDate: now, LastModifiedDate: now, SystemModstamp: now, OwnerId: null };
    for (const f of d.fields.values()) if (!(f.name in rec)) rec[f.name] = null;
    Object.assign(rec, p.values);
    if (object === 'Case') {
      rec.CaseNumber = String(++caseNumber).padStart(8, '0');
      rec.Status ??= 'New';
      rec.IsClosed = CLOSED_CASE_STATUSES.has(String(rec.Status));
    }
    if (object === 'Contact') rec.Name = [rec.FirstName, rec.LastName].filter(Boolean).join(' ');
    if (d.fields.get('Name')?.kind === 'autonumber') rec.Name = `RE-${String(++autoNumber).padStart(6, '0')}`;
    remember(object, id, null);
    table(object).set(id, rec);
    idIndex.set(id, object);
    indexRecord(object, rec);
    emit(object, 'CREATE', rec, Object.keys(p.values));
    return { id, success: true, errors: [] };
  }

  function update(object: string, id: string, fields: Record<string, unknown>): SaveResult {
    const found = /^[a-zA-Z0-9]{15,18}$/.test(id) ? get(id) : null;
    if (!found || found.object !== object) return { id, success: false, errors: [{ statusCode: 'INVALID_CROSS_REFERENCE_KEY', message: 'invalid cross reference id', fields: [] }] };
    if (found.record.IsDeleted) return { id: found.record.Id, success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] };
    const p = prepare(object, { ...fields, Id: found.record.Id }, 'update');
    if (!p.ok) return { id: found.record.Id, success: false, errors: [p.error] };
    const changed = Object.keys(p.values).filter((k) => found.record[k] !== p.values[k]);
    remember(object, found.record.Id, found.record);
    Object.assign(found.record, p.values);
    indexRecord(object, found.record, Object.keys(p.values));
    if (object === 'Contact') found.record.Name = [found.record.FirstName, found.record.LastName].filter(Boolean).join(' ');
    if (object === 'Case') found.record.IsClosed = CLOSED_CASE_STATUSES.has(String(found.record.Status));
    found.record.LastModifiedDate = found.record.SystemModstamp = iso();
    if (changed.length) emit(object, 'UPDATE', found.record, changed);
    return { id: found.record.Id, success: true, errors: [] };
  }

  function upsert(object: string, extField: string, fields: Record<string, unknown>): SaveResult {
    const d = describe(object);
    const f = d.fields.get(extField);
    if (!f) throw new SfError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${extField}`);
    if (!f.externalId && extField !== 'Id') throw new SfError(400, 'INVALID_FIELD', `Field ${extField} is not an External ID or indexed field for ${object}`);
    const key = fields[extField];
    if (key === null || key === undefined || key === '') return { success: false, errors: [{ statusCode: 'MISSING_ARGUMENT', message: `${extField} not specified`, fields: [] }] };
    const matches = findByField(object, extField, key).filter((r) => !r.IsDeleted);
    if (matches.length > 1) return { success: false, errors: [{ statusCode: 'DUPLICATE_EXTERNAL_ID', message: `${extField}: more than one record found for external id field: ${matches.map((r) => r.Id).join(', ')}`, fields: [extField] }] };
    if (matches[0]) {
      const { [extField]: _omit, ...rest } = fields;
      const r = update(object, matches[0].Id, rest);
      return { ...r, created: false };
    }
    const r = insert(object, fields);
    return { ...r, created: true };
  }

  function remove(object: string, id: string): SaveResult {
    const found = get(id);
    if (!found || found.object !== object) return { id, success: false, errors: [{ statusCode: 'INVALID_CROSS_REFERENCE_KEY', message: 'invalid cross reference id', fields: [] }] };
    if (found.record.IsDeleted) return { id: found.record.Id, success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] };
    remember(object, found.record.Id, found.record);
    found.record.IsDeleted = true;
    emit(object, 'DELETE', found.record, []);
    return { id: found.record.Id, success: true, errors: [] };
  }

  function all(object: string, includeDeleted = false): SfRecord[] {
    return [...table(object).values()].filter((r) => includeDeleted || !r.IsDeleted);
  }

  return {
    orgId: opts.orgId,
    objects,
    describe,
    hasObject: (o: string) => objects.has(o),
    deploy,
    deployedFields,
    get,
    insert,
    update,
    upsert,
    remove,
    all,
    transaction,
    newId,
    transactionKey: () => randomUUID(),
    onChange(l: (typeof listeners)[number]) {
      listeners.push(l);
    },
  };
}
