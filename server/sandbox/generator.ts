// Sandbox only: a clearly labelled sample-ticket generator, plus simulated agents that answer and resolve, so a
// new user sees the whole loop (routing, topics, first replies, resolutions, CRM write-back) within a minute of
// `npm start`. Tickets enter through the sandboxes exactly as real ones do (signed webhook / outbound message).
import type { Logger } from '../../core/ports.ts';
import type { SandboxForum } from '../contracts.ts';

export type TicketSource = { name: string; createSample(n: number): Promise<void> };

export type Generator = { paused(): boolean; pause(): void; resume(): void; stop(): void; created(): number };

const SUBJECTS = [
  'Login fails after password reset',
  'Invoice shows the wrong VAT rate',
  'API returns 429 on bulk import',
  'Cannot add a new seat',
  'Webhook deliveries delayed',
  'Export to CSV is empty',
  'SSO redirect loop',
  'Charged twice this month',
  'Mobile app crashes on start',
  'Dashboard loads slowly',
];

export function sampleSubject(n: number): string {
  return `${SUBJECTS[n % SUBJECTS.length]} (sample #${n})`;
}

export function startGenerator(opts: { sources: TicketSource[]; perMinute: number; logger: Logger; forum?: SandboxForum; agentsReply?: boolean }): Generator {
  let paused = opts.perMinute <= 0;
  let n = 0;
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => Promise<void>) => {
    const t = setInterval(() => {
      if (!paused) fn().catch((err) => opts.logger.warn('sample generator step failed', { error: err instanceof Error ? err.message : String(err) }));
    }, ms);
    t.unref();
    timers.push(t);
  };
  if (opts.perMinute > 0 && opts.sources.length) {
    every(Math.max(10, 60_000 / opts.perMinute), async () => {
      const src = opts.sources[n % opts.sources.length]!;
      n += 1;
      await src.createSample(n);
    });
  }
  // Simulated agents: answer topics that are a little old, resolve answered ones a little later.
  if (opts.forum && opts.agentsReply !== false) {
    const forum = opts.forum;
    const answered = new Map<string, number>();
    every(5_000, async () => {
      const now = Date.now();
      const agents = forum.agents();
      for (const g of forum.groups()) {
        for (const t of forum.topics(g.channelId)) {
          if (t.closed) continue;
          const key = `${g.channelId}/${t.topicId}`;
          const age = now - t.createdAt;
          if (!answered.has(key) && age > 20_000 && Math.random() < 0.3) {
            const pinned = forum.messages(g.channelId, t.topicId, 50).find((m) => m.pinned);
            const assignee = agents.find((a) => pinned?.text.includes(`Assigned to ${a.name}`)) ?? agents[0];
            if (!assignee) continue;
            await forum.reply(g.channelId, t.topicId, assignee.telegramUserId, 'Hi! I am on it (simulated agent reply).');
            answered.set(key, now);
          } else if (answered.has(key) && now - answered.get(key)! > 60_000 && Math.random() < 0.2) {
            const pinned = forum.messages(g.channelId, t.topicId, 50).find((m) => m.pinned);
            const assignee = agents.find((a) => pinned?.text.includes(`Assigned to ${a.name}`)) ?? agents[0];
            if (!assignee) continue;
            await forum.reply(g.channelId, t.topicId, assignee.telegramUserId, '/resolve');
            answered.delete(key);
          }
        }
      }
    });
  }
  opts.logger.info('sample ticket generator started', { perMinute: opts.perMinute, sources: opts.sources.map((s) => s.name), note: 'SANDBOX sample data, not real customers' });
  return {
    paused: () => paused,
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    stop: () => timers.forEach(clearInterval),
    created: () => n,
  };
}
