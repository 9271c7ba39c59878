// Per-portal field mapping: which ticket / company / contact properties become which segment attribute, and how their
// values translate. Each attribute lists candidate properties in order; the first one with a usable value wins, which
// is how "total_revenue, falling back to annualrevenue" is expressed. Edited from the admin API and the console.
import { z } from 'zod';
import { TierSchema } from '../../core/segment.ts';

export const HS_OBJECTS = ['ticket', 'company', 'contact'] as const;
export type HsObject = (typeof HS_OBJECTS)[number];

const PropertyPath = z
  .string()
  .regex(/^(ticket|company|contact)\.[a-z0-9_]{1,100}$/, 'use object.property with object one of ticket, company, contact and the internal property name, e.g. "company.hs_ideal_customer_profile"');

const ValueMap = z.record(z.string().min(1).max(255), z.string().min(1).max(80));

const Source = z.object({
  property: PropertyPath,
  /** HubSpot value -> segment value (matched case-insensitively). */
  values: ValueMap.optional(),
  /** Values not in the map are used as they are (false: treated as invalid and reported). */
  passThrough: z.boolean().default(true),
});
export type MappingSource = z.infer<typeof Source>;

const TierSource = z.object({ property: PropertyPath, values: z.record(z.string().min(1).max(255), TierSchema) });

/** HubSpot's ideal customer profile tiers; there is no "free" ICP tier, so free comes from the money thresholds. */
export const DEFAULT_TIER_VALUES = { tier_1: 'enterprise', tier_2: 'premium', tier_3: 'standard' } as const;

/** hs_ticket_category's internal values -> the category words the routing rules use. */
export const DEFAULT_CATEGORY_VALUES: Record<string, string> = {
  PRODUCT_ISSUE: 'technical',
  BILLING_ISSUE: 'billing',
  GENERAL_INQUIRY: 'question',
  FEATURE_REQUEST: 'feature_request',
};

/** Language names some portals keep instead of codes; hs_language's own values ("de", "en-us") pass through. */
export const DEFAULT_LANGUAGE_NAMES: Record<string, string> = { English: 'en', German: 'de', Deutsch: 'de', French: 'fr', Français: 'fr', Spanish: 'es', Español: 'es', Portuguese: 'pt', Italian: 'it', Dutch: 'nl', Chinese: 'zh', Japanese: 'ja', Arabic: 'ar', Russian: 'ru', Czech: 'cs' };

/** Country (name or ISO code, as HubSpot's free-text country holds either) -> region. Others pass through. */
export const DEFAULT_REGIONS: Record<string, string> = Object.fromEntries(
  (
    [
      ['EU', ['Germany', 'DE', 'Deutschland', 'Austria', 'AT', 'France', 'FR', 'Spain', 'ES', 'Italy', 'IT', 'Netherlands', 'NL', 'Belgium', 'BE', 'Ireland', 'IE', 'Portugal', 'PT', 'Poland', 'PL', 'Czechia', 'Czech Republic', 'CZ', 'Sweden', 'SE', 'Denmark', 'DK', 'Finland', 'FI']],
      ['EU', ['Switzerland', 'CH', 'United Kingdom', 'UK', 'GB', 'Norway', 'NO']],
      ['NA', ['United States', 'USA', 'US', 'Canada', 'CA']],
      ['LATAM', ['Mexico', 'MX', 'Brazil', 'BR', 'Argentina', 'AR', 'Chile', 'CL', 'Colombia', 'CO']],
      ['APAC', ['Japan', 'JP', 'China', 'CN', 'Singapore', 'SG', 'Australia', 'AU', 'India', 'IN', 'South Korea', 'KR', 'New Zealand', 'NZ']],
      ['MEA', ['United Arab Emirates', 'AE', 'Saudi Arabia', 'SA', 'Israel', 'IL', 'South Africa', 'ZA', 'Egypt', 'EG']],
    ] as const
  ).flatMap(([region, names]) => names.map((n) => [n, region])),
);

