// The segment model: every attribute routing may look at, from whichever CRM the ticket came from.
// `null` always means "the CRM had no usable value"; routing never guesses silently, it records why.
import { z } from 'zod';

export const TIERS = ['free', 'standard', 'premium', 'enterprise'] as const;
export const TierSchema = z.enum(TIERS);
export type Tier = z.infer<typeof TierSchema>;

export const CRMS = ['hubspot', 'salesforce'] as const;
export const CrmIdSchema = z.enum(CRMS);
export type CrmId = z.infer<typeof CrmIdSchema>;

/** Where a ticket lives: the CRM, the account inside it (HubSpot portal id, Salesforce org id) and the record. */
export const TicketRefSchema = z.object({
  crm: CrmIdSchema,
  account: z.string().min(1),
  ticketId: z.string().min(1),
});
export type TicketRef = z.infer<typeof TicketRefSchema>;

export function ticketKey(ref: TicketRef): string {
  return `${ref.crm}:${ref.account}:${ref.ticketId}`;
}

export const MoneySchema = z.object({ amount: z.number().finite().nonnegative(), currency: z.string().length(3) });
export type Money = z.infer<typeof MoneySchema>;

export const SegmentSchema = z.object({
  tier: TierSchema.nullable(),
  lifetimeValue: MoneySchema.nullable(),
  /** Annual revenue is a second signal for deriving a tier when lifetime value is missing. */
  annualRevenue: z.number().finite().nonnegative().nullable(),
  product: z.string().min(1).nullable(),
  category: z.string().min(1).nullable(),
  language: z.string().min(2).nullable(),
  region: z.string().min(2).nullable(),
  churnRisk: z.number().min(0).max(1).nullable(),
  source: z.object({
    ref: TicketRefSchema,
    companyId: z.string().nullable(),
    contactId: z.string().nullable(),
  }),
});
export type Segment = z.infer<typeof SegmentSchema>;

export const SEGMENT_FIELDS = ['tier', 'lifetimeValue', 'product', 'category', 'language', 'region', 'churnRisk'] as const;
export type SegmentField = (typeof SEGMENT_FIELDS)[number];

export type SegmentIssue = { field: string; problem: 'missing' | 'invalid'; detail: string };

/**
 * Checks a segment a connector mapped. Missing attributes are normal (the CRM record is incomplete) and are reported,
 * not rejected; invalid ones (a negative lifetime value, a churn score of 7) are reported and then treated as missing.
 */
export function validateSegment(input: unknown): { segment: Segment; issues: SegmentIssue[] } {
  const raw = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const issues: SegmentIssue[] = [];
  const cleaned: Record<string, unknown> = { ...raw };
  const shape = SegmentSchema.shape as Record<string, z.ZodType>;
  for (const field of [...SEGMENT_FIELDS, 'annualRevenue'] as const) {
    const value = raw[field];
    if (value === undefined || value === null || value === '') {
      cleaned[field] = null;
      if (field !== 'annualRevenue') issues.push({ field, problem: 'missing', detail: `segment data missing: ${field}` });
      continue;
    }
    const parsed = shape[field]!.safeParse(value);
    if (!parsed.success) {
      cleaned[field] = null;
      issues.push({ field, problem: 'invalid', detail: `segment data invalid: ${field} (${JSON.stringify(value)})` });
    }
  }
  const segment = SegmentSchema.parse(cleaned);
  return { segment, issues };
}

export function missingFields(segment: Segment): SegmentField[] {
  return SEGMENT_FIELDS.filter((f) => segment[f] === null);
}

const TIER_LABEL: Record<Tier, string> = { free: 'FREE', standard: 'STD', premium: 'PRM', enterprise: 'ENT' };
export function tierLabel(tier: Tier | null): string {
  return tier ? TIER_LABEL[tier] : '???';
}

/** A short human label for the segment, e.g. "enterprise · billing · de · EU". */
export function segmentLabel(segment: Segment): string {
  return [segment.tier ?? 'unknown tier', segment.category, segment.language, segment.region].filter(Boolean).join(' · ');
}
