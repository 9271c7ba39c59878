import { expect, it } from 'vitest';
import { createUntried } from '../../../connectors/shared/untried.ts';

it('remembers reserved keys until taken, and forgets the oldest beyond its bound (that call only searches first)', () => {
  const u = createUntried(2);
  u.add('a');
  u.add('b');
  u.add('c');
  expect([u.has('a'), u.has('b'), u.has('c')]).toEqual([false, true, true]);
  expect(u.take('b')).toBe(true);
  expect(u.take('b')).toBe(false); // once a call started, the key counts as tried
});
