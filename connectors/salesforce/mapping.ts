// Per-org field mapping: which Case / Account / Contact fields become which segment attribute, and how their values
// translate. Each attribute lists candidate fields in order; the first one with a usable value wins, which is how
// "Tier__c, falling back to Rating" is expressed. Edited from the admin API and the console; validated here.
import { z } from 'zod';
import { TierSchema } from '../../core/segment.ts';

export const SOQL_OBJECTS = ['Case', 'Account', 'Contact'] as const;
export type SoqlObject = (typeof SOQL_OBJECTS)[number];

const FieldPath = z
  .string()
  .regex(/^(Case|Account|Contact)\.[A-Za-z][A-Za-z0-9_]{0,79}$/, 'use Object.Field with Object one of Case, Account, Contact, e.g. "Account.Tier__c"');

const ValueMap = z.record(z.string().min(1).max(255), z.string().min(1).max(80));

const Source = z.object({
  field: FieldPath,
  /** Salesforce value -> segment value (matched case-insensitively). */
  values: ValueMap.optional(),
  /** Values not in the map are used as they are (false: treated as missing). */
  passThrough: z.boolean().default(true),
});
export type MappingSource = z.infer<typeof Source>;

const TierSourceSchema = z.object({ field: FieldPath, values: z.record(z.string().min(1).max(255), TierSchema) });

const DEFAULT_TIER = [
  { field: 'Account.Tier__c', values: { Enterprise: 'enterprise', Premium: 'premium', Standard: 'standard', Free: 'free' } },
  { field: 'Account.Rating', values: { Hot: 'premium', Warm: 'standard', Cold: 'free' } },
] as const satisfies z.input<typeof TierSourceSchema>[];

const DEFAULT_CATEGORY: { field: string; values: Record<string, string> }[] = [
  {
    field: 'Case.Type',
    values: { Billing: 'billing', Technical: 'technical', Problem: 'technical', Question: 'question', 'Feature Request': 'feature_request', Mechanical: 'technical', Electrical: 'technical', Electronic: 'technical', Structural: 'technical', Other: 'other' },
  },
  { field: 'Case.Reason', values: { Billing: 'billing', Performance: 'technical', Breakdown: 'technical', Installation: 'technical', 'Equipment Complexity': 'technical', 'Equipment Design': 'technical', Feedback: 'feedback', Other: 'other' } },
];

const DEFAULT_LANGUAGE_NAMES: Record<string, string> = { English: 'en', German: 'de', Deutsch: 'de', French: 'fr', Spanish: 'es', Portuguese: 'pt', Italian: 'it', Dutch: 'nl', Chinese: 'zh', Japanese: 'ja', Arabic: 'ar', Russian: 'ru', Czech: 'cs' };

/** Country (name or ISO code, as BillingCountry holds either) -> region. Anything else passes through as it is. */
export const DEFAULT_REGIONS: Record<string, string> = Object.fromEntries(
  (
    [
      ['EU', ['Germany', 'DE', 'Austria', 'AT', 'France', 'FR', 'Spain', 'ES', 'Italy', 'IT', 'Netherlands', 'NL', 'Belgium', 'BE', 'Ireland', 'IE', 'Portugal', 'PT', 'Poland', 'PL', 'Czechia', 'Czech Republic', 'CZ', 'Sweden', 'SE', 'Denmark', 'DK', 'Finland', 'FI']],
      ['EU', ['Switzerland', 'CH', 'United Kingdom', 'UK', 'GB', 'Norway', 'NO']],
      ['NA', ['United States', 'USA', 'US', 'Canada', 'CA']],
      ['LATAM', ['Mexico', 'MX', 'Brazil', 'BR', 'Argentina', 'AR', 'Chile', 'CL', 'Colombia', 'CO']],
      ['APAC', ['Japan', 'JP', 'China', 'CN', 'Singapore', 'SG', 'Australia', 'AU', 'India', 'IN', 'South Korea', 'KR', 'New Zealand', 'NZ']],
      ['MEA', ['United Arab Emirates', 'AE', 'Saudi Arabia', 'SA', 'Israel', 'IL', 'South Africa', 'ZA', 'Egypt', 'EG']],
    ] as const
  ).flatMap(([region, names]) => names.map((n) => [n, region])),
);

