// The SOQL the sandbox understands: SELECT fields (with parent relationship paths such as Account.Name) FROM one
// object, WHERE conditions joined by AND (=, !=, IN), ORDER BY one field, LIMIT. That covers every query Tierline
// issues; anything else is a MALFORMED_QUERY, and unknown columns are INVALID_FIELD with Salesforce's wording.
import { SfError, type OrgState, type SfRecord } from './org.ts';

type Literal = string | number | boolean | null;
type Cond = { field: string; op: '=' | '!=' | 'IN'; value: Literal | Literal[] };
export type SoqlQuery = { fields: string[]; object: string; where: Cond[]; orderBy: { field: string; desc: boolean } | null; limit: number | null; text: string };

const TOKEN = /\s*(?:('(?:[^'\\]|\\.)*')|(!=|=|,|\(|\))|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?))/y;

function tokenize(q: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < q.length) {
    if (/^\s*$/.test(q.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(q);
    if (!m) throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${q.slice(pos).trim().slice(0, 20)}'`);
    out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
    pos = TOKEN.lastIndex;
  }
  return out;
}

function literal(tok: string | undefined): Literal {
  if (tok === undefined) throw new SfError(400, 'MALFORMED_QUERY', 'unexpected end of query');
  if (tok.startsWith("'")) return tok.slice(1, -1).replace(/\\(.)/g, '$1');
  if (/^null$/i.test(tok)) return null;
  if (/^(true|false)$/i.test(tok)) return tok.toLowerCase() === 'true';
  if (/^-?\d/.test(tok)) return Number(tok);
  throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${tok}'`);
}

export function parseSoql(text: string): SoqlQuery {
  const t = tokenize(text);
  let i = 0;
  const kw = (w: string) => t[i]?.toUpperCase() === w;
  const expect = (w: string) => {
    if (!kw(w)) throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${t[i] ?? 'end of query'}' (expected ${w})`);
    i++;
  };
  expect('SELECT');
  const fields: string[] = [];
  for (;;) {
    const f = t[i++];
    if (!f || !/^[A-Za-z_]/.test(f) || f.toUpperCase() === 'FROM') throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${f ?? 'end of query'}'`);
    fields.push(f);
    if (t[i] === ',') {
      i++;
      continue;
    }
    break;
  }
  expect('FROM');
  const object = t[i++];
  if (!object) throw new SfError(400, 'MALFORMED_QUERY', 'unexpected end of query');
  const where: Cond[] = [];
  if (kw('WHERE')) {
    i++;
    for (;;) {
      const field = t[i++]!;
      const op = t[i++]?.toUpperCase();
      if (op === '=' || op === '!=') where.push({ field, op, value: literal(t[i++]) });
      else if (op === 'IN') {
        if (t[i++] !== '(') throw new SfError(400, 'MALFORMED_QUERY', 'expected ( after IN');
        const values: Literal[] = [];
        while (t[i] !== ')') {
          values.push(literal(t[i++]));
          if (t[i] === ',') i++;
          else if (t[i] !== ')') throw new SfError(400, 'MALFORMED_QUERY', 'expected , or ) in IN list');
        }
        i++;
        where.push({ field, op: 'IN', value: values });
      } else throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${op ?? 'end of query'}'`);
      if (kw('AND')) {
        i++;
        continue;
      }
      break;
    }
  }
  let orderBy: SoqlQuery['orderBy'] = null;
  if (kw('ORDER')) {
    i++;
    expect('BY');
    orderBy = { field: t[i++]!, desc: false };
    if (kw('DESC')) (orderBy.desc = true), i++;
    else if (kw('ASC')) i++;
  }
  let limit: number | null = null;
  if (kw('LIMIT')) {
    i++;
    limit = Number(t[i++]);
    if (!Number.isInteger(limit) || limit < 0) throw new SfError(400, 'MALFORMED_QUERY', 'LIMIT must be a non-negative integer');
  }
  if (i < t.length) throw new SfError(400, 'MALFORMED_QUERY', `unexpected token: '${t[i]}'`);
  return { fields, object, where, orderBy, limit, text };
}

function noColumn(q: SoqlQuery, field: string, object: string): SfError {
  const col = q.text.indexOf(field) + 1;
  return new SfError(
    400,
    'INVALID_FIELD',
    `\n${q.text.slice(0, 120)}\n${' '.repeat(Math.max(0, col - 1))}^\nERROR at Row:1:Column:${col}\nNo such column '${field.split('.').pop()}' on entity '${object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
  );
}

/** Resolves a field path against the org's schema; returns a getter. */
function resolver(org: OrgState, q: SoqlQuery, path: string): { rel: string | null; field: string; target: string } {
  const base = org.describe(q.object);
  const parts = path.split('.');
  if (parts.length === 1) {
    if (!base.fields.has(path)) throw noColumn(q, path, q.object);
    return { rel: null, field: path, target: q.object };
  }
  if (parts.length !== 2) throw new SfError(400, 'INVALID_FIELD', `Tierline sandbox supports one level of relationship, got '${path}'`);
  const [rel, field] = parts as [string, string];
  const ref = [...base.fields.values()].find((f) => f.relationshipName === rel);
  if (!ref?.referenceTo) throw new SfError(400, 'INVALID_FIELD', `Didn't understand relationship '${rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name.`);
  const target = org.describe(ref.referenceTo);
  if (!target.fields.has(field)) throw noColumn(q, path, ref.referenceTo);
  return { rel, field, target: ref.referenceTo };
}

function sameValue(a: unknown, b: Literal): boolean {
  if (a === null || a === undefined) return b === null;
  if (b === null) return false;
  if (typeof a === 'string' && typeof b === 'string') {
    if (/^[a-zA-Z0-9]{18}$/.test(a) && /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/.test(b)) return a.slice(0, 15) === b.slice(0, 15);
    return a.toLowerCase() === b.toLowerCase();
  }
  return a === b;
}

export function runSoql(org: OrgState, text: string, version: string): { totalSize: number; done: true; records: Record<string, unknown>[] } {
  const q = parseSoql(text);
  if (!org.hasObject(q.object)) throw new SfError(400, 'INVALID_TYPE', `\n${text.slice(0, 120)}\nERROR at Row:1:Column:${text.indexOf(q.object) + 1}\nsObject type '${q.object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.`);
  const select = q.fields.map((p) => ({ path: p, ...resolver(org, q, p) }));
  const conds = q.where.map((c) => ({ ...c, r: resolver(org, q, c.field) }));
  const valueOf = (rec: SfRecord, r: { rel: string | null; field: string }) => {
    if (!r.rel) return rec[r.field];
    const refField = [...org.describe(q.object).fields.values()].find((f) => f.relationshipName === r.rel)!;
    const parent = rec[refField.name] ? org.get(String(rec[refField.name]))?.record : null;
    return parent && !parent.IsDeleted ? parent[r.field] : null;
  };
  // WHERE Id = '…' (how Tierline reads a Case at routing time) is answered from the id index, not a scan of the table.
  const byId = conds.find((c) => !c.r.rel && c.r.field === 'Id' && c.op === '=' && typeof c.value === 'string');
  const found = byId ? org.get(byId.value as string) : null;
  const candidates = byId ? (found && found.object === q.object && !found.record.IsDeleted ? [found.record] : []) : org.all(q.object);
  let rows = candidates.filter((rec) => conds.every((c) => {
    const v = valueOf(rec, c.r);
    if (c.op === 'IN') return (c.value as Literal[]).some((x) => sameValue(v, x));
    const eq = sameValue(v, c.value as Literal);
    return c.op === '=' ? eq : !eq;
  }));
  if (q.orderBy) {
    const r = resolver(org, q, q.orderBy.field);
    const dir = q.orderBy.desc ? -1 : 1;
    rows = rows.sort((a, b) => {
      const x = valueOf(a, r) as string | number | null;
      const y = valueOf(b, r) as string | number | null;
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return x < y ? -dir : dir;
    });
  }
  if (q.limit !== null) rows = rows.slice(0, q.limit);
  const attrs = (type: string, id: string) => ({ type, url: `/services/data/v${version}/sobjects/${type}/${id}` });
  const records = rows.map((rec) => {
    const out: Record<string, unknown> = { attributes: attrs(q.object, rec.Id) };
    for (const s of select) {
      if (!s.rel) {
        out[s.field] = rec[s.field] ?? null;
        continue;
      }
      const refField = [...org.describe(q.object).fields.values()].find((f) => f.relationshipName === s.rel)!;
      const parent = rec[refField.name] ? org.get(String(rec[refField.name]))?.record : null;
      if (!parent || parent.IsDeleted) {
        out[s.rel] = null;
        continue;
      }
      const sub = (out[s.rel] as Record<string, unknown> | undefined) ?? { attributes: attrs(s.target, parent.Id) };
      sub[s.field] = parent[s.field] ?? null;
      out[s.rel] = sub;
    }
    return out;
  });
  return { totalSize: records.length, done: true, records };
}
