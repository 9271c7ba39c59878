// A configuration draft as the console edits it: one JSON text per section, parsed with messages that point at the
// section, line and column, then validated by core/config.ts whose problems carry a path ("rules[2].queue") that
// the form maps back to its field.
import { ConfigError, parseRoutingConfig, type ConfigProblem, type RoutingConfig } from '../../core/config.ts';

export const SECTIONS = ['tiering', 'rules', 'defaultQueue', 'queues', 'agents', 'groups'] as const;
export type Section = (typeof SECTIONS)[number];
export type DraftText = Record<Section, string>;

export function textOf(config: RoutingConfig | Record<string, unknown> | null): DraftText {
  const c = (config ?? {}) as Record<string, unknown>;
  const json = (v: unknown, fallback: unknown) => JSON.stringify(v ?? fallback, null, 2);
  return {
    tiering: json(c.tiering, {}),
    rules: json(c.rules, []),
    defaultQueue: typeof c.defaultQueue === 'string' ? c.defaultQueue : '',
    queues: json(c.queues, []),
    agents: json(c.agents, []),
    groups: json(c.groups, []),
  };
}

/** Reads the draft from a submitted form: one field per section. */
export function draftFromForm(form: Record<string, unknown>): DraftText {
  const str = (k: Section) => (typeof form[k] === 'string' ? (form[k] as string) : '');
  return { tiering: str('tiering'), rules: str('rules'), defaultQueue: str('defaultQueue').trim(), queues: str('queues'), agents: str('agents'), groups: str('groups') };
}

export type Parsed = { ok: true; config: RoutingConfig; input: Record<string, unknown> } | { ok: false; problems: ConfigProblem[]; input: Record<string, unknown> | null };

/** JSON.parse with the position turned into "line L, column C" an admin can find in a textarea. */
function parseJson(section: Section, text: string): { ok: true; value: unknown } | { ok: false; problem: ConfigProblem } {
  if (!text.trim()) return { ok: false, problem: { path: section, message: `${section} is empty; write ${section === 'tiering' ? '{}' : '[]'} for none` } };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const pos = /position (\d+)/.exec(msg);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const column = before.length - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${column}`;
    }
    return { ok: false, problem: { path: section, message: `not valid JSON${where}: ${msg.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '')}` } };
  }
}

/** Parses and validates; never throws for bad input. */
export function parseDraft(d: DraftText): Parsed {
  const problems: ConfigProblem[] = [];
  const input: Record<string, unknown> = {};
  for (const s of SECTIONS) {
    if (s === 'defaultQueue') {
      input.defaultQueue = d.defaultQueue;
      continue;
    }
    const r = parseJson(s, d[s]);
    if (r.ok) input[s] = r.value;
    else problems.push(r.problem);
  }
  if (problems.length) return { ok: false, problems, input: null };
  try {
    return { ok: true, config: parseRoutingConfig(input), input };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: err.problems, input };
    throw err;
  }
}

/** The form field a problem belongs to ("rules[2].queue" -> rules); null for whole-config problems. */
export function sectionOf(path: string): Section | null {
  const head = /^[A-Za-z]+/.exec(path)?.[0];
  return head && (SECTIONS as readonly string[]).includes(head) ? (head as Section) : null;
}

/** "rules[2].queue" -> 'rules[2] (id "billing") → queue', so the admin finds the item without counting. */
export function describePath(path: string, input: Record<string, unknown> | null): string {
  const m = /^([A-Za-z]+)\[(\d+)\](.*)$/.exec(path);
  if (!m || !input) return path;
  const list = input[m[1]!];
  const item = Array.isArray(list) ? (list[Number(m[2])] as { id?: unknown } | undefined) : undefined;
  const id = item && typeof item === 'object' && typeof item.id === 'string' ? ` (id "${item.id}")` : '';
  const rest = m[3]!.replace(/^\./, '');
  return `${m[1]}[${m[2]}]${id}${rest ? ` → ${rest}` : ''}`;
}
