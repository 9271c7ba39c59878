// Idle-time collection: never while a request or step runs or just after one, at most once per lull, a full
// collection only when the old generation has grown enough.
import { describe, expect, it } from 'vitest';
import { startIdleGc } from '../../server/idle-gc.ts';

function rig(o: { idleMs?: number } = {}) {
  let t = 0;
  const heap = { young: 0, old: 50 << 20 };
  const calls: string[] = [];
  const idle = startIdleGc(
    {
      idleMs: o.idleMs ?? 1_000,
      majorGrowthBytes: 4 << 20,
      minorBytes: 512 << 10,
      now: () => t,
      gc: (opts) => {
        calls.push(opts?.type ?? 'full');
        heap.young = 0;
        if (opts?.type === 'major') heap.old = 50 << 20;
      },
    },
    () => ({ ...heap }),
  );
  return { idle, heap, calls, advance: (ms: number) => void (t += ms) };
}

describe('idle-time garbage collection', () => {
  it('collects the young generation once per lull, only after idleMs without activity', async () => {
    const r = rig();
    r.heap.young = 3 << 20;
    await r.idle.during(async () => {
      r.advance(5_000);
      expect(r.idle.tick()).toBeNull(); // a step is running
    });
    r.advance(999);
    expect(r.idle.tick()).toBeNull(); // it ended less than a second ago
    r.advance(1);
    expect(r.idle.tick()).toBe('minor');
    r.heap.young = 3 << 20; // timers and polls allocate a little in a lull: not a reason to collect again
    r.advance(10_000);
    expect(r.idle.tick()).toBeNull();
    await r.idle.during(async () => undefined);
    r.advance(1_000);
    expect(r.idle.tick()).toBe('minor');
    r.idle.stop();
  });

  it('runs a full collection only once the old generation has grown enough since the last one', async () => {
    const r = rig();
    r.heap.old += 3 << 20;
    r.heap.young = 1 << 20;
    r.advance(1_000);
    expect(r.idle.tick()).toBe('minor');
    await r.idle.during(async () => void (r.heap.old += 1 << 20));
    r.advance(1_000);
    expect(r.idle.tick()).toBe('major');
    expect(r.calls).toEqual(['minor', 'major']);
    r.idle.stop();
  });

  it('counts V8’s own full collections: growth is measured from the smallest old generation seen', async () => {
    const r = rig();
    r.heap.old = 40 << 20; // V8 collected on its own
    r.advance(1_000);
    expect(r.idle.tick()).toBeNull();
    await r.idle.during(async () => void (r.heap.old += 5 << 20));
    r.advance(1_000);
    expect(r.idle.tick()).toBe('major');
    r.idle.stop();
  });

  it('a request in progress postpones collection however long it takes', async () => {
    const r = rig();
    r.heap.young = 1 << 20;
    let finish!: () => void;
    const request = r.idle.during(() => new Promise<void>((ok) => (finish = ok)));
    r.advance(60_000);
    expect(r.idle.tick()).toBeNull();
    finish();
    await request;
    r.advance(1_000);
    expect(r.idle.tick()).toBe('minor');
    r.idle.stop();
  });

  it('does nothing when Node was started without --expose-gc', async () => {
    const idle = startIdleGc({ gc: null, now: () => 1e9 });
    expect(idle.enabled).toBe(false);
    expect(idle.tick()).toBeNull();
    expect(await idle.during(async () => 42)).toBe(42);
    idle.stop();
  });
});
