// The routing configuration a new install starts with (and the sandbox runs): realistic tiers, queues and agents,
// meant to be edited in the console. Telegram user ids match the agents seeded in the Telegram sandbox.
import type { RoutingConfigInput } from '../../core/config.ts';

export const SAMPLE_CONFIG: RoutingConfigInput = {
  tiering: {
    thresholds: [
      { tier: 'enterprise', minLifetimeValue: 100_000 },
      { tier: 'premium', minLifetimeValue: 20_000 },
      { tier: 'standard', minLifetimeValue: 1_000 },
      { tier: 'free', minLifetimeValue: 0 },
    ],
    useAnnualRevenue: true,
  },
  rules: [
    { id: 'enterprise', description: 'Enterprise accounts get the VIP desk', when: [{ field: 'tier', op: 'equals', value: 'enterprise' }], queue: 'vip' },
    { id: 'premium-at-risk', description: 'Premium accounts likely to churn', when: [{ field: 'tier', op: 'equals', value: 'premium' }, { field: 'churnRisk', op: 'gte', value: 0.7 }], queue: 'vip' },
    { id: 'premium', when: [{ field: 'tier', op: 'equals', value: 'premium' }], queue: 'priority' },
    { id: 'api-technical', description: 'API problems need an API specialist', when: [{ field: 'product', op: 'in', value: ['api', 'API'] }, { field: 'category', op: 'in', value: ['technical', 'PRODUCT_ISSUE'] }], queue: 'technical', skills: ['api'] },
    { id: 'billing', when: [{ field: 'category', op: 'in', value: ['billing', 'BILLING_ISSUE'] }], queue: 'billing' },
    { id: 'german', when: [{ field: 'language', op: 'equals', value: 'de' }], queue: 'dach' },
  ],
  defaultQueue: 'general',
  queues: [
    {
      id: 'vip',
      name: 'VIP desk',
      strategy: 'least_busy',
      agents: ['alice', 'bruno', 'chen', 'dana'],
      slaFirstResponseSeconds: 15 * 60,
      overflow: { to: 'priority', afterSeconds: 10 * 60 },
      escalation: { mention: 'alice' },
      rotation: { share: 0.1, learners: ['dana'] },
      groups: ['vip'],
    },
    { id: 'priority', name: 'Priority', strategy: 'least_busy', agents: ['bruno', 'emma', 'farid'], slaFirstResponseSeconds: 60 * 60, overflow: { to: 'general' }, escalation: { mention: 'bruno' }, groups: ['support-1'] },
    { id: 'technical', name: 'Technical', strategy: 'skills', agents: ['chen', 'farid', 'gus'], slaFirstResponseSeconds: 2 * 3600, overflow: { to: 'general' }, groups: ['support-1', 'support-2'] },
    { id: 'billing', name: 'Billing', strategy: 'round_robin', agents: ['emma', 'hana'], slaFirstResponseSeconds: 4 * 3600, overflow: { to: 'general' }, groups: ['support-2'] },
    { id: 'dach', name: 'DACH', strategy: 'round_robin', agents: ['gus', 'hana'], slaFirstResponseSeconds: 4 * 3600, overflow: { to: 'general' }, groups: ['support-2'] },
    { id: 'general', name: 'General', strategy: 'round_robin', agents: ['emma', 'farid', 'gus', 'hana', 'ivan'], slaFirstResponseSeconds: 8 * 3600, escalation: { overflowTo: 'priority' }, groups: ['support-1', 'support-2'] },
  ],
  agents: [
    { id: 'alice', name: 'Alice Meyer', telegramUserId: '7000000001', capacity: 6, skills: ['api', 'sso', 'billing'], languages: ['en', 'de'] },
    { id: 'bruno', name: 'Bruno Costa', telegramUserId: '7000000002', capacity: 6, skills: ['billing', 'sso'], languages: ['en', 'pt', 'es'] },
    { id: 'chen', name: 'Chen Wei', telegramUserId: '7000000003', capacity: 5, skills: ['api', 'integrations'], languages: ['en', 'zh'] },
    { id: 'dana', name: 'Dana Levi', telegramUserId: '7000000004', capacity: 4, skills: ['api'], languages: ['en'] },
    { id: 'emma', name: 'Emma Dubois', telegramUserId: '7000000005', capacity: 8, skills: ['billing'], languages: ['en', 'fr'] },
    { id: 'farid', name: 'Farid Haddad', telegramUserId: '7000000006', capacity: 8, skills: ['api', 'integrations'], languages: ['en', 'ar', 'fr'] },
    { id: 'gus', name: 'Gus Schneider', telegramUserId: '7000000007', capacity: 8, skills: ['api'], languages: ['de', 'en'] },
    { id: 'hana', name: 'Hana Novak', telegramUserId: '7000000008', capacity: 8, skills: ['billing'], languages: ['de', 'cs', 'en'] },
    { id: 'ivan', name: 'Ivan Petrov', telegramUserId: '7000000009', capacity: 10, skills: [], languages: ['en', 'ru'] },
  ],
  groups: [
    { id: 'vip', title: 'Tierline · VIP desk' },
    { id: 'support-1', title: 'Tierline · Support 1' },
    { id: 'support-2', title: 'Tierline · Support 2' },
  ],
};
