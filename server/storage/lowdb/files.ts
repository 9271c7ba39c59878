// File primitives for the lowdb store: the durable JSON adapter for lowdb's Low, a line scanner for JSONL files that
// reports byte offsets (the history index points into the dated files by offset), positional reads, and the
// single-owner lock file.
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';
import { AppError } from '../../../core/errors.ts';

/** The name a file is written under before it is renamed into place. */
export const tempNameOf = (name: string): string => `.${name}.tmp`;

/** fsync a directory, so a rename or a new file in it survives a power cut (a no-op where the OS refuses). */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems do not allow fsync on a directory; the rename itself is still atomic.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * The JSON text of `data` (exactly JSON.stringify's) in pieces of about `size` characters: the arrays of a top-level
 * object are cut between their elements. A 30 MB live file stringified in one go held the event loop for 250–300 ms at
 * every compaction; in pieces the longest hold measured 13–56 ms, and webhooks are answered between them.
 */
export function* jsonPieces(data: unknown, size = 1 << 20): Generator<string> {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || typeof (data as { toJSON?: unknown }).toJSON === 'function') {
    yield JSON.stringify(data) ?? 'null';
    return;
  }
  let buf = '{';
  let first = true;
  for (const [k, v] of Object.entries(data)) {
    const whole = Array.isArray(v) ? null : JSON.stringify(v);
    if (!Array.isArray(v) && whole === undefined) continue; // as JSON.stringify leaves out undefined and functions
    buf += `${first ? '' : ','}${JSON.stringify(k)}:`;
    first = false;
    if (Array.isArray(v)) {
      buf += '[';
      for (let i = 0; i < v.length; i++) {
        buf += `${i ? ',' : ''}${JSON.stringify(v[i]) ?? 'null'}`;
        if (buf.length >= size) {
          yield buf;
          buf = '';
        }
      }
      buf += ']';
    } else buf += whole;
    if (buf.length >= size) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}}`;
}

/**
 * A lowdb adapter that writes the whole document atomically and durably: temp file, fsync, rename over the old
 * file, fsync the directory. lowdb's own JSONFile (steno) renames without fsync, which survives a process kill but
 * not a power cut. The text is produced in pieces between writes (jsonPieces), so the caller must not change the
 * document until write() resolves: the lowdb store hands it a snapshot of records that are replaced, never changed.
 */
export class DurableJsonFile<T> implements Adapter<T> {
  readonly #file: string;
  readonly #temp: string;
  readonly #describe: string;

  constructor(file: string, describe: string) {
    this.#file = file;
    this.#temp = join(dirname(file), tempNameOf(basename(file)));
    this.#describe = describe;
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      // Writes are temp + rename, so a torn file means something other than Tierline wrote it: never start empty over it.
      throw new AppError('misconfigured', `${this.#describe} (${this.#file}) is not valid JSON, so Tierline did not start rather than lose its state. Restore the file from a backup (or move it away to start empty) and start again.`);
    }
  }

  async write(data: T): Promise<void> {
    const fh = await open(this.#temp, 'w');
    try {
      // writeFile on an open handle writes all of each piece at the current position, however the OS splits it.
      for (const piece of jsonPieces(data)) await fh.writeFile(piece, 'utf8');
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(this.#temp, this.#file);
    fsyncDir(dirname(this.#file));
  }
}

export type LineVisitor = (line: Buffer, offset: number) => void;

/**
 * Calls visit for every complete line ("\n"-terminated) of a file, with the line's bytes (without the newline) and
 * its byte offset. Returns the offset just past the last complete line: anything after it is a torn tail.
 * Reads in chunks, so a large history file never needs to sit in memory whole.
 */
export async function scanLines(file: string, visit: LineVisitor, chunkBytes = 8 << 20): Promise<{ end: number; size: number }> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    let carry: Buffer = Buffer.alloc(0);
    let carryAt = 0;
    let pos = 0;
    while (pos < size) {
      const want = Math.min(chunkBytes, size - pos);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) break;
        if (nl > start) visit(buf.subarray(start, nl), carryAt + start);
        start = nl + 1;
      }
      carry = Buffer.from(buf.subarray(start));
      carryAt += start;
    }
    return { end: carryAt, size };
  } finally {
    await fh.close();
  }
}

/** Reads byte ranges of one file (the locations the history index keeps), in the order asked. */
export async function readRanges(file: string, ranges: readonly { off: number; len: number }[]): Promise<Buffer[]> {
  const fh = await open(file, 'r');
  try {
    const out: Buffer[] = new Array(ranges.length);
    const step = 256;
    for (let i = 0; i < ranges.length; i += step) {
      await Promise.all(
        ranges.slice(i, i + step).map(async (r, j) => {
          const b = Buffer.allocUnsafe(r.len);
          const { bytesRead } = await fh.read(b, 0, r.len, r.off);
          out[i + j] = b.subarray(0, bytesRead);
        }),
      );
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * Appends lines to a file and fsyncs it. Returns the byte offset each line landed at. If the file ends in a torn
 * line (a crash or a full disk during an earlier append), a newline goes first so the new lines stay readable.
 */
export async function appendLines(file: string, lines: readonly string[]): Promise<{ offsets: number[]; lengths: number[]; created: boolean }> {
  const fh = await open(file, 'a+');
  try {
    const size = (await fh.stat()).size;
    let base = size;
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 10) {
        prefix = '\n';
        base += 1;
      }
    }
    const offsets: number[] = [];
    const lengths: number[] = [];
    let at = base;
    for (const l of lines) {
      const n = Buffer.byteLength(l);
      offsets.push(at);
      lengths.push(n);
      at += n + 1;
    }
    await fh.writeFile(prefix + lines.join('\n') + '\n', 'utf8');
    await fh.datasync();
    return { offsets, lengths, created: size === 0 };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------- the lock file

type LockInfo = { pid: number; host: string; startedAt: string };

/** Data directories this process holds, so a second open in the same process is refused too. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockInfo>;
    return typeof raw.pid === 'number' ? { pid: raw.pid, host: String(raw.host ?? ''), startedAt: String(raw.startedAt ?? '') } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the data directory for this process: one process owns a lowdb directory, because its write-ahead log and
 * in-memory indexes assume no other writer. A lock left by a process that is gone (killed, crashed, the container
 * restarted) is taken over; a live holder makes the second open fail with the holder's pid.
 */
export function acquireLock(dir: string, file: string): () => void {
  if (held.has(dir)) throw new AppError('conflict', `The data directory ${dir} is already open in this process; open it once and share the store.`);
  const me: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err;
    }
    const other = readLock(file);
    // Our own pid in a lock we do not hold is a previous life of this container (pids restart at 1).
    const otherHost = other !== null && other.host !== '' && other.host !== me.host;
    if (other && other.pid !== process.pid && (otherHost || alive(other.pid)))
      throw new AppError(
        'conflict',
        `The data directory ${dir} is in use by another Tierline process (pid ${other.pid}${other.host ? ` on ${other.host}` : ''}, since ${other.startedAt || 'unknown'}). Stop that process, or give this one its own DATA_DIR. If no Tierline process uses it, delete ${file} and start again.`,
      );
    try {
      unlinkSync(file);
    } catch {
      // Another process removed the stale lock first; the next attempt sees whose lock is there now.
    }
  }
  held.add(dir);
  fsyncDir(dir);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.delete(dir);
    const now = readLock(file);
    if (now && now.pid === me.pid && now.startedAt === me.startedAt) {
      try {
        unlinkSync(file);
      } catch {
        // Already gone: nothing to release.
      }
    }
  };
}
