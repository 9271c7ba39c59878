// The Salesforce side of the install: force-app/ (SFDX source) kept in step with manifest.json and with the code that
// writes; the Metadata API package built from it; the deploy through jsforce's Metadata API (connector and CLI); and
// what an admin sees before deploying (a misconfigured error naming the field and the fix).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterEach, describe, expect, it } from 'vitest';
import manifest from '../../../manifest.json' with { type: 'json' };
import { AppError } from '../../../core/errors.ts';
import { main as deployCli } from '../../../connectors/salesforce/deploy.ts';
import { deployForceApp, readForceApp, toMetadataPackage, zipPackage } from '../../../connectors/salesforce/metadata.ts';
import { CONNECTOR_DIR, renderForceApp } from '../../../connectors/salesforce/metadata-source.ts';
import { CUSTOM_FIELDS } from '../../../connectors/salesforce/schema.ts';
import { readZip } from '../../../connectors/salesforce/zip.ts';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_USERNAME } from '../../../connectors/salesforce/sandbox/index.ts';
import { createSalesforceConnector } from '../../../connectors/salesforce/index.ts';
import { createSecretBox } from '../../../connectors/shared/secrets.ts';
import { silentLogger } from '../../../server/logger.ts';
import { openLowdbStore } from '../../../server/storage/lowdb-store.ts';
import { SECRETS_KEY, startHarness, type Harness } from './harness.ts';

const sf = manifest.connectors.salesforce;
const source = readForceApp();
const ROOT = 'force-app/main/default';
const xml = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (n) => ['fieldPermissions', 'objectPermissions', 'value', 'fields', 'outboundMessages'].includes(n) });
const fieldFiles = Object.keys(source)
  .map((p) => /^force-app\/main\/default\/objects\/([^/]+)\/fields\/([^/]+)\.field-meta\.xml$/.exec(p))
  .filter((m): m is RegExpExecArray => !!m)
  .map((m) => `${m[1]}.${m[2]}`);

