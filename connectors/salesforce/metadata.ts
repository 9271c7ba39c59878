// Deploys force-app/ through jsforce's Metadata API, for admins without the sf CLI: converts the SFDX source to the
// Metadata API layout (fields folded into their object files, package.xml listing every component), fills in the
// outbound message endpoint and integration user, zips it, deploys and waits for the result.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Connection } from 'jsforce';
import { AppError } from '../../core/errors.ts';
import { API_VERSION } from './schema.ts';
import { CONNECTOR_DIR, INTEGRATION_USER_PLACEHOLDER, MD_NS, PUBLIC_URL_PLACEHOLDER } from './metadata-source.ts';
import { escapeXml } from './outbound-message.ts';
import { writeZip, type ZipEntry } from './zip.ts';

const SOURCE_ROOT = 'force-app/main/default';

/** Reads the SFDX source from disk (paths relative to connectors/salesforce/). */
export function readForceApp(dir = CONNECTOR_DIR): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p).split('\\').join('/')] = readFileSync(p, 'utf8');
    }
  };
  walk(join(dir, 'force-app'));
  return out;
}

const inner = (xml: string, root: string): string => {
  const m = new RegExp(`<${root}[^>]*>([\\s\\S]*)</${root}>`).exec(xml);
  if (!m) throw new Error(`expected a <${root}> document`);
  return m[1]!.trim();
};

export type DeployPackage = { files: Record<string, string>; members: Record<string, string[]> };

/** SFDX source -> Metadata API package (the same layout `sf project convert source` produces). */
export function toMetadataPackage(source: Record<string, string>, opts: { publicUrl: string; integrationUser: string }): DeployPackage {
  const files: Record<string, string> = {};
  const members: Record<string, string[]> = {};
  const add = (type: string, member: string) => (members[type] ??= []).push(member);
  const objects = new Map<string, { body: string | null; fields: string[]; listViews: string[] }>();
  const obj = (name: string) => {
    let o = objects.get(name);
    if (!o) objects.set(name, (o = { body: null, fields: [], listViews: [] }));
    return o;
  };
  for (const [path, content] of Object.entries(source)) {
    if (!path.startsWith(`${SOURCE_ROOT}/`)) continue;
    const rel = path.slice(SOURCE_ROOT.length + 1);
    let m: RegExpExecArray | null;
    if ((m = /^objects\/([^/]+)\/fields\/([^/]+)\.field-meta\.xml$/.exec(rel))) {
      const body = inner(content, 'CustomField');
      obj(m[1]!).fields.push(body.includes('<fullName>') ? body : `<fullName>${m[2]}</fullName>\n${body}`);
      add('CustomField', `${m[1]}.${m[2]}`);
    } else if ((m = /^objects\/([^/]+)\/listViews\/([^/]+)\.listView-meta\.xml$/.exec(rel))) {
      obj(m[1]!).listViews.push(inner(content, 'ListView'));
      add('ListView', `${m[1]}.${m[2]}`);
    } else if ((m = /^objects\/([^/]+)\/\1\.object-meta\.xml$/.exec(rel))) {
      obj(m[1]!).body = inner(content, 'CustomObject');
      add('CustomObject', m[1]!);
    } else if ((m = /^permissionsets\/([^/]+)\.permissionset-meta\.xml$/.exec(rel))) {
      files[`permissionsets/${m[1]}.permissionset`] = content;
      add('PermissionSet', m[1]!);
    } else if ((m = /^flows\/([^/]+)\.flow-meta\.xml$/.exec(rel))) {
      files[`flows/${m[1]}.flow`] = content;
      add('Flow', m[1]!);
    } else if ((m = /^workflows\/([^/]+)\.workflow-meta\.xml$/.exec(rel))) {
      const endpoint = `${opts.publicUrl.replace(/\/+$/, '')}`;
      files[`workflows/${m[1]}.workflow`] = content.split(PUBLIC_URL_PLACEHOLDER).join(escapeXml(endpoint)).split(INTEGRATION_USER_PLACEHOLDER).join(escapeXml(opts.integrationUser));
      for (const om of content.matchAll(/<outboundMessages>\s*<fullName>([^<]+)<\/fullName>/g)) add('WorkflowOutboundMessage', `${m[1]}.${om[1]}`);
    } else {
      throw new Error(`force-app file of a type the deploy command does not know: ${rel}`);
    }
  }
  for (const [name, o] of objects) {
    const parts = [o.body ?? '', ...o.fields.map((f) => `<fields>\n${f}\n</fields>`), ...o.listViews.map((l) => `<listViews>\n${l}\n</listViews>`)].filter(Boolean);
    files[`objects/${name}.object`] = `<?xml version="1.0" encoding="UTF-8"?>\n<CustomObject xmlns="${MD_NS}">\n${parts.join('\n')}\n</CustomObject>\n`;
  }
  const types = Object.keys(members)
    .sort()
    .map((t) => `    <types>\n${members[t]!.sort().map((x) => `        <members>${x}</members>`).join('\n')}\n        <name>${t}</name>\n    </types>`)
    .join('\n');
  files['package.xml'] = `<?xml version="1.0" encoding="UTF-8"?>\n<Package xmlns="${MD_NS}">\n${types}\n    <version>${API_VERSION}</version>\n</Package>\n`;
  return { files, members };
}

