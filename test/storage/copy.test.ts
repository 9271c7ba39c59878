import { describe, expect, it } from 'vitest';
import { copyData } from '../../server/storage/copy.ts';

describe('copyData (what the stores hand out)', () => {
  it('copies nested objects and arrays so that changing the copy leaves the original as it was', () => {
    const original = { key: 't1', segment: { tier: 'premium', missing: ['region'] }, topic: null, history: [{ kind: 'routed', at: 1 }], n: 0, ok: false, note: undefined };
    const copy = copyData(original);
    expect(copy).toStrictEqual(original);
    copy.segment.tier = 'free';
    copy.segment.missing.push('language');
    copy.history[0]!.at = 2;
    expect(original.segment).toEqual({ tier: 'premium', missing: ['region'] });
    expect(original.history[0]!.at).toBe(1);
  });

  it('copies a "__proto__" key from parsed JSON as data, without changing the copy\'s prototype', () => {
    const parsed = JSON.parse('{"fields":{"__proto__":{"polluted":true},"plan":"gold"}}') as { fields: Record<string, unknown> };
    const copy = copyData(parsed);
    expect(Object.getPrototypeOf(copy.fields)).toBe(Object.prototype);
    expect((copy.fields as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(copy.fields)).toEqual(['__proto__', 'plan']);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
  });

  it('copies values that are not plain data (a Map, a Date) the way structuredClone does', () => {
    const original = { at: new Date(5), seen: new Map([['a', 1]]) };
    const copy = copyData(original);
    expect(copy.at).not.toBe(original.at);
    expect(copy.at.getTime()).toBe(5);
    copy.seen.set('b', 2);
    expect(original.seen.size).toBe(1);
  });
});