describe('force-app/ and manifest.json stay in step', () => {
  it('has a field definition for every custom field the manifest reads or writes (the Telegram intake included)', () => {
    const listed = new Set<string>();
    for (const [obj, fields] of [...Object.entries(sf.reads), ...Object.entries(sf.writes), ...Object.entries(sf.intake)]) for (const f of fields) if (f.endsWith('__c')) listed.add(`${obj}.${f}`);
    expect(new Set(fieldFiles)).toEqual(listed);
  });

  it('defines the Routing_Event__c object with lookups to Case and Account (the "Routing History" related list)', () => {
    const obj = xml.parse(source[`${ROOT}/objects/Routing_Event__c/Routing_Event__c.object-meta.xml`]!).CustomObject;
    expect(obj).toMatchObject({ label: 'Routing Event', deploymentStatus: 'Deployed', nameField: { type: 'AutoNumber' } });
    for (const [f, target] of [['Case__c', 'Case'], ['Account__c', 'Account']] as const) {
      const def = xml.parse(source[`${ROOT}/objects/Routing_Event__c/fields/${f}.field-meta.xml`]!).CustomField;
      expect(def).toMatchObject({ type: 'Lookup', referenceTo: target, relationshipName: 'Routing_Events', relationshipLabel: 'Routing History' });
    }
    const key = xml.parse(source[`${ROOT}/objects/Routing_Event__c/fields/Event_Key__c.field-meta.xml`]!).CustomField;
    expect(key).toMatchObject({ externalId: 'true', unique: 'true', caseSensitive: 'true' });
  });

  it('matches the field types and sizes the write-back relies on', () => {
    for (const f of CUSTOM_FIELDS) {
      const def = xml.parse(source[`${ROOT}/objects/${f.object}/fields/${f.name}.field-meta.xml`]!).CustomField;
      expect(def.type, `${f.object}.${f.name}`).toBe(f.type);
      if (f.type === 'Text' || f.type === 'LongTextArea') expect(Number(def.length)).toBe(f.length);
      if (f.values) expect(def.valueSet.valueSetDefinition.value.map((v: { fullName: string }) => v.fullName)).toEqual(f.values.map((v) => v[0]));
    }
  });

  it('is exactly what metadata-source.ts renders (regenerate with node connectors/salesforce/metadata-source.ts)', () => {
    const rendered = renderForceApp();
    for (const [path, content] of Object.entries(rendered)) {
      expect(readFileSync(join(CONNECTOR_DIR, path), 'utf8'), path).toBe(content);
    }
    expect(Object.keys(source).sort()).toEqual(Object.keys(rendered).filter((p) => p.startsWith('force-app/')).sort());
  });

  it('grants the integration user edit on what Tierline writes, and reps read only', () => {
    const integ = xml.parse(source[`${ROOT}/permissionsets/Tierline_Integration.permissionset-meta.xml`]!).PermissionSet;
    const reps = xml.parse(source[`${ROOT}/permissionsets/Tierline_Routing_History.permissionset-meta.xml`]!).PermissionSet;
    const editable = (ps: { fieldPermissions: { field: string; editable: string }[] }) => ps.fieldPermissions.filter((p) => p.editable === 'true').map((p) => p.field).sort();
    // What the write-back writes, plus the custom fields the Telegram intake sets when it creates Cases and Contacts.
    const written = CUSTOM_FIELDS.filter((f) => f.written).map((f) => `${f.object}.${f.name}`);
    const writes = [...new Set([...Object.entries(sf.writes), ...Object.entries(sf.intake)].flatMap(([o, fs]) => fs.filter((f) => f.endsWith('__c')).map((f) => `${o}.${f}`)))].filter((f) => written.includes(f)).sort();
    expect(editable(integ)).toEqual(writes);
    expect(editable(reps)).toEqual([]);
    expect(integ.objectPermissions.find((p: { object: string }) => p.object === 'Routing_Event__c')).toMatchObject({ allowCreate: 'true', allowEdit: 'true', allowRead: 'true', allowDelete: 'false' });
    expect(reps.objectPermissions).toEqual([expect.objectContaining({ object: 'Routing_Event__c', allowRead: 'true', allowCreate: 'false' })]);
  });

  it('ships a record-triggered flow that sends the Tierline outbound message for new Cases', () => {
    const flow = xml.parse(source[`${ROOT}/flows/Tierline_Notify_New_Case.flow-meta.xml`]!).Flow;
    expect(flow.start).toMatchObject({ object: 'Case', recordTriggerType: 'Create', triggerType: 'RecordAfterSave' });
    expect(flow.actionCalls).toMatchObject({ actionType: 'outboundMessage', actionName: 'Case.Tierline_New_Case' });
    expect(flow.status).toBe('Active');
    const om = xml.parse(source[`${ROOT}/workflows/Case.workflow-meta.xml`]!).Workflow.outboundMessages[0];
    expect(om).toMatchObject({ fullName: 'Tierline_New_Case', endpointUrl: 'https://tierline.invalid/webhooks/salesforce', includeSessionId: 'false' });
    expect(om.fields).toContain('Id');
    const project = JSON.parse(readFileSync(join(CONNECTOR_DIR, 'sfdx-project.json'), 'utf8'));
    expect(project.replacements.map((r: { replaceWithEnv: string }) => r.replaceWithEnv)).toEqual(['TIERLINE_PUBLIC_URL', 'TIERLINE_SF_INTEGRATION_USER']);
  });
});