export const HubspotMappingSchema = z
  .object({
    tier: z
      .array(TierSource)
      .max(5)
      .default(() => [{ property: 'company.hs_ideal_customer_profile', values: { ...DEFAULT_TIER_VALUES } }]),
    /**
     * Portal-specific thresholds for deriving a tier when every tier property is empty. Without them the routing
     * config's tiering thresholds apply (recommended: one place for all CRMs).
     */
    tierThresholds: z
      .array(z.object({ tier: TierSchema, minLifetimeValue: z.number().finite().nonnegative() }))
      .max(4)
      .optional(),
    lifetimeValue: z
      .array(PropertyPath)
      .max(5)
      .default(() => ['company.total_revenue', 'company.annualrevenue']),
    /** The second money signal core tiering falls back to (tiering.useAnnualRevenue). */
    annualRevenue: z
      .array(PropertyPath)
      .max(5)
      .default(() => ['company.annualrevenue']),
    /** ISO 4217; when absent, the portal's company currency (account settings) is used, else USD. */
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD')
      .optional(),
    product: z
      .array(Source)
      .max(5)
      .default(() => [{ property: 'ticket.tierline_product', passThrough: true }]),
    category: z
      .array(Source)
      .max(5)
      .default(() => [{ property: 'ticket.hs_ticket_category', values: { ...DEFAULT_CATEGORY_VALUES }, passThrough: true }]),
    language: z
      .array(Source)
      .max(5)
      .default(() => [
        { property: 'ticket.hs_language', values: { ...DEFAULT_LANGUAGE_NAMES }, passThrough: true },
        { property: 'contact.hs_language', values: { ...DEFAULT_LANGUAGE_NAMES }, passThrough: true },
      ]),
    region: z
      .array(Source)
      .max(5)
      .default(() => [
        { property: 'company.country', values: { ...DEFAULT_REGIONS }, passThrough: true },
        { property: 'contact.country', values: { ...DEFAULT_REGIONS }, passThrough: true },
      ]),
    /** A number property holding 70 for 70 %; scale 0.01 turns that into the 0..1 segment value. */
    churnRisk: z
      .object({ property: PropertyPath, scale: z.number().positive().default(0.01) })
      .nullable()
      .default(() => ({ property: 'company.tierline_churn_risk', scale: 0.01 })),
    webhooks: z
      .object({
        /**
         * Route a ticket that was not routed yet when one of its mapped ticket properties changes (a ticket.propertyChange
         * subscription). Off by default: editing an old ticket should not route it by surprise.
         */
        propertyChange: z.boolean().default(false),
        /** Ticket properties whose change counts; empty = every ticket property the mapping reads. */
        properties: z.array(z.string().regex(/^[a-z0-9_]{1,100}$/, 'an internal property name')).max(50).default([]),
      })
      .default(() => ({ propertyChange: false, properties: [] })),
  })
  .strict();

export type HubspotMapping = z.infer<typeof HubspotMappingSchema>;

export function defaultMapping(): HubspotMapping {
  return HubspotMappingSchema.parse({});
}

/** Every object.property the mapping reads, in a stable order. */
export function mappedPaths(m: HubspotMapping): string[] {
  const paths = [
    ...m.tier.map((s) => s.property),
    ...m.lifetimeValue,
    ...m.annualRevenue,
    ...m.product.map((s) => s.property),
    ...m.category.map((s) => s.property),
    ...m.language.map((s) => s.property),
    ...m.region.map((s) => s.property),
    ...(m.churnRisk ? [m.churnRisk.property] : []),
  ];
  return [...new Set(paths)];
}

/** Ticket properties whose change may re-trigger routing (webhooks.propertyChange). */
export function watchedTicketProperties(m: HubspotMapping): string[] {
  if (m.webhooks.properties.length) return [...m.webhooks.properties];
  return mappedPaths(m)
    .filter((p) => p.startsWith('ticket.'))
    .map((p) => p.slice('ticket.'.length));
}
