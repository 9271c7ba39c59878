// Provisioning what the app writes: the "tierline" property group and the Tierline properties on tickets, companies
// and contacts. Idempotent: existing groups and properties are kept, missing ones created in one batch per object,
// and enumeration properties missing an option (a newer Tierline added one) get it added.
import type { Client } from '@hubspot/api-client';
import type { Logger } from '../../core/ports.ts';
import { AppError } from '../../core/errors.ts';
import type { PortalSession } from './client.ts';
import { DEFINITIONS_VERSION, PROPERTY_GROUP, PROVISIONED_OBJECTS, propertyDefs, type HsObjectType, type PropertyDef } from './properties.ts';

export type ProvisionReport = { portalId: string; version: string; created: string[]; updated: string[]; unchanged: number; conflicts: string[] };

type ExistingProperty = { name: string; type: string; options?: { value: string; label: string; displayOrder?: number; hidden?: boolean }[] };

const toInput = (d: PropertyDef) => ({
  name: d.name,
  label: d.label,
  description: d.description,
  groupName: PROPERTY_GROUP.name,
  type: d.type,
  fieldType: d.fieldType,
  formField: false,
  ...(d.options ? { options: d.options.map((o) => ({ ...o, hidden: false })) } : {}),
  ...(d.hasUniqueValue ? { hasUniqueValue: true } : {}),
});

async function ensureGroup(s: PortalSession, objectType: HsObjectType): Promise<boolean> {
  try {
    await s.run(`read the ${PROPERTY_GROUP.name} property group on ${objectType}`, (c) => c.crm.properties.groupsApi.getByName(objectType, PROPERTY_GROUP.name));
    return false;
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'not_found')) throw err;
  }
  try {
    await s.run(`create the ${PROPERTY_GROUP.name} property group on ${objectType}`, (c) => c.crm.properties.groupsApi.create(objectType, { name: PROPERTY_GROUP.name, label: PROPERTY_GROUP.label, displayOrder: -1 }), { idempotent: false });
  } catch (err) {
    // Made by a concurrent install (or by an earlier attempt whose answer was lost): that is what we wanted.
    if (err instanceof AppError && err.code === 'conflict') return false;
    throw err;
  }
  return true;
}

export async function provisionPortal(s: PortalSession, logger: Logger): Promise<ProvisionReport> {
  const report: ProvisionReport = { portalId: s.portalId, version: DEFINITIONS_VERSION, created: [], updated: [], unchanged: 0, conflicts: [] };
  for (const objectType of PROVISIONED_OBJECTS) {
    const defs = propertyDefs(objectType);
    if (await ensureGroup(s, objectType)) report.created.push(`${objectType} group ${PROPERTY_GROUP.name}`);
    const read = (await s.run(`read the Tierline properties on ${objectType}`, (c: Client) => c.crm.properties.batchApi.read(objectType, { archived: false, inputs: defs.map((d) => ({ name: d.name })) }))) as { results?: ExistingProperty[] };
    const existing = new Map((read.results ?? []).map((p) => [p.name, p]));
    const missing = defs.filter((d) => !existing.has(d.name));
    if (missing.length) {
      // Not repeated blindly: an attempt HubSpot applied but did not confirm would come back as a conflict.
      await s.run(`create the Tierline properties on ${objectType}`, (c) => c.crm.properties.batchApi.create(objectType, { inputs: missing.map(toInput) as never }), { idempotent: false });
      report.created.push(...missing.map((d) => `${objectType}.${d.name}`));
    }
    for (const d of defs) {
      const cur = existing.get(d.name);
      if (!cur) continue;
      if (cur.type !== d.type) {
        // Someone made a property of the same name by hand; overwriting its type could lose their data.
        report.conflicts.push(`${objectType}.${d.name} is a ${cur.type} property, Tierline expects ${d.type}`);
        continue;
      }
      const have = new Set((cur.options ?? []).map((o) => o.value));
      const lacking = (d.options ?? []).filter((o) => !have.has(o.value));
      if (!lacking.length) {
        report.unchanged++;
        continue;
      }
      const options = [...(cur.options ?? []).map((o) => ({ value: o.value, label: o.label, displayOrder: o.displayOrder ?? 0, hidden: o.hidden ?? false })), ...lacking.map((o) => ({ ...o, hidden: false }))];
      await s.run(`add options to ${objectType}.${d.name}`, (c) => c.crm.properties.coreApi.update(objectType, d.name, { options } as never));
      report.updated.push(`${objectType}.${d.name}`);
    }
  }
  if (report.conflicts.length) logger.warn('hubspot properties with conflicting types left alone', { portal: s.portalId, conflicts: report.conflicts });
  logger.info('hubspot properties provisioned', { portal: s.portalId, created: report.created.length, updated: report.updated.length, unchanged: report.unchanged });
  return report;
}
