// The HubSpot project in connectors/hubspot/app (platform 2025.2+) kept in step with manifest.json and the code:
// scopes, redirect URL, webhook target and subscriptions, the workflow action's URL and output fields, the card's
// backend URL and object types, one origin everywhere, and the project layout the platform expects.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultMapping, watchedTicketProperties } from '../../../connectors/hubspot/mapping.ts';
import { HUBSPOT_MANIFEST } from '../../../connectors/hubspot/properties.ts';
import { OUTPUT_FIELDS } from '../../../connectors/hubspot/workflow-action.ts';
import { STAGE_PROPERTY } from '../../../connectors/hubspot/webhook.ts';

const ROOT = new URL('../../../connectors/hubspot/app/', import.meta.url).pathname;
const read = (p: string) => JSON.parse(readFileSync(join(ROOT, p), 'utf8'));
const pathOf = (route: string) => route.split(' ')[1]!;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
}

type Meta = { uid: string; type: string; config: Record<string, unknown> };
const metas = (): Meta[] => files(join(ROOT, 'src/app')).filter((f) => f.endsWith('-hsmeta.json')).map((f) => JSON.parse(readFileSync(f, 'utf8')) as Meta);
const ofType = (type: string) => metas().filter((m) => m.type === type);

describe('HubSpot project files', () => {
  it('is a 2025.2+ project with one app, one webhooks component, the workflow action and the card', () => {
    const project = read('hsproject.json');
    expect(project.srcDir).toBe('src');
    const [year, month] = String(project.platformVersion).split('.').map(Number);
    expect(year! * 100 + month!).toBeGreaterThanOrEqual(202502);
    expect(ofType('app')).toHaveLength(1);
    expect(ofType('webhooks')).toHaveLength(1);
    expect(ofType('workflow-action')).toHaveLength(1);
    expect(ofType('card')).toHaveLength(1);
    const uids = metas().map((m) => m.uid);
    expect(new Set(uids).size).toBe(uids.length);
    // Feature configs sit at the root of their folder, as the platform requires.
    for (const f of files(join(ROOT, 'src/app')).filter((x) => x.endsWith('-hsmeta.json'))) {
      const rel = f.slice(join(ROOT, 'src/app').length + 1).split('/');
      expect(rel.length, f).toBeLessThanOrEqual(2);
    }
  });

  it('asks for exactly the scopes manifest.json declares and redirects to the OAuth callback route', () => {
    const app = ofType('app')[0]!.config as { auth: { type: string; requiredScopes: string[]; redirectUrls: string[] } };
    expect(app.auth.type).toBe('oauth');
    expect([...app.auth.requiredScopes].sort()).toEqual([...HUBSPOT_MANIFEST.scopes].sort());
    expect(app.auth.redirectUrls.map((u) => new URL(u).pathname)).toEqual([pathOf(HUBSPOT_MANIFEST.routes.callback)]);
  });

  it('subscribes the webhook route to the subscriptions manifest.json lists, for mapped ticket properties and the stage', () => {
    const w = ofType('webhooks')[0]!.config as { settings: { targetUrl: string }; subscriptions: { legacyCrmObjects: { subscriptionType: string; propertyName?: string; active: boolean }[] } };
    expect(new URL(w.settings.targetUrl).pathname).toBe(pathOf(HUBSPOT_MANIFEST.routes.webhook));
    const subs = w.subscriptions.legacyCrmObjects;
    expect([...new Set(subs.map((s) => s.subscriptionType))].sort()).toEqual([...HUBSPOT_MANIFEST.webhookSubscriptions].sort());
    const watched = subs.filter((s) => s.subscriptionType === 'ticket.propertyChange').map((s) => s.propertyName!);
    // The stage always: a ticket closed in HubSpot is resolved in Tierline.
    expect(watched.sort()).toEqual([...watchedTicketProperties(defaultMapping()), STAGE_PROPERTY].sort());
    for (const p of watched) expect(HUBSPOT_MANIFEST.reads.tickets).toContain(p);
  });

  it('declares the workflow action on tickets with the output fields Tierline completes callbacks with', () => {
    const a = ofType('workflow-action')[0]!.config as { actionUrl: string; objectTypes: string[]; outputFields: { typeDefinition: { name: string } }[]; labels: { en: { actionName: string; outputFieldLabels: Record<string, string> } } };
    expect(new URL(a.actionUrl).pathname).toBe(pathOf(HUBSPOT_MANIFEST.routes.workflowAction));
    expect(a.objectTypes).toEqual(['TICKET']);
    expect(a.outputFields.map((f) => f.typeDefinition.name)).toEqual([...OUTPUT_FIELDS]);
    expect(Object.keys(a.labels.en.outputFieldLabels)).toEqual([...OUTPUT_FIELDS]);
    expect(a.labels.en.actionName).toBe('Route to Telegram');
  });

  it('ships the card’s UI-extension source, which fetches the card route on the permitted origin', () => {
    const card = ofType('card')[0]!.config as { entrypoint: string; objectTypes: string[]; location: string };
    expect(card.objectTypes.sort()).toEqual(['COMPANY', 'TICKET']);
    const entry = join(ROOT, 'src', card.entrypoint);
    expect(existsSync(entry)).toBe(true);
    expect(existsSync(join(ROOT, 'src/app/cards/package.json'))).toBe(true);
    const source = readFileSync(entry, 'utf8');
    expect(source).toContain('hubspot.fetch(');
    expect(source).toContain(`\${TIERLINE_URL}${pathOf(HUBSPOT_MANIFEST.routes.card)}?`);
    const base = /const TIERLINE_URL = '([^']+)'/.exec(source)![1]!;
    const app = ofType('app')[0]!.config as { permittedUrls: { fetch: string[] } };
    expect(app.permittedUrls.fetch).toContain(base);
  });

  it('points every URL at one origin, so setting PUBLIC_URL is one search and replace', () => {
    const text = files(ROOT).filter((f) => /\.(json|jsx)$/.test(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
    const origins = new Set([...text.matchAll(/https:\/\/[a-z0-9.-]+/gi)].map((m) => m[0]).filter((o) => !o.endsWith('hubspot.com')));
    expect([...origins]).toEqual(['https://tierline.example.com']);
  });
});
