// Records a connector reserved with the pipeline's commit (see MessengerPort.reserveTopic) and has not sent yet. Only
// this process can know that nothing was sent for them, so the set lives in memory, and that knowledge holds only while
// no one else can have run the step: it answers yes only on the step's first run anywhere (its job's first claim,
// `firstRun`). After a restart, on another instance, on a later claim, or once a call has started, the connector looks
// for an earlier attempt's result before creating anything.

/** Bounded: a key that falls out only costs its call a search first. */
const MAX_UNTRIED = 10_000;

export type Untried = {
  add(key: string): void;
  /** Nothing can have been sent for key: reserved here, not tried since, and the step is on its first run anywhere. */
  has(key: string, firstRun: boolean | undefined): boolean;
  /** From now on the key counts as tried; what has() said until now. */
  take(key: string, firstRun: boolean | undefined): boolean;
};

export function createUntried(max = MAX_UNTRIED): Untried {
  const keys = new Set<string>();
  return {
    add(key) {
      if (keys.size >= max) keys.delete(keys.values().next().value!);
      keys.add(key);
    },
    has: (key, firstRun) => firstRun === true && keys.has(key),
    take: (key, firstRun) => keys.delete(key) && firstRun === true,
  };
}
