// Sample data for a sandbox portal: companies across all four tiers (ICP tiers 1-3, plus accounts with no ICP tier
// whose revenue decides, or with nothing to decide on), their contacts with languages and countries, and products.
// The two custom properties Tierline reads (ticket product, company churn risk) exist as an admin would have made them.
import type { Portal } from './portal.ts';

type SeedCompany = {
  name: string;
  domain: string;
  icp: 'tier_1' | 'tier_2' | 'tier_3' | null;
  totalRevenue: number | null;
  annualRevenue: number | null;
  country: string;
  churn: number | null;
  contacts: [first: string, last: string, language: string, country: string][];
};

export const SEED_COMPANIES: SeedCompany[] = [
  { name: 'Globex Corporation', domain: 'globex.example', icp: 'tier_1', totalRevenue: 480_000, annualRevenue: 12_000_000, country: 'Germany', churn: 20, contacts: [['Hank', 'Scorpio', 'de', 'Germany'], ['Lena', 'Vogel', 'de', 'Germany']] },
  { name: 'Initech', domain: 'initech.example', icp: 'tier_1', totalRevenue: 250_000, annualRevenue: 4_500_000, country: 'United States', churn: 10, contacts: [['Bill', 'Lumbergh', 'en', 'United States']] },
  { name: 'Tyrell Systems', domain: 'tyrell.example', icp: 'tier_1', totalRevenue: 910_000, annualRevenue: 30_000_000, country: 'Singapore', churn: 5, contacts: [['Rachael', 'Tyrell', 'en', 'Singapore']] },
  { name: 'Umbrella Health', domain: 'umbrella.example', icp: 'tier_2', totalRevenue: 64_000, annualRevenue: 900_000, country: 'United Kingdom', churn: 78, contacts: [['Alice', 'Abernathy', 'en', 'United Kingdom']] },
  { name: 'Stark Logistics', domain: 'stark.example', icp: 'tier_2', totalRevenue: 35_000, annualRevenue: 700_000, country: 'Brazil', churn: 15, contacts: [['Joana', 'Silva', 'pt-br', 'Brazil']] },
  { name: 'Wayne Analytics', domain: 'wayne.example', icp: 'tier_3', totalRevenue: 8_000, annualRevenue: 150_000, country: 'Canada', churn: 30, contacts: [['Lucius', 'Fox', 'en', 'Canada']] },
  { name: 'Hooli Labs', domain: 'hooli.example', icp: 'tier_3', totalRevenue: 4_000, annualRevenue: 90_000, country: 'France', churn: null, contacts: [['Gavin', 'Belson', 'fr', 'France']] },
  { name: 'Cyberdyne Robotics', domain: 'cyberdyne.example', icp: 'tier_3', totalRevenue: 2_500, annualRevenue: 60_000, country: 'Austria', churn: 40, contacts: [['Miles', 'Dyson', 'de', 'Austria']] },
  // No ICP tier: the lifetime value decides (enterprise, premium from annual revenue, free), or nothing does.
  { name: 'Pied Piper', domain: 'piedpiper.example', icp: null, totalRevenue: 150_000, annualRevenue: 2_000_000, country: 'Japan', churn: 12, contacts: [['Richard', 'Hendricks', 'ja', 'Japan']] },
  { name: 'Vandelay Imports', domain: 'vandelay.example', icp: null, totalRevenue: null, annualRevenue: 25_000, country: 'Spain', churn: null, contacts: [['Art', 'Vandelay', 'es', 'Spain']] },
  { name: 'Acme Startups', domain: 'acme.example', icp: null, totalRevenue: 300, annualRevenue: null, country: 'India', churn: 55, contacts: [['Wile', 'Coyote', 'en', 'India']] },
  { name: 'Soylent Foods', domain: 'soylent.example', icp: null, totalRevenue: null, annualRevenue: null, country: 'Mexico', churn: null, contacts: [['Sol', 'Roth', 'es', 'Mexico']] },
];

export const SEED_PRODUCTS = ['API', 'Dashboard', 'SSO', 'Billing', 'Mobile app'];

const custom = (p: Portal, type: 'tickets' | 'companies', name: string, label: string, propType: string, fieldType: string) =>
  p.props[type].set(name, { name, label, description: '', type: propType, fieldType, groupName: type === 'tickets' ? 'ticketinformation' : 'companyinformation', options: [], hubspotDefined: false, createdAt: p.iso(), updatedAt: p.iso() });

/** The custom properties an admin would have before installing Tierline (the seed data fills them). */
export function seedCustomProperties(p: Portal): void {
  custom(p, 'tickets', 'tierline_product', 'Product', 'string', 'text');
  custom(p, 'companies', 'tierline_churn_risk', 'Churn risk %', 'number', 'number');
}

export function seedPortal(p: Portal): void {
  seedCustomProperties(p);
  for (const c of SEED_COMPANIES) {
    const company = p.create('companies', {
      name: c.name,
      domain: c.domain,
      hs_ideal_customer_profile: c.icp ?? '',
      total_revenue: c.totalRevenue ?? '',
      annualrevenue: c.annualRevenue ?? '',
      country: c.country,
      tierline_churn_risk: c.churn ?? '',
    });
    for (const [first, last, language, country] of c.contacts) {
      const contact = p.create('contacts', { firstname: first, lastname: last, email: `${first}.${last}@${c.domain}`.toLowerCase(), hs_language: language, country, phone: '' });
      p.associate('contacts', contact.id, 'companies', company.id, true);
    }
  }
  SEED_PRODUCTS.forEach((name, i) => p.create('products', { name, price: String(100 * (i + 1)), hs_sku: `TL-${i + 1}` }));
}
