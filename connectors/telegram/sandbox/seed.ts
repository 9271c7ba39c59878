// Sample Telegram world for `npm start` without credentials and for the tests. The agent ids and names match
// server/sandbox/sample-config.ts; the group ids match its `groups` (the sandbox supplies their channel ids).

export const SANDBOX_SERVICE_USER = { id: '6000000001', firstName: 'Tierline', lastName: 'Desk', username: 'tierline_desk' } as const;
export const SANDBOX_BOT = { id: '6000000100', firstName: 'Tierline Bot', username: 'tierline_sandbox_bot' } as const;
/** Shaped like a real token so env validation accepts it; it only opens the sandbox. */
export const SANDBOX_BOT_TOKEN = `${SANDBOX_BOT.id}:SANDBOX-not-a-real-token-0123456789`;

export const SANDBOX_GROUPS = [
  { id: 'vip', channelId: '1900000001', title: 'Tierline · VIP desk' },
  { id: 'support-1', channelId: '1900000002', title: 'Tierline · Support 1' },
  { id: 'support-2', channelId: '1900000003', title: 'Tierline · Support 2' },
] as const;

export const SANDBOX_AGENTS = [
  { id: '7000000001', firstName: 'Alice', lastName: 'Meyer', username: 'alice_meyer_tl' },
  { id: '7000000002', firstName: 'Bruno', lastName: 'Costa', username: 'bruno_costa_tl' },
  { id: '7000000003', firstName: 'Chen', lastName: 'Wei', username: 'chen_wei_tl' },
  { id: '7000000004', firstName: 'Dana', lastName: 'Levi', username: 'dana_levi_tl' },
  { id: '7000000005', firstName: 'Emma', lastName: 'Dubois', username: 'emma_dubois_tl' },
  { id: '7000000006', firstName: 'Farid', lastName: 'Haddad', username: 'farid_haddad_tl' },
  { id: '7000000007', firstName: 'Gus', lastName: 'Schneider', username: 'gus_schneider_tl' },
  { id: '7000000008', firstName: 'Hana', lastName: 'Novak', username: 'hana_novak_tl' },
  { id: '7000000009', firstName: 'Ivan', lastName: 'Petrov', username: 'ivan_petrov_tl' },
] as const;

/**
 * Customers who write to the bot (the intake form): two match contacts of the HubSpot and Salesforce sandboxes by
 * email, one by phone, one is unknown to both CRMs. language_code decides the form's language.
 */
export const SANDBOX_CUSTOMERS = [
  { id: '8000000001', firstName: 'Bill', lastName: 'Lumbergh', langCode: 'en', phone: '+15125550100', email: 'bill.lumbergh@initech.example' },
  { id: '8000000002', firstName: 'Hank', lastName: 'Scorpio', langCode: 'de', phone: '+493055501001', email: 'hank.scorpio@globex.example' },
  { id: '8000000003', firstName: 'Alice', lastName: 'Abernathy', langCode: 'en-GB', phone: '+442079460018', email: 'alice.abernathy@umbrella.example' },
  { id: '8000000004', firstName: 'Nora', lastName: 'Neu', langCode: 'de-AT', phone: '+436641234567', email: 'nora@unknown.example' },
] as const;
