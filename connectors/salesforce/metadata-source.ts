// Renders the SFDX source under force-app/ from schema.ts, so the fields the code writes, the fields the org has and
// the fields manifest.json lists cannot drift apart. Regenerate after changing schema.ts:
//   node connectors/salesforce/metadata-source.ts
// (a test fails when the committed files differ from this rendering).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeXml } from './outbound-message.ts';
import { API_VERSION, CUSTOM_FIELDS, ROUTING_EVENT_OBJECT, type FieldSpec } from './schema.ts';

export const MD_NS = 'http://soap.sforce.com/2006/04/metadata';
/** Placeholders that the deploy command (or `sf` replacements in sfdx-project.json) swap for the real values. */
export const PUBLIC_URL_PLACEHOLDER = 'https://tierline.invalid';
export const INTEGRATION_USER_PLACEHOLDER = 'tierline-integration-user@example.invalid';
export const OUTBOUND_MESSAGE_NAME = 'Tierline_New_Case';
export const FLOW_NAME = 'Tierline_Notify_New_Case';
export const PERMISSION_SETS = { integration: 'Tierline_Integration', reps: 'Tierline_Routing_History' } as const;
/** Fields the outbound message carries; Tierline re-reads the Case anyway, these make the intake reason exact. */
export const OUTBOUND_FIELDS = ['AccountId', 'CaseNumber', 'CreatedDate', 'Id', 'LastModifiedDate'];

const ROOT = 'force-app/main/default';
const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

type Node = [string, string | number | boolean | Node[]];

function xml(nodes: Node[], indent = 1): string {
  const pad = '    '.repeat(indent);
  return nodes
    .map(([k, v]) => (Array.isArray(v) ? `${pad}<${k}>\n${xml(v, indent + 1)}\n${pad}</${k}>` : `${pad}<${k}>${escapeXml(String(v))}</${k}>`))
    .join('\n');
}

const doc = (root: string, nodes: Node[]) => `${HEAD}<${root} xmlns="${MD_NS}">\n${xml(nodes)}\n</${root}>\n`;

function fieldNodes(f: FieldSpec): Node[] {
  const n: Node[] = [['fullName', f.name]];
  if (f.type === 'Text' && f.unique) n.push(['caseSensitive', true]);
  if (f.type === 'Lookup') n.push(['deleteConstraint', 'SetNull']);
  n.push(['description', f.description]);
  if (f.type === 'Text') n.push(['externalId', !!f.externalId]);
  n.push(['inlineHelpText', f.description]);
  n.push(['label', f.label]);
  if (f.type === 'Text' || f.type === 'LongTextArea') n.push(['length', f.length ?? 255]);
  if (f.type === 'Number' || f.type === 'Currency' || f.type === 'Percent') n.push(['precision', f.length ?? 18], ['scale', f.scale ?? 0]);
  if (f.type === 'Lookup') n.push(['referenceTo', f.referenceTo!], ['relationshipLabel', f.relationshipLabel!], ['relationshipName', f.relationshipName!]);
  if (f.type !== 'LongTextArea' && f.type !== 'Picklist') n.push(['required', false]);
  n.push(['type', f.type]);
  if (f.type === 'Text') n.push(['unique', !!f.unique]);
  if (f.type === 'Picklist') {
    n.push([
      'valueSet',
      [
        ['restricted', !!f.restricted],
        ['valueSetDefinition', [['sorted', false], ...(f.values ?? []).map(([api, label]): Node => ['value', [['fullName', api], ['default', false], ['label', label]]])]],
      ],
    ]);
  }
  if (f.type === 'LongTextArea') n.push(['visibleLines', 5]);
  return n;
}

function objectFile(): string {
  const o = ROUTING_EVENT_OBJECT;
  return doc('CustomObject', [
    ['deploymentStatus', 'Deployed'],
    ['description', o.description],
    ['enableActivities', false],
    ['enableBulkApi', true],
    ['enableHistory', false],
    ['enableReports', true],
    ['enableSearch', false],
    ['enableSharing', true],
    ['enableStreamingApi', true],
    ['label', o.label],
    ['nameField', [['displayFormat', o.nameField.displayFormat], ['label', o.nameField.label], ['type', 'AutoNumber']]],
    ['pluralLabel', o.pluralLabel],
    // Reps read the history; only the integration user writes it.
    ['sharingModel', 'Read'],
    ['visibility', 'Public'],
  ]);
}

function listView(): string {
  return doc('ListView', [
    ['fullName', 'All'],
    ['columns', 'NAME'],
    ['columns', 'Case__c'],
    ['columns', 'Kind__c'],
    ['columns', 'Queue__c'],
    ['columns', 'Agent__c'],
    ['columns', 'Tier__c'],
    ['columns', 'Routed_At__c'],
    ['filterScope', 'Everything'],
    ['label', 'All'],
  ]);
}

