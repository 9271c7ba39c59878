// Records a connector reserved with the pipeline's commit (see MessengerPort.reserveTopic) and has not sent yet. Only
// this process can know that nothing was sent for them, so the set lives in memory, and it holds only while no one else
// can have run the step: the connector trusts it on the step's first run anywhere (its job's first claim, `firstRun`).
// After a restart, on another instance, on a later claim, or once a call has started, the connector looks for an
// earlier attempt's result before creating anything.

/** Bounded: a key that falls out only costs its call a search first. */
const MAX_UNTRIED = 10_000;

export type Untried = {
  add(key: string): void;
  has(key: string): boolean;
  /** From now on the key counts as tried; true if it was untried until now. */
  take(key: string): boolean;
};

export function createUntried(max = MAX_UNTRIED): Untried {
  const keys = new Set<string>();
  return {
    add(key) {
      if (keys.size >= max) keys.delete(keys.values().next().value!);
      keys.add(key);
    },
    has: (key) => keys.has(key),
    take: (key) => keys.delete(key),
  };
}