export const SalesforceMappingSchema = z
  .object({
    tier: z.array(TierSourceSchema).max(5).default(() => structuredClone(DEFAULT_TIER) as never),
    /**
     * Org-specific thresholds for deriving a tier when every tier field is empty. Without them the routing config's
     * tiering thresholds apply (recommended: one place for all CRMs).
     */
    tierThresholds: z
      .array(z.object({ tier: TierSchema, minLifetimeValue: z.number().finite().nonnegative() }))
      .max(4)
      .optional(),
    lifetimeValue: z.array(FieldPath).max(5).default(() => ['Account.Lifetime_Value__c']),
    /** The second money signal: core tiering falls back to it when lifetime value is empty (tiering.useAnnualRevenue). */
    annualRevenue: z.array(FieldPath).max(5).default(() => ['Account.AnnualRevenue']),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD')
      .default('USD'),
    product: z.array(Source).max(5).default(() => [{ field: 'Case.Product__c', passThrough: true }]),
    category: z.array(Source).max(5).default(() => DEFAULT_CATEGORY.map((s) => ({ ...s, values: { ...s.values }, passThrough: true }))),
    language: z.array(Source).max(5).default(() => [{ field: 'Case.Language__c', values: { ...DEFAULT_LANGUAGE_NAMES }, passThrough: true }]),
    region: z.array(Source).max(5).default(() => [{ field: 'Account.BillingCountry', values: { ...DEFAULT_REGIONS }, passThrough: true }]),
    /** A Percent field holds 70 for 70 %; scale 0.01 turns that into the 0..1 segment value. */
    churnRisk: z
      .object({ field: FieldPath, scale: z.number().positive().default(0.01) })
      .nullable()
      .default(() => ({ field: 'Account.Churn_Risk__c', scale: 0.01 })),
    changeEvents: z
      .object({
        /** Subscribe to /data/CaseChangeEvent for this org (instead of, or besides, the outbound message). */
        enabled: z.boolean().default(false),
        /** Route a Case again when a field that decides its segment changes (Type, Product, Language, Account...). */
        rerouteOnChange: z.boolean().default(false),
      })
      .default(() => ({ enabled: false, rerouteOnChange: false })),
  })
  .strict();

export type SalesforceMapping = z.infer<typeof SalesforceMappingSchema>;

export function defaultMapping(): SalesforceMapping {
  return SalesforceMappingSchema.parse({});
}

/** Every field path the mapping reads, in a stable order. */
export function mappedFieldPaths(m: SalesforceMapping): string[] {
  const paths = [
    ...m.tier.map((s) => s.field),
    ...m.lifetimeValue,
    ...m.annualRevenue,
    ...m.product.map((s) => s.field),
    ...m.category.map((s) => s.field),
    ...m.language.map((s) => s.field),
    ...m.region.map((s) => s.field),
    ...(m.churnRisk ? [m.churnRisk.field] : []),
  ];
  return [...new Set(paths)];
}

/** Case fields whose change can change the segment (CDC re-routing looks for these in changedFields). */
export function segmentCaseFields(m: SalesforceMapping): string[] {
  const own = mappedFieldPaths(m)
    .filter((p) => p.startsWith('Case.'))
    .map((p) => p.slice(5));
  const needsAccount = mappedFieldPaths(m).some((p) => p.startsWith('Account.'));
  const needsContact = mappedFieldPaths(m).some((p) => p.startsWith('Contact.'));
  return [...new Set([...own, ...(needsAccount ? ['AccountId'] : []), ...(needsContact ? ['ContactId'] : [])])];
}