function permissionSet(kind: 'integration' | 'reps'): string {
  const write = kind === 'integration';
  const fields = CUSTOM_FIELDS.map((f): Node => ['fieldPermissions', [['editable', write && f.written], ['field', `${f.object}.${f.name}`], ['readable', true]]]);
  const obj = (object: string, p: { create?: boolean; edit?: boolean; viewAll?: boolean }): Node => [
    'objectPermissions',
    [['allowCreate', !!p.create], ['allowDelete', false], ['allowEdit', !!p.edit], ['allowRead', true], ['modifyAllRecords', false], ['object', object], ['viewAllRecords', !!p.viewAll]],
  ];
  return doc('PermissionSet', [
    ['description', write ? 'For the user Tierline connects as: reads Cases, Accounts and Contacts, writes the routing outcome and the Routing History.' : 'For reps: see the Tierline routing outcome on Cases and the Routing History related list.'],
    ...fields,
    ['hasActivationRequired', false],
    ['label', write ? 'Tierline Integration' : 'Tierline Routing History'],
    ...(write ? [obj('Account', {}), obj('Case', { edit: true }), obj('Contact', { edit: true })] : []),
    obj('Routing_Event__c', write ? { create: true, edit: true, viewAll: true } : {}),
  ]);
}

function workflow(): string {
  return doc('Workflow', [
    [
      'outboundMessages',
      [
        ['fullName', OUTBOUND_MESSAGE_NAME],
        ['apiVersion', API_VERSION],
        ['description', 'Tells Tierline about a new Case so it can route it. Tierline acknowledges only after storing the notification; Salesforce retries for 24 hours until then.'],
        ['endpointUrl', `${PUBLIC_URL_PLACEHOLDER}/webhooks/salesforce`],
        ...OUTBOUND_FIELDS.map((f): Node => ['fields', f]),
        ['includeSessionId', false],
        ['integrationUser', INTEGRATION_USER_PLACEHOLDER],
        ['name', 'Tierline New Case'],
        ['protected', false],
        ['useDeadLetterQueue', false],
      ],
    ],
  ]);
}

function flow(): string {
  return doc('Flow', [
    [
      'actionCalls',
      [
        ['name', 'Notify_Tierline'],
        ['label', 'Notify Tierline'],
        ['locationX', 176],
        ['locationY', 323],
        ['actionName', `Case.${OUTBOUND_MESSAGE_NAME}`],
        ['actionType', 'outboundMessage'],
        ['flowTransactionModel', 'CurrentTransaction'],
      ],
    ],
    ['apiVersion', API_VERSION],
    ['description', 'Sends the Tierline outbound message when a Case is created, so Tierline routes it to the right Telegram agent.'],
    ['environments', 'Default'],
    ['interviewLabel', 'Tierline: notify new Case {!$Flow.CurrentDateTime}'],
    ['label', 'Tierline: notify new Case'],
    ['processMetadataValues', [['name', 'BuilderType'], ['value', [['stringValue', 'LightningFlowBuilder']]]]],
    ['processMetadataValues', [['name', 'CanvasMode'], ['value', [['stringValue', 'AUTO_LAYOUT_CANVAS']]]]],
    ['processType', 'AutoLaunchedFlow'],
    ['start', [['locationX', 50], ['locationY', 0], ['connector', [['targetReference', 'Notify_Tierline']]], ['object', 'Case'], ['recordTriggerType', 'Create'], ['triggerType', 'RecordAfterSave']]],
    ['status', 'Active'],
  ]);
}

/** Every file of the SFDX project (paths relative to connectors/salesforce/). */
export function renderForceApp(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of CUSTOM_FIELDS) files[`${ROOT}/objects/${f.object}/fields/${f.name}.field-meta.xml`] = doc('CustomField', fieldNodes(f));
  files[`${ROOT}/objects/${ROUTING_EVENT_OBJECT.name}/${ROUTING_EVENT_OBJECT.name}.object-meta.xml`] = objectFile();
  files[`${ROOT}/objects/${ROUTING_EVENT_OBJECT.name}/listViews/All.listView-meta.xml`] = listView();
  files[`${ROOT}/permissionsets/${PERMISSION_SETS.integration}.permissionset-meta.xml`] = permissionSet('integration');
  files[`${ROOT}/permissionsets/${PERMISSION_SETS.reps}.permissionset-meta.xml`] = permissionSet('reps');
  files[`${ROOT}/workflows/Case.workflow-meta.xml`] = workflow();
  files[`${ROOT}/flows/${FLOW_NAME}.flow-meta.xml`] = flow();
  files['sfdx-project.json'] =
    JSON.stringify(
      {
        packageDirectories: [{ path: 'force-app', default: true }],
        name: 'tierline',
        namespace: '',
        sourceApiVersion: API_VERSION,
        // `sf project deploy start` swaps the placeholders from these environment variables.
        replacements: [
          { filename: `${ROOT}/workflows/Case.workflow-meta.xml`, stringToReplace: PUBLIC_URL_PLACEHOLDER, replaceWithEnv: 'TIERLINE_PUBLIC_URL' },
          { filename: `${ROOT}/workflows/Case.workflow-meta.xml`, stringToReplace: INTEGRATION_USER_PLACEHOLDER, replaceWithEnv: 'TIERLINE_SF_INTEGRATION_USER' },
        ],
      },
      null,
      2,
    ) + '\n';
  return files;
}

export const CONNECTOR_DIR = dirname(fileURLToPath(import.meta.url));

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [path, content] of Object.entries(renderForceApp())) {
    const abs = join(CONNECTOR_DIR, path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, content);
  }
  process.stdout.write(`wrote ${Object.keys(renderForceApp()).length} files under ${CONNECTOR_DIR}\n`);
}