export function zipPackage(p: DeployPackage): Buffer {
  const entries: ZipEntry[] = Object.keys(p.files)
    .sort()
    .map((path) => ({ path: `tierline/${path}`, data: Buffer.from(p.files[path]!, 'utf8') }));
  return writeZip(entries);
}

export type DeployOutcome = { id: string; success: boolean; status: string; componentsDeployed: number; componentsTotal: number; failures: { component: string; problem: string }[] };

type RawDeployResult = {
  id: string;
  done: boolean;
  success: boolean;
  status: string;
  numberComponentsDeployed?: number;
  numberComponentsTotal?: number;
  details?: { componentFailures?: unknown } | null;
};

/**
 * Deploys the package and waits for it. checkOnly validates without changing the org. The endpoint of the outbound
 * message is `${publicUrl}/webhooks/salesforce`; the integration user is the user Tierline is connected as.
 */
export async function deployForceApp(conn: Connection, opts: { publicUrl: string; integrationUser: string; checkOnly?: boolean; pollIntervalMs?: number; timeoutMs?: number; source?: Record<string, string> }): Promise<DeployOutcome> {
  const pkg = toMetadataPackage(opts.source ?? readForceApp(), { publicUrl: opts.publicUrl, integrationUser: opts.integrationUser });
  const zip = zipPackage(pkg);
  conn.metadata.pollInterval = opts.pollIntervalMs ?? 2000;
  conn.metadata.pollTimeout = opts.timeoutMs ?? 10 * 60_000;
  const locator = conn.metadata.deploy(zip, { rollbackOnError: true, singlePackage: false, checkOnly: !!opts.checkOnly });
  const started = (await locator) as unknown as { id: string };
  let r: RawDeployResult;
  const deadline = Date.now() + conn.metadata.pollTimeout;
  for (;;) {
    r = (await conn.metadata.checkDeployStatus(started.id, true)) as unknown as RawDeployResult;
    if (r.done) break;
    if (Date.now() > deadline) throw new AppError('upstream', `The metadata deploy ${started.id} did not finish in time; check Setup > Deployment Status in Salesforce.`);
    await new Promise((ok) => setTimeout(ok, conn.metadata.pollInterval));
  }
  const raw = r.details?.componentFailures;
  const list = (Array.isArray(raw) ? raw : raw ? [raw] : []) as { fullName?: string; componentType?: string; problem?: string }[];
  return {
    id: r.id,
    success: !!r.success,
    status: r.status,
    componentsDeployed: Number(r.numberComponentsDeployed ?? 0),
    componentsTotal: Number(r.numberComponentsTotal ?? 0),
    failures: list.map((f) => ({ component: `${f.componentType ?? ''} ${f.fullName ?? ''}`.trim(), problem: String(f.problem ?? '') })),
  };
}
