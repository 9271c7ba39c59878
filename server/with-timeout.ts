// A promise that settles as p does, or rejects with "no answer within …" once ms pass (the timer is cleared either
// way). p itself is not cancelled; callers whose p may reject later should have handled it.
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<T>((_, reject) => {
    t = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
    t.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}
