// The Metadata API calls the deploy command makes (SOAP deploy + checkDeployStatus), enough to deploy force-app/
// into the sandbox org: the package is unzipped and checked (package.xml members present, outbound message user and
// endpoint valid, flow action resolvable), and on success the Tierline fields and object appear in the org.
import { XMLParser } from 'fast-xml-parser';
import { escapeXml } from '../outbound-message.ts';
import { CUSTOM_FIELDS } from '../schema.ts';
import { readZip } from '../zip.ts';
import type { OrgState } from './org.ts';

const parser = new XMLParser({ ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false, processEntities: false, isArray: (name) => ['types', 'members', 'fields', 'outboundMessages'].includes(name) });

type Failure = { componentType: string; fullName: string; problem: string };
type Deploy = { id: string; checkOnly: boolean; success: boolean; total: number; failures: Failure[]; successes: { componentType: string; fullName: string }[]; createdDate: string; polls: number };

const envelope = (body: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

export const soapFault = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:${code}</faultcode><faultstring>${escapeXml(`${code}: ${message}`)}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`;

export function createMetadataApi(org: OrgState, opts: { usernames: () => string[]; now: () => number }) {
  const deploys = new Map<string, Deploy>();
  let seq = 0;
  const log: Deploy[] = [];

  function runDeploy(zipB64: string, checkOnly: boolean): Deploy {
    const id = `0Af${String(++seq).padStart(12, '0')}AAA`;
    const d: Deploy = { id, checkOnly, success: false, total: 0, failures: [], successes: [], createdDate: new Date(opts.now()).toISOString(), polls: 0 };
    deploys.set(id, d);
    log.push(d);
    let entries: { path: string; data: Buffer }[];
    try {
      entries = readZip(Buffer.from(zipB64, 'base64'));
    } catch (err) {
      d.failures.push({ componentType: '', fullName: 'package.zip', problem: `invalid zip: ${(err as Error).message}` });
      return d;
    }
    const pkgEntry = entries.find((e) => /(^|\/)package\.xml$/.test(e.path));
    if (!pkgEntry) {
      d.failures.push({ componentType: '', fullName: 'package.xml', problem: 'No package.xml found' });
      return d;
    }
    const root = pkgEntry.path.slice(0, -'package.xml'.length);
    const file = (p: string) => entries.find((e) => e.path === root + p)?.data.toString('utf8') ?? null;
    const pkg = parser.parse(pkgEntry.data.toString('utf8')) as { Package?: { types?: { name: string; members: string[] }[] } };
    const types = pkg.Package?.types ?? [];
    const outboundInPackage = new Set<string>();
    const fieldKeys: string[] = [];
    // Salesforce resolves references within one deploy whatever the order: flows are checked after everything else.
    const ordered = [...types.filter((t) => t.name !== 'Flow'), ...types.filter((t) => t.name === 'Flow')];
    for (const t of ordered) {
      for (const member of t.members) {
        d.total += 1;
        const fail = (problem: string) => d.failures.push({ componentType: t.name, fullName: member, problem });
        const ok = () => d.successes.push({ componentType: t.name, fullName: member });
        if (t.name === 'CustomField') {
          const [object, field] = member.split('.') as [string, string];
          const src = file(`objects/${object}.object`);
          const parsed = src ? (parser.parse(src) as { CustomObject?: { fields?: { fullName: string; type?: string }[] } }) : null;
          const def = parsed?.CustomObject?.fields?.find((f) => f.fullName === field);
          if (!def) fail(`Field ${field} is listed in package.xml but missing from objects/${object}.object`);
          else if (!CUSTOM_FIELDS.some((f) => f.object === object && f.name === field)) fail(`The Tierline sandbox only deploys Tierline's own fields; ${member} is unknown`);
          else (fieldKeys.push(member), ok());
        } else if (t.name === 'WorkflowOutboundMessage') {
          const [object, name] = member.split('.') as [string, string];
          const src = file(`workflows/${object}.workflow`);
          const wf = src ? (parser.parse(src) as { Workflow?: { outboundMessages?: { fullName: string; endpointUrl?: string; integrationUser?: string }[] } }) : null;
          const om = wf?.Workflow?.outboundMessages?.find((o) => o.fullName === name);
          if (!om) fail(`Outbound message ${name} is missing from workflows/${object}.workflow`);
          else if (!om.endpointUrl || !/^https?:\/\/[^\s]+$/.test(om.endpointUrl) || om.endpointUrl.includes('tierline.invalid')) fail(`Invalid endpoint URL: ${om.endpointUrl ?? '(none)'}`);
          else if (!om.integrationUser || !opts.usernames().includes(om.integrationUser)) fail(`Invalid integrationUser: no active user named ${om.integrationUser ?? '(none)'}`);
          else (outboundInPackage.add(member), ok());
        } else if (t.name === 'Flow') {
          const src = file(`flows/${member}.flow`);
          const action = src ? /<actionName>([^<]+)<\/actionName>/.exec(src)?.[1] : undefined;
          if (!src) fail(`flows/${member}.flow is missing`);
          else if (action && !outboundInPackage.has(action)) fail(`The action ${action} in the flow can't be found`);
          else ok();
        } else if (t.name === 'CustomObject') {
          if (!file(`objects/${member}.object`)) fail(`objects/${member}.object is missing`);
          else ok();
        } else if (t.name === 'PermissionSet') {
          if (!file(`permissionsets/${member}.permissionset`)) fail(`permissionsets/${member}.permissionset is missing`);
          else ok();
        } else ok();
      }
    }
    d.success = d.failures.length === 0;
    if (d.success && !checkOnly) org.deploy(fieldKeys);
    return d;
  }

  function resultXml(d: Deploy, includeDetails: boolean): string {
    const comp = (c: { componentType: string; fullName: string; problem?: string }, ok: boolean) =>
      `<${ok ? 'componentSuccesses' : 'componentFailures'}><changed>${ok}</changed><componentType>${escapeXml(c.componentType)}</componentType><created>${ok}</created><deleted>false</deleted><fileName>${escapeXml(c.fullName)}</fileName><fullName>${escapeXml(c.fullName)}</fullName>${c.problem ? `<problem>${escapeXml(c.problem)}</problem><problemType>Error</problemType>` : ''}<success>${ok}</success></${ok ? 'componentSuccesses' : 'componentFailures'}>`;
    const details = includeDetails ? `<details>${d.successes.map((c) => comp(c, true)).join('')}${d.failures.map((c) => comp(c, false)).join('')}</details>` : '';
    return (
      `<checkOnly>${d.checkOnly}</checkOnly><completedDate>${d.createdDate}</completedDate><createdDate>${d.createdDate}</createdDate>${details}` +
      `<done>true</done><id>${d.id}</id><ignoreWarnings>false</ignoreWarnings><numberComponentErrors>${d.failures.length}</numberComponentErrors>` +
      `<numberComponentsDeployed>${d.success ? d.successes.length : 0}</numberComponentsDeployed><numberComponentsTotal>${d.total}</numberComponentsTotal>` +
      `<numberTestErrors>0</numberTestErrors><numberTestsCompleted>0</numberTestsCompleted><numberTestsTotal>0</numberTestsTotal><rollbackOnError>true</rollbackOnError><runTestsEnabled>false</runTestsEnabled>` +
      `<status>${d.success ? 'Succeeded' : 'Failed'}</status><success>${d.success}</success>`
    );
  }

  /** Handles one SOAP call; returns [status, xml]. authorize checks the SessionHeader's session id. */
  function handle(xml: string, authorize: (token: string | null) => boolean): [number, string] {
    if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return [500, soapFault('INVALID_XML', 'DOCTYPE is not allowed')];
    let doc: Record<string, unknown>;
    try {
      doc = parser.parse(xml) as Record<string, unknown>;
    } catch {
      return [500, soapFault('INVALID_XML', 'malformed SOAP envelope')];
    }
    const env = doc.Envelope as { Header?: { SessionHeader?: { sessionId?: string } }; Body?: Record<string, Record<string, unknown>> } | undefined;
    if (!authorize(env?.Header?.SessionHeader?.sessionId ?? null)) return [500, soapFault('INVALID_SESSION_ID', 'Invalid Session ID found in SessionHeader: Illegal Session')];
    const body = env?.Body ?? {};
    if (body.deploy) {
      const opts2 = (body.deploy.DeployOptions ?? {}) as Record<string, unknown>;
      const d = runDeploy(String(body.deploy.ZipFile ?? ''), String(opts2.checkOnly) === 'true');
      return [200, envelope(`<deployResponse><result><done>false</done><id>${d.id}</id><state>Queued</state></result></deployResponse>`)];
    }
    if (body.checkDeployStatus) {
      const d = deploys.get(String(body.checkDeployStatus.asyncProcessId ?? ''));
      if (!d) return [500, soapFault('INVALID_ID_FIELD', 'invalid id')];
      d.polls += 1;
      return [200, envelope(`<checkDeployStatusResponse><result>${resultXml(d, String(body.checkDeployStatus.includeDetails) === 'true')}</result></checkDeployStatusResponse>`)];
    }
    const method = Object.keys(body)[0] ?? '(none)';
    return [500, soapFault('UNKNOWN_EXCEPTION', `The Tierline sandbox does not implement the Metadata API call ${method}`)];
  }

  return { handle, deploys: () => log.map((d) => ({ id: d.id, success: d.success, checkOnly: d.checkOnly, failures: d.failures.map((f) => ({ ...f })) })) };
}
