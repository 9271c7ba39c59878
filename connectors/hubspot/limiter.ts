// One token bucket per portal: HubSpot's limit (100-190 requests per 10 s for private apps, 110 for OAuth apps) is
// shared by everything that portal's token does, so every HTTP request Tierline sends for a portal takes a token
// here first. A 429 empties the bucket and pauses it (for Retry-After, else the rest of the window).
export type LimiterTime = { now: () => number; sleep: (ms: number) => Promise<void> };

export type Bucket = {
  take(): Promise<void>;
  /** Stops handing out tokens for ms (after a 429). */
  pause(ms: number): void;
  headroom(): { available: number; capacity: number; windowMs: number; pausedForMs: number };
};

export function createBucket(o: { capacity: number; windowMs: number } & LimiterTime): Bucket {
  const rate = o.capacity / o.windowMs; // tokens per ms
  let tokens = o.capacity;
  let last = o.now();
  let pausedUntil = 0;
  let chain: Promise<void> = Promise.resolve();

  function refill(): void {
    const t = o.now();
    if (t > last) tokens = Math.min(o.capacity, tokens + (t - last) * rate);
    last = Math.max(last, t);
  }

  return {
    take() {
      // Waiters queue in order, so a burst is spread over the window instead of racing for refills.
      const mine = chain.then(async () => {
        for (;;) {
          refill();
          const t = o.now();
          if (pausedUntil > t) {
            await o.sleep(pausedUntil - t);
            continue;
          }
          if (tokens >= 1) {
            tokens -= 1;
            return;
          }
          await o.sleep(Math.max(1, Math.ceil((1 - tokens) / rate)));
        }
      });
      chain = mine;
      return mine;
    },
    pause(ms) {
      refill();
      tokens = 0;
      pausedUntil = Math.max(pausedUntil, o.now() + ms);
    },
    headroom() {
      refill();
      return { available: Math.floor(tokens), capacity: o.capacity, windowMs: o.windowMs, pausedForMs: Math.max(0, pausedUntil - o.now()) };
    },
  };
}
