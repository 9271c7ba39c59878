// Sample data for the sandbox org: twelve accounts across all four tiers, including the incomplete ones real orgs
// have (no Tier__c but a Rating; only a lifetime value; only annual revenue; nothing at all), their contacts, and the
// products Cases refer to.
import type { OrgState } from './org.ts';

type AccountSeed = {
  Name: string;
  Tier__c: string | null;
  Rating: string | null;
  Lifetime_Value__c: number | null;
  AnnualRevenue: number | null;
  BillingCountry: string | null;
  Churn_Risk__c: number | null;
  Industry: string;
  contacts: [string, string, string | null][];
};

export const SEED_ACCOUNTS: AccountSeed[] = [
  { Name: 'Globex Corporation', Tier__c: 'Enterprise', Rating: 'Hot', Lifetime_Value__c: 480_000, AnnualRevenue: 52_000_000, BillingCountry: 'Germany', Churn_Risk__c: 12, Industry: 'Manufacturing', contacts: [['Hank', 'Scorpio', '+49 30 5550 1001'], ['Greta', 'Vogel', null]] },
  { Name: 'Initech', Tier__c: 'Enterprise', Rating: 'Warm', Lifetime_Value__c: 250_000, AnnualRevenue: 18_000_000, BillingCountry: 'United States', Churn_Risk__c: 30, Industry: 'Technology', contacts: [['Bill', 'Lumbergh', '+1 512 555 0100'], ['Peter', 'Gibbons', null]] },
  { Name: 'Umbrella Health', Tier__c: 'Premium', Rating: 'Warm', Lifetime_Value__c: 64_000, AnnualRevenue: 9_500_000, BillingCountry: 'United Kingdom', Churn_Risk__c: 78, Industry: 'Healthcare', contacts: [['Alice', 'Abernathy', '+44 20 7946 0018']] },
  { Name: 'Stark Logistics', Tier__c: 'Premium', Rating: 'Hot', Lifetime_Value__c: 38_000, AnnualRevenue: 4_100_000, BillingCountry: 'France', Churn_Risk__c: 20, Industry: 'Transportation', contacts: [['Camille', 'Durand', '+33 1 55 55 01 23']] },
  { Name: 'Wayne Analytics', Tier__c: 'Standard', Rating: 'Cold', Lifetime_Value__c: 8_400, AnnualRevenue: 900_000, BillingCountry: 'Canada', Churn_Risk__c: 45, Industry: 'Technology', contacts: [['Lucius', 'Fox', null]] },
  { Name: 'Acme Tools', Tier__c: 'Standard', Rating: null, Lifetime_Value__c: 3_100, AnnualRevenue: 350_000, BillingCountry: 'Spain', Churn_Risk__c: 10, Industry: 'Retail', contacts: [['Lucía', 'García', '+34 91 555 0142']] },
  { Name: 'Hooli Labs', Tier__c: 'Free', Rating: 'Cold', Lifetime_Value__c: 0, AnnualRevenue: 0, BillingCountry: 'United States', Churn_Risk__c: 60, Industry: 'Technology', contacts: [['Gavin', 'Belson', null]] },
  { Name: 'Pied Piper', Tier__c: 'Free', Rating: null, Lifetime_Value__c: 120, AnnualRevenue: 50_000, BillingCountry: 'Japan', Churn_Risk__c: 5, Industry: 'Technology', contacts: [['Kenji', 'Tanaka', '+81 3 5555 0199']] },
  // Data-quality cases: the mapper and core tiering must cope with each.
  { Name: 'Soylent Foods', Tier__c: null, Rating: 'Hot', Lifetime_Value__c: 150_000, AnnualRevenue: 7_000_000, BillingCountry: 'Netherlands', Churn_Risk__c: null, Industry: 'Food & Beverage', contacts: [['Daan', 'de Vries', null]] },
  { Name: 'Vandelay Imports', Tier__c: null, Rating: null, Lifetime_Value__c: 27_000, AnnualRevenue: null, BillingCountry: 'Austria', Churn_Risk__c: null, Industry: 'Retail', contacts: [['Art', 'Vandelay', '+43 1 555 0100']] },
  { Name: 'Tyrell Systems', Tier__c: null, Rating: null, Lifetime_Value__c: null, AnnualRevenue: 2_400_000, BillingCountry: 'Brazil', Churn_Risk__c: null, Industry: 'Technology', contacts: [['Rachael', 'Souza', null]] },
  { Name: 'Oceanic Air', Tier__c: null, Rating: null, Lifetime_Value__c: null, AnnualRevenue: null, BillingCountry: null, Churn_Risk__c: null, Industry: 'Transportation', contacts: [['Jack', 'Shephard', null]] },
];

export const SEED_PRODUCTS = ['API', 'Dashboard', 'Mobile App', 'Billing Portal', 'Integrations'];

const LANGUAGE_BY_COUNTRY: Record<string, string> = { Germany: 'de', Austria: 'de', France: 'fr', Spain: 'es', Brazil: 'pt', Japan: 'ja', Netherlands: 'nl' };

export function languageFor(country: string | null): string {
  return (country && LANGUAGE_BY_COUNTRY[country]) ?? 'en';
}

const ascii = (s: string) => s.normalize('NFD').replace(/[^\x20-\x7e]/g, '').toLowerCase().replace(/[^a-z]+/g, '');

export function seedOrg(org: OrgState): void {
  for (const p of SEED_PRODUCTS) org.insert('Product2', { Name: p, ProductCode: p.toUpperCase().replace(/\s+/g, '-'), IsActive: true, Family: p === 'Integrations' ? 'Add-on' : 'Platform' });
  for (const a of SEED_ACCOUNTS) {
    const { contacts, ...fields } = a;
    const acc = org.insert('Account', { ...fields, Type: 'Customer - Direct' });
    if (!acc.success || !acc.id) throw new Error(`seed failed: ${JSON.stringify(acc.errors)}`);
    const domain = `${ascii(a.Name.split(' ')[0]!)}.example`;
    for (const [first, last, phone] of contacts) {
      const r = org.insert('Contact', { FirstName: first, LastName: last, Email: `${ascii(first)}.${ascii(last)}@${domain}`, Phone: phone, AccountId: acc.id });
      if (!r.success) throw new Error(`seed failed: ${JSON.stringify(r.errors)}`);
    }
  }
}
