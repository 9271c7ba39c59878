// Pure parts: the 128-byte title cut, random ids, the pacer's scheduling.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { createManualClock } from '../../../connectors/telegram/clock.ts';
import { cutMessage, randomIdOf } from '../../../connectors/telegram/messenger.ts';
import { createPacer } from '../../../connectors/telegram/pacer.ts';
import { cutUtf8, topicTitleFor, utf8Length } from '../../../connectors/telegram/titles.ts';
import { silentLogger } from './harness.ts';

describe('topic titles', () => {
  it.each([
    ['short stays', 'Login fails', 'Login fails'],
    ['exactly 128 ASCII bytes stay', 'a'.repeat(128), 'a'.repeat(128)],
    ['129 ASCII bytes get cut with an ellipsis', 'a'.repeat(129), `${'a'.repeat(125)}…`],
    ['a 2-byte letter is not split', `${'a'.repeat(123)}ééé`, `${'a'.repeat(123)}é…`],
    ['a letter that would cross the limit is left out whole', `${'a'.repeat(124)}ééé`, `${'a'.repeat(124)}…`],
    ['an emoji is not split', `${'a'.repeat(122)}😀😀`, `${'a'.repeat(122)}…`],
  ])('%s', (_name, input, expected) => {
    expect(cutUtf8(input, 128)).toBe(expected);
  });

  it('never exceeds 128 bytes, never splits a character, and keeps the start of the title', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        const out = cutUtf8(s, 128);
        expect(utf8Length(out)).toBeLessThanOrEqual(128);
        expect(out.isWellFormed()).toBe(true);
        if (utf8Length(s) <= 128) expect(out).toBe(s);
        else expect(s.startsWith(out.slice(0, -1).trimEnd())).toBe(true);
      }),
    );
  });

  it('makes an empty or multi-line subject a valid one-line title', () => {
    expect(topicTitleFor('  \n ')).toBe('(no subject)');
    expect(topicTitleFor('[ENT] Acme\nLogin\tfails')).toBe('[ENT] Acme Login fails');
  });

  it('cuts messages to 4096 characters on a grapheme', () => {
    const out = cutMessage('👍'.repeat(3000));
    expect(out.length).toBeLessThanOrEqual(4096);
    expect(out.isWellFormed()).toBe(true);
  });

  it('keeps decimal int64 random ids and hashes anything else into one', () => {
    expect(randomIdOf('9223372036854775807')).toBe('9223372036854775807');
    expect(randomIdOf('-5')).toBe('-5');
    expect(randomIdOf('9223372036854775808')).toMatch(/^\d+$/);
    expect(randomIdOf('topic:abc')).toBe(randomIdOf('topic:abc'));
    expect(randomIdOf('0')).not.toBe('0');
  });
});

describe('pacer', () => {
  const flood = (s: number) => Object.assign(new Error(`FLOOD_WAIT_${s}`), { wait: s });
  const waitSecondsOf = (e: unknown) => (e instanceof Error && 'wait' in e ? (e as { wait: number }).wait : null);

  it('blocks only the lane that got a flood wait and retries the job there', async () => {
    const clock = createManualClock();
    const pacer = createPacer({ timers: clock, logger: silentLogger(), waitSecondsOf });
    const log: string[] = [];
    let first = true;
    const a = pacer.submit({ lane: 'a', priority: 1, send: true, label: 'a', run: async () => {
      if (first) {
        first = false;
        throw flood(30);
      }
      log.push(`a@${clock.now()}`);
    } });
    const b = pacer.submit({ lane: 'b', priority: 1, send: true, label: 'b', run: async () => void log.push(`b@${clock.now()}`) });
    const t0 = clock.now();
    await b;
    await clock.advance(30_000);
    await a;
    expect(log).toEqual([`b@${t0}`, `a@${t0 + 30_000}`]);
    expect(pacer.stats()).toMatchObject({ floodWaits: 1, surfaced: 0, queued: 0 });
    pacer.stop();
  });

  it('surfaces a wait longer than the maximum as rate_limited', async () => {
    const clock = createManualClock();
    const pacer = createPacer({ timers: clock, logger: silentLogger(), waitSecondsOf, maxWaitSeconds: 60 });
    const err = await pacer.submit({ lane: 'a', priority: 1, send: true, label: 'a', run: async () => Promise.reject(flood(61)) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'rate_limited', retryAfterMs: 61_000 });
    pacer.stop();
  });

  it('lets reads through while a lane waits for its send window', async () => {
    const clock = createManualClock();
    const pacer = createPacer({ timers: clock, logger: silentLogger(), waitSecondsOf, perGroupPerMinute: 1 });
    const order: string[] = [];
    const s1 = pacer.submit({ lane: 'a', priority: 9, send: true, label: 's1', run: async () => void order.push('s1') });
    const s2 = pacer.submit({ lane: 'a', priority: 1, send: true, label: 's2', run: async () => void order.push('s2') });
    const r = pacer.submit({ lane: 'a', priority: 0, send: false, label: 'r', run: async () => void order.push('r') });
    await s1;
    await r;
    expect(order).toEqual(['s1', 'r']);
    await clock.advance(60_000);
    await s2;
    expect(order).toEqual(['s1', 'r', 's2']);
    pacer.stop();
  });

  it('rejects what is still queued when stopped', async () => {
    const clock = createManualClock();
    const pacer = createPacer({ timers: clock, logger: silentLogger(), waitSecondsOf, perGroupPerMinute: 1 });
    await pacer.submit({ lane: 'a', priority: 1, send: true, label: 's1', run: async () => {} });
    const queued = pacer.submit({ lane: 'a', priority: 1, send: true, label: 's2', run: async () => {} });
    pacer.stop();
    await expect(queued).rejects.toMatchObject({ code: 'upstream' });
    expect(clock.pendingTimers()).toBe(0);
  });
});
