// The sandbox is held to Salesforce's documented shapes, checked through the real jsforce: status codes (201, 204),
// error bodies ([{message, errorCode, fields}]), per-record statusCode in sObject Collections, the 200-record limit,
// allOrNone rollbacks, SOQL errors, Sforce-Limit-Info and REQUEST_LIMIT_EXCEEDED, and the seed data.
import jsforce, { type Connection } from 'jsforce';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSalesforceSandbox, type SalesforceSandbox } from '../../../connectors/salesforce/sandbox/index.ts';
import { isSalesforceId, to18 } from '../../../connectors/salesforce/ids.ts';
import { DirectAwareTransport } from '../../../connectors/salesforce/proxy.ts';

let sb: SalesforceSandbox;
let conn: Connection;
beforeAll(async () => {
  sb = await startSalesforceSandbox({ seed: true });
  conn = new jsforce.Connection({ instanceUrl: sb.url, accessToken: sb.accessToken, version: '62.0' });
  conn._transport = new DirectAwareTransport();
});
afterAll(() => sb.close());

const fail = async (p: PromiseLike<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as { errorCode?: string; message: string; data?: unknown };
  }
  throw new Error('expected a failure');
};

describe('Salesforce sandbox', () => {
  it('seeds twelve accounts across every tier, with the gaps real orgs have', () => {
    const accounts = sb.accounts();
    expect(accounts).toHaveLength(12);
    expect(new Set(accounts.map((a) => a.Tier__c).filter(Boolean))).toEqual(new Set(['Enterprise', 'Premium', 'Standard', 'Free']));
    expect(accounts.filter((a) => !a.Tier__c && a.Rating)).not.toHaveLength(0);
    expect(accounts.filter((a) => !a.Tier__c && !a.Rating && a.Lifetime_Value__c)).not.toHaveLength(0);
    expect(accounts.filter((a) => !a.Tier__c && !a.Lifetime_Value__c && a.AnnualRevenue)).not.toHaveLength(0);
    expect(accounts.filter((a) => !a.Tier__c && !a.Lifetime_Value__c && !a.AnnualRevenue)).not.toHaveLength(0);
    expect(sb.contacts().length).toBeGreaterThanOrEqual(12);
    expect(sb.products().map((p) => p.Name)).toContain('API');
    expect(accounts.every((a) => isSalesforceId(a.Id) && a.Id === to18(a.Id))).toBe(true);
  });

  it('creates (201) and updates (204) single records, with the documented bodies', async () => {
    const created = await conn.sobject('Account').create({ Name: 'Sandbox Test Ltd', Tier__c: 'Premium' });
    expect(created).toMatchObject({ success: true, errors: [] });
    expect(sb.requests({ method: 'POST' }).at(-1)!.status).toBe(201);
    await conn.sobject('Account').update({ Id: created.id!, Rating: 'Warm' });
    expect(sb.requests({ method: 'PATCH' }).at(-1)!.status).toBe(204);
    const rec = await conn.sobject('Account').retrieve(created.id!);
    expect(rec).toMatchObject({ Name: 'Sandbox Test Ltd', Rating: 'Warm', attributes: { type: 'Account' } });
  });

  it('answers errors as [{message, errorCode, fields}]', async () => {
    const missing = await fail(conn.sobject('Case').retrieve(to18('500TL0000000000')));
    expect(missing.errorCode).toBe('NOT_FOUND');
    expect(missing.message).toBe('The requested resource does not exist');
    const anyCase = (await sb.createCase({ subject: 'Fields', notify: false })).id;
    const noField = await fail(conn.sobject('Case').update({ Id: anyCase, Nope__c: 1 } as never));
    expect(noField).toMatchObject({ errorCode: 'INVALID_FIELD', message: "No such column 'Nope__c' on sobject of type Case" });
    const c = await sb.createCase({ subject: 'Picklist', notify: false });
    const picklist = await fail(conn.sobject('Case').update({ Id: c.id, Tierline_Status__c: 'lost' } as never));
    expect(picklist).toMatchObject({ errorCode: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', message: 'bad value for restricted picklist field: lost' });
    expect(picklist.data).toMatchObject({ fields: ['Tierline_Status__c'] });
    const query = await fail(conn.query('SELECT Id, Foo__c FROM Case'));
    expect(query.errorCode).toBe('INVALID_FIELD');
    expect(query.message).toContain("No such column 'Foo__c' on entity 'Case'");
    expect((await fail(conn.query('SELECT Id FROM Nothing__c'))).errorCode).toBe('INVALID_TYPE');
    expect((await fail(conn.query('SELEC Id FROM Case'))).errorCode).toBe('MALFORMED_QUERY');
  });

  it('reports per-record errors with statusCode in sObject Collections, and rolls back allOrNone', async () => {
    const c = await sb.createCase({ subject: 'Collections', notify: false });
    sb.deleteCase(c.id);
    const ok = (await sb.createCase({ subject: 'Alive', notify: false })).id;
    const results = (await conn.sobject('Case').update([{ Id: c.id, Subject: 'x' }, { Id: ok, Subject: 'y' }] as never, { allOrNone: false })) as unknown as { success: boolean; errors: { statusCode: string }[] }[];
    expect(results[0]).toMatchObject({ success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted' }] });
    expect(results[1]).toMatchObject({ success: true });
    expect(sb.case(ok)!.Subject).toBe('y');

    const rolled = (await conn.sobject('Case').update([{ Id: ok, Subject: 'z' }, { Id: c.id, Subject: 'x' }] as never, { allOrNone: true })) as unknown as { success: boolean; errors: { statusCode: string }[] }[];
    expect(rolled[0]!.errors[0]!.statusCode).toBe('ALL_OR_NONE_OPERATION_ROLLED_BACK');
    expect(sb.case(ok)!.Subject).toBe('y');

    // A create rolled back leaves no record behind, and the next create works as before.
    const before = (await conn.sobject('Case').update([{ Id: ok, Subject: 'kept' }] as never, { allOrNone: true })) as unknown as { success: boolean }[];
    expect(before[0]!.success).toBe(true);
    const created = (await conn.request({ method: 'POST', url: `/services/data/v62.0/composite/sobjects`, body: JSON.stringify({ allOrNone: true, records: [{ attributes: { type: 'Account' }, Name: 'Rolled back' }, { attributes: { type: 'Account' }, Name: 'Bad', No_Such_Field__c: 1 }] }), headers: { 'content-type': 'application/json' } }).catch((e: unknown) => e)) as { id?: string; success: boolean }[] | { errorCode: string };
    if (Array.isArray(created)) {
      expect(created.every((r) => !r.success)).toBe(true);
      expect(sb.accounts().some((a) => a.Name === 'Rolled back')).toBe(false);
    } else expect(created.errorCode).toBe('INVALID_FIELD');
    expect(sb.accounts().some((a) => a.Name === 'Rolled back')).toBe(false);
    expect(sb.case(ok)!.Subject).toBe('kept');
  });

  it('refuses more than 200 records per Collections call', async () => {
    const records = Array.from({ length: 201 }, (_, i) => ({ Name: `Bulk ${i}` }));
    const e = await fail(conn.request({ method: 'POST', url: `/services/data/v62.0/composite/sobjects`, body: JSON.stringify({ allOrNone: false, records: records.map((r) => ({ attributes: { type: 'Account' }, ...r })) }), headers: { 'content-type': 'application/json' } }));
    expect(e.errorCode).toBe('EXCEEDED_ID_LIMIT');
  });

  it('upserts on an external id: created once, updated after', async () => {
    const rec = { Event_Key__c: 'k#1', Kind__c: 'routed', Queue__c: 'vip' };
    const first = (await conn.sobject('Routing_Event__c').upsert([rec] as never, 'Event_Key__c')) as unknown as { created: boolean }[];
    const second = (await conn.sobject('Routing_Event__c').upsert([{ ...rec, Queue__c: 'general' }] as never, 'Event_Key__c')) as unknown as { created: boolean }[];
    expect([first[0]!.created, second[0]!.created]).toEqual([true, false]);
    const q = await conn.query<{ Queue__c: string }>("SELECT Id, Queue__c FROM Routing_Event__c WHERE Event_Key__c = 'k#1'");
    expect(q.records.map((r) => r.Queue__c)).toEqual(['general']);
  });

  it('reports API usage in Sforce-Limit-Info and refuses calls once the allocation is used up', async () => {
    sb.setLimit(41, 15_000);
    await conn.query('SELECT Id FROM Account LIMIT 1');
    expect(conn.limitInfo.apiUsage).toEqual({ used: 42, limit: 15_000 });
    sb.setLimit(15_000, 15_000);
    const e = await fail(conn.query('SELECT Id FROM Account LIMIT 1'));
    expect(e.errorCode).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(e.message).toBe('TotalRequests Limit exceeded.');
    sb.setLimit(0, 100_000);
  });

  it('sends outbound messages in Salesforce\'s envelope and keeps retrying unacknowledged ones', async () => {
    const got: string[] = [];
    let ack = false;
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        got.push(body);
        res.writeHead(ack ? 200 : 503, { 'content-type': 'text/xml' });
        res.end(ack ? '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>' : 'down');
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const other = await startSalesforceSandbox({ seed: true, outboundUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/webhooks/salesforce` });
    try {
      const c = await other.createCase({ subject: 'Retry me' });
      expect(c.delivery).toMatchObject({ status: 'pending', attempts: 1 });
      ack = true;
      const [retried] = await other.flushOutbound();
      expect(retried).toMatchObject({ notificationId: c.notificationId, status: 'acked', attempts: 2 });
      expect(got[0]).toBe(got[1]); // the same Notification Id and body on the retry
      expect(got[0]).toContain('<notifications xmlns="http://soap.sforce.com/2005/09/outbound">');
      expect(got[0]).toContain(`<OrganizationId>${other.orgId}</OrganizationId>`);
      expect(got[0]).toContain(`<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>${c.id}</sf:Id>`);
    } finally {
      await other.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    }
  });

  it('shows a Case with its Routing History the way a rep would see it', async () => {
    const c = await sb.createCase({ subject: 'Page <b>', notify: false });
    const html = await (await fetch(`${sb.url}/lightning/r/Case/${c.id}/view`)).text();
    expect(html).toContain('Routing History (0)');
    expect(html).toContain('Page &lt;b&gt;');
  });
});
