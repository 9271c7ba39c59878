// How long a connector keeps the idempotency record of work that has finished (a topic created, a note written).
// Such a record only matters while the step that did the work could still run again: a crash before the step was
// marked done, or an operator retrying a dead letter. A day covers both with room; after it the record expires
// (Store.kvPut ttlMs), so these records do not grow with every ticket ever routed. Records of work still in progress
// never expire.
export const FINISHED_WORK_TTL_MS = 24 * 3600_000;