describe('Metadata API package', () => {
  const pkg = toMetadataPackage(source, { publicUrl: 'https://tierline.example.com', integrationUser: 'integration@acme.example' });

  it('folds fields into object files and lists every component in package.xml', () => {
    expect(pkg.members.CustomField!.sort()).toEqual([...fieldFiles].sort());
    expect(pkg.members).toMatchObject({ CustomObject: ['Routing_Event__c'], Flow: ['Tierline_Notify_New_Case'], WorkflowOutboundMessage: ['Case.Tierline_New_Case'], ListView: ['Routing_Event__c.All'] });
    expect(pkg.members.PermissionSet!.sort()).toEqual(['Tierline_Integration', 'Tierline_Routing_History']);
    const caseObj = xml.parse(pkg.files['objects/Case.object']!).CustomObject;
    expect(caseObj.fields.map((f: { fullName: string }) => f.fullName).sort()).toEqual(fieldFiles.filter((f) => f.startsWith('Case.')).map((f) => f.slice(5)).sort());
    expect(pkg.files['package.xml']).toContain('<version>62.0</version>');
  });

  it('fills in the endpoint and the integration user, and zips to a readable archive', () => {
    const wf = pkg.files['workflows/Case.workflow']!;
    expect(wf).toContain('<endpointUrl>https://tierline.example.com/webhooks/salesforce</endpointUrl>');
    expect(wf).toContain('<integrationUser>integration@acme.example</integrationUser>');
    expect(wf).not.toContain('tierline.invalid');
    const entries = readZip(zipPackage(pkg));
    expect(entries.map((e) => e.path)).toContain('tierline/package.xml');
    expect(entries.find((e) => e.path === 'tierline/objects/Routing_Event__c.object')!.data.toString('utf8')).toBe(pkg.files['objects/Routing_Event__c.object']);
    expect(zipPackage(pkg).equals(zipPackage(pkg))).toBe(true);
  });
});

