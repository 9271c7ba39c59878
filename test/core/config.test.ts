import { describe, expect, it } from 'vitest';
import { ConfigError, parseRoutingConfig } from '../../core/config.ts';

const base = () => ({
  rules: [{ id: 'r1', when: [], queue: 'a' }],
  defaultQueue: 'a',
  queues: [
    { id: 'a', name: 'A', strategy: 'round_robin', agents: ['x'], slaFirstResponseSeconds: 60 } as Record<string, unknown>,
    { id: 'b', name: 'B', strategy: 'round_robin', agents: ['x'], slaFirstResponseSeconds: 60 } as Record<string, unknown>,
    { id: 'c', name: 'C', strategy: 'round_robin', agents: [], slaFirstResponseSeconds: 60 } as Record<string, unknown>,
  ],
  agents: [{ id: 'x', name: 'X' }] as Record<string, unknown>[],
  tiering: undefined as unknown,
});

function problems(mutate: (c: ReturnType<typeof base>) => void) {
  const c = base();
  mutate(c);
  try {
    parseRoutingConfig(c);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('config was accepted');
}

describe('configuration is rejected with the path and the fix', () => {
  it.each([
    { name: 'unknown queue in a rule', mutate: (c: ReturnType<typeof base>) => (c.rules[0]!.queue = 'nope'), path: 'rules[0].queue', msg: /unknown queue "nope"/ },
    { name: 'unknown default queue', mutate: (c: ReturnType<typeof base>) => (c.defaultQueue = 'zz'), path: 'defaultQueue', msg: /unknown queue/ },
    { name: 'unknown agent in a queue', mutate: (c: ReturnType<typeof base>) => (c.queues[2]!.agents = ['ghost']), path: 'queues[2].agents[0]', msg: /unknown agent "ghost"/ },
    { name: 'overflow into itself', mutate: (c: ReturnType<typeof base>) => (c.queues[0]!.overflow = { to: 'a' }), path: 'queues[0].overflow.to', msg: /overflows into itself/ },
    {
      name: 'overflow cycle',
      mutate: (c: ReturnType<typeof base>) => {
        c.queues[0]!.overflow = { to: 'b' };
        c.queues[1]!.overflow = { to: 'c' };
        c.queues[2]!.overflow = { to: 'a' };
      },
      path: 'queues[0].overflow.to',
      msg: /overflow cycle a -> b -> c -> a/,
    },
    {
      name: 'agent in two queues with conflicting capacity',
      mutate: (c: ReturnType<typeof base>) => (c.queues[1]!.agents = [{ id: 'x', capacity: 9 }]),
      path: 'queues[1].agents[0]',
      msg: /capacity 9 here but 5 in queue "a"/,
    },
    {
      name: 'negative threshold',
      mutate: (c: ReturnType<typeof base>) => (c.tiering = { thresholds: [{ tier: 'enterprise', minLifetimeValue: -1 }] }),
      path: 'tiering.thresholds[0].minLifetimeValue',
      msg: /cannot be negative; use 0 for the lowest tier/,
    },
    {
      name: 'thresholds out of order',
      mutate: (c: ReturnType<typeof base>) => (c.tiering = { thresholds: [{ tier: 'free', minLifetimeValue: 0 }, { tier: 'enterprise', minLifetimeValue: 10 }] }),
      path: 'tiering.thresholds[1].minLifetimeValue',
      msg: /highest to lowest/,
    },
    { name: 'learner not a member', mutate: (c: ReturnType<typeof base>) => (c.queues[2]!.rotation = { share: 0.1, learners: ['x'] }), path: 'queues[2].rotation.learners[0]', msg: /not an agent of queue "c"/ },
    { name: 'duplicate queue id', mutate: (c: ReturnType<typeof base>) => (c.queues[2]!.id = 'a'), path: 'queues[2].id', msg: /duplicate id "a"/ },
    { name: 'wrong type', mutate: (c: ReturnType<typeof base>) => (c.queues[0]!.slaFirstResponseSeconds = 'soon'), path: 'queues[0].slaFirstResponseSeconds', msg: /./ },
  ])('$name', ({ mutate, path, msg }) => {
    const p = problems(mutate);
    const hit = p.find((x) => x.path === path);
    expect(hit, JSON.stringify(p)).toBeDefined();
    expect(hit!.message).toMatch(msg);
  });

  it('accepts overflow chains', () => {
    const c = base();
    c.queues[0]!.overflow = { to: 'b', afterSeconds: 60 };
    c.queues[1]!.overflow = { to: 'c' };
    expect(parseRoutingConfig(c).queues[1]!.overflow!.to).toBe('c');
  });

  it('the error message lists every problem and says the last good config stays', () => {
    const c = base();
    c.rules[0]!.queue = 'nope';
    c.defaultQueue = 'zz';
    expect(() => parseRoutingConfig(c)).toThrow(/last good configuration stays in force[\s\S]*defaultQueue[\s\S]*rules\[0\]\.queue/);
  });
});
