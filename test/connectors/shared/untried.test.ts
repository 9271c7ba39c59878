import { expect, it } from 'vitest';
import { createUntried } from '../../../connectors/shared/untried.ts';

it('remembers reserved keys until taken, and forgets the oldest beyond its bound (that call only searches first)', () => {
  const u = createUntried(2);
  u.add('a');
  u.add('b');
  u.add('c');
  expect([u.has('a', true), u.has('b', true), u.has('c', true)]).toEqual([false, true, true]);
  expect(u.take('b', true)).toBe(true);
  expect(u.take('b', true)).toBe(false); // once a call started, the key counts as tried
});

it('trusts a reservation only on the step’s first run: on a later claim another instance may have sent it', () => {
  const u = createUntried();
  u.add('a');
  expect(u.has('a', false)).toBe(false);
  expect(u.has('a', undefined)).toBe(false);
  expect(u.take('a', false)).toBe(false);
  expect(u.has('a', true)).toBe(false); // taken: tried from now on, whichever run comes next
});