describe('Deploying force-app through jsforce', () => {
  let h: Harness | null = null;
  const tmp: string[] = [];
  afterEach(async () => {
    await h?.close();
    h = null;
    for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('names the missing field and the fix before the metadata is deployed, and works after the deploy', async () => {
    h = await startHarness({ sandbox: { deployed: false } });
    const c = await h.sb.createCase({ subject: 'Before deploy', notify: false });
    const ref = { crm: 'salesforce' as const, account: h.sb.orgId, ticketId: c.id };
    const read = await h.connector.crm.fetchContext(ref).catch((e: unknown) => e);
    expect((read as AppError).code).toBe('misconfigured');
    expect((read as AppError).message).toContain('has no Contact.Tierline_Telegram_User_Id__c');
    expect((read as AppError).message).toContain('deploy the force-app metadata');
    const key = `salesforce:${h.sb.orgId}:${c.id}`;
    const wb = { entry: { key: `${key}#1`, ticketKey: key, seq: 1, kind: 'routed' as const, at: h.clock.now(), queueId: 'general', agentId: null, ruleId: null, tier: null, text: 'Routed' }, fields: { status: 'waiting' as const, queue: 'General', agent: null, segment: 'unknown', tier: null, rule: null, routedAt: new Date(h.clock.now()).toISOString(), topicLink: null, firstResponseMinutes: null, resolvedAt: null, slaMet: null, reason: 'waiting' }, companyId: null };
    const write = await h.connector.crm.writeBack(ref, wb).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(AppError);
    expect((write as AppError).code).toBe('misconfigured');
    expect((write as AppError).message).toMatch(/has no Case\.Tierline_\w+__c .*deploy the force-app metadata/);
    const health = await h.connector.health();
    expect(health.ok).toBe(false);
    expect(health.lastError).toContain('deploy the force-app metadata');

    // Validate first: nothing changes.
    const check = await h.connector.deployMetadata(h.sb.orgId, { checkOnly: true });
    expect(check).toMatchObject({ success: true, status: 'Succeeded' });
    expect(h.sb.metadataDeployed()).toBe(false);

    const r = await h.connector.deployMetadata(h.sb.orgId);
    expect(r).toMatchObject({ success: true, failures: [] });
    expect(r.componentsDeployed).toBe(r.componentsTotal);
    expect(h.sb.metadataDeployed()).toBe(true);

    await expect(h.connector.crm.fetchContext(ref)).resolves.toMatchObject({ subject: 'Before deploy' });
    await h.connector.crm.writeBack(ref, wb);
    expect(h.sb.routingEvents(c.id)).toHaveLength(1);
    expect((await h.connector.health()).ok).toBe(true);
  });

  it('names the Routing_Event__c object when only the Case fields were deployed', async () => {
    h = await startHarness({ sandbox: { deployed: false } });
    h.sb.deployMetadata(CUSTOM_FIELDS.filter((f) => f.object !== 'Routing_Event__c').map((f) => `${f.object}.${f.name}`));
    const c = await h.sb.createCase({ subject: 'Half deployed', notify: false });
    const key = `salesforce:${h.sb.orgId}:${c.id}`;
    const err = await h.connector.crm
      .writeBack({ crm: 'salesforce', account: h.sb.orgId, ticketId: c.id }, { entry: { key: `${key}#1`, ticketKey: key, seq: 1, kind: 'routed', at: h.clock.now(), queueId: 'general', agentId: null, ruleId: null, tier: null, text: 'Routed' }, fields: { status: 'waiting', queue: 'General', agent: null, segment: 'unknown', tier: null, rule: null, routedAt: new Date(h.clock.now()).toISOString(), topicLink: null, firstResponseMinutes: null, resolvedAt: null, slaMet: null, reason: 'waiting' }, companyId: null })
      .catch((e: unknown) => e);
    expect((err as AppError).code).toBe('misconfigured');
    expect((err as AppError).message).toContain('has no Routing_Event__c object with the external id field Event_Key__c');
    expect((err as AppError).message).toContain('deploy the force-app metadata');
    expect(h.sb.case(c.id)!.Tierline_Status__c).toBe('waiting'); // the Case part went through
  });

  it('reports component failures and changes nothing when the deploy fails', async () => {
    h = await startHarness({ sandbox: { deployed: false } });
    const s = await (async () => {
      // The connector's own session (real jsforce) for a deploy with a user the org does not have.
      const { createClients, DEFAULT_TUNING } = await import('../../../connectors/salesforce/client.ts');
      const { createSecretBox } = await import('../../../connectors/shared/secrets.ts');
      const { SECRETS_KEY } = await import('./harness.ts');
      const { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET } = await import('../../../connectors/salesforce/sandbox/credentials.ts');
      const clients = createClients({ env: { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, loginUrl: h!.sb.url, orgIds: [h!.sb.orgId], publicUrl: h!.publicUrl }, mode: 'sandbox', store: h!.store, secrets: createSecretBox(SECRETS_KEY), logger: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } }, clock: h!.clock, tuning: DEFAULT_TUNING, privateKey: () => null });
      return clients.session(h!.sb.orgId);
    })();
    const r = await deployForceApp(s.conn, { publicUrl: h.publicUrl, integrationUser: 'nobody@acme.example' });
    expect(r.success).toBe(false);
    expect(r.failures).toContainEqual({ component: 'WorkflowOutboundMessage Case.Tierline_New_Case', problem: 'Invalid integrationUser: no active user named nobody@acme.example' });
    expect(r.failures.some((f) => f.component === 'Flow Tierline_Notify_New_Case')).toBe(true);
    expect(h.sb.metadataDeployed()).toBe(false);
  });

  it('deploys from the command line with an admin session (npm run salesforce:deploy)', async () => {
    h = await startHarness({ sandbox: { deployed: false } });
    const lines: string[] = [];
    const env = { SALESFORCE_INSTANCE_URL: h.sb.url, SALESFORCE_ACCESS_TOKEN: h.sb.accessToken, PUBLIC_URL: 'https://tierline.example.com' };
    expect(await deployCli([], env, (s) => lines.push(s))).toBe(0);
    expect(lines[0]).toContain(`outbound messages go to https://tierline.example.com/webhooks/salesforce as ${SANDBOX_USERNAME}`);
    expect(lines.join('\n')).toMatch(/Deployed: \d+ of \d+ components/);
    expect(h.sb.metadataDeployed()).toBe(true);
    expect(lines.join('\n')).not.toContain(h.sb.accessToken);
  });

  it('deploys with --org through the install Tierline stored (lowdb data directory), after the service stopped', async () => {
    h = await startHarness({ sandbox: { deployed: false }, start: false });
    const dir = mkdtempSync(join(tmpdir(), 'tierline-deploy-org-'));
    try {
      // What the service leaves in DATA_DIR once an admin connected the org: the sealed install.
      const store = await openLowdbStore({ dir, clock: { now: () => Date.now() }, logger: silentLogger });
      const connector = await createSalesforceConnector({ env: { loginUrl: h.sb.url, orgIds: [h.sb.orgId], publicUrl: h.publicUrl }, mode: 'sandbox', store, secrets: createSecretBox(SECRETS_KEY), logger: silentLogger, clock: { now: () => Date.now() }, intake: { accept: async () => ({ accepted: 0, duplicates: 0 }) }, cdcRetryMs: 20 });
      await connector.start();
      await connector.stop();
      await store.close();

      const lines: string[] = [];
      const env = { DATA_DIR: dir, SECRETS_KEY, PUBLIC_URL: 'https://tierline.example.com', SALESFORCE_LOGIN_URL: h.sb.url };
      // Without the connected app the stored session cannot be refreshed: said before anything is tried.
      expect(await deployCli(['--org', h.sb.orgId], env, (x) => lines.push(x))).toBe(2);
      expect(lines.pop()).toMatch(/--org needs SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET/);
      const code = await deployCli(['--org', h.sb.orgId], { ...env, SALESFORCE_CLIENT_ID: SANDBOX_CLIENT_ID, SALESFORCE_CLIENT_SECRET: SANDBOX_CLIENT_SECRET }, (x) => lines.push(x));
      expect(lines.join('\n')).not.toMatch(/failed/);
      expect(code).toBe(0);
      expect(lines[0]).toContain(`the install Tierline stored for org ${h.sb.orgId}`);
      expect(h.sb.metadataDeployed()).toBe(true);
      expect(lines.join('\n')).not.toContain(SECRETS_KEY);
      // The store was closed after the deploy: the data directory opens again.
      await (await openLowdbStore({ dir, clock: { now: () => Date.now() }, logger: silentLogger })).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains what is missing instead of deploying half-configured', async () => {
    const lines: string[] = [];
    expect(await deployCli(['--bogus'], {}, (s) => lines.push(s))).toBe(2);
    expect(await deployCli([], {}, (s) => lines.push(s))).toBe(2);
    expect(lines.join('\n')).toContain('set PUBLIC_URL');
    expect(await deployCli([], { PUBLIC_URL: 'https://t.example.com' }, (s) => lines.push(s))).toBe(2);
    expect(lines.at(-1)).toContain('no Salesforce login');
    const dir = mkdtempSync(join(tmpdir(), 'tierline-sf-pkg-'));
    tmp.push(dir);
    expect(await deployCli(['--out', join(dir, 'p.zip'), '--integration-user', 'int@acme.example'], { PUBLIC_URL: 'https://t.example.com' }, (s) => lines.push(s))).toBe(0);
    expect(readZip(readFileSync(join(dir, 'p.zip'))).some((e) => e.path.endsWith('workflows/Case.workflow'))).toBe(true);
  });

  it('runs as a script under the project\'s Node', async () => {
    h = await startHarness({ sandbox: { deployed: false } });
    const out = await new Promise<{ code: number | null; stdout: string }>((ok) => {
      const p = spawn(process.execPath, [join(CONNECTOR_DIR, 'deploy.ts'), '--check-only', '--json'], { env: { PATH: process.env.PATH, SALESFORCE_INSTANCE_URL: h!.sb.url, SALESFORCE_ACCESS_TOKEN: h!.sb.accessToken, PUBLIC_URL: 'https://tierline.example.com', https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9' } });
      let stdout = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.on('close', (code) => ok({ code, stdout }));
    });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toMatchObject({ success: true, status: 'Succeeded' });
    expect(h.sb.metadataDeployed()).toBe(false); // check-only
  });
});
