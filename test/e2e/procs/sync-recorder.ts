// Test only, imported first by the service child: with TIERLINE_TEST_SYNC_LOG set, every fsync and fdatasync that
// succeeds appends "<file id> <bytes>" to that file (fileIdOf: inode and birth time): how long the file was when the
// sync began, the part of it a power cut can no longer take. The power-cut test cuts the write-ahead log back to that
// after each kill (see cutToSynced). It must run before the store's module is evaluated (the store binds fdatasync
// when it loads), so it imports nothing of Tierline's (the log's file name is spelled out below for that reason).
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

/** A file's identity across renames (and not a later file that reuses its inode). */
export const fileIdOf = (s: fs.Stats) => `${s.ino}:${Math.round(s.birthtimeMs)}`;

const log = process.env.TIERLINE_TEST_SYNC_LOG;
if (log) {
  const stat = (fd: number) => {
    try {
      return fs.fstatSync(fd);
    } catch {
      return null;
    }
  };
  const note = (s: fs.Stats | null) => s && s.isFile() && fs.appendFileSync(log, `${fileIdOf(s)} ${s.size}\n`);
  // A slow disk (TIERLINE_TEST_SYNC_DELAY_MS): widens the moments in which changes are written but not yet synced, so
  // that random cuts land in them.
  const delayMs = Number(process.env.TIERLINE_TEST_SYNC_DELAY_MS ?? 0);
  const wrapAsync = (orig: typeof fs.fdatasync): typeof fs.fdatasync =>
    ((fd: number, cb: fs.NoParamCallback) => {
      const before = stat(fd);
      const sync = () =>
        orig(fd, (err) => {
          if (!err) note(before);
          cb(err);
        });
      if (delayMs > 0) setTimeout(sync, delayMs);
      else sync();
    }) as typeof fs.fdatasync;
  const wrapSync = (orig: typeof fs.fdatasyncSync): typeof fs.fdatasyncSync => (fd: number) => {
    const before = stat(fd);
    orig(fd);
    note(before);
  };
  fs.fdatasync = wrapAsync(fs.fdatasync);
  fs.fsync = wrapAsync(fs.fsync);
  fs.fdatasyncSync = wrapSync(fs.fdatasyncSync);
  fs.fsyncSync = wrapSync(fs.fsyncSync);
  syncBuiltinESMExports();
}

/**
 * What a power cut leaves of the store's write-ahead logs in dir, after its process was killed: each cut back to the
 * bytes an fsync had covered when it was last synced (nothing, if it never was). Other files are written to a temporary
 * name, synced and renamed, or synced before anything refers to them. Returns the bytes cut.
 */
export function cutToSynced(dir: string, syncLog: string): number {
  const synced = new Map<string, number>();
  const lines = fs.existsSync(syncLog) ? fs.readFileSync(syncLog, 'utf8').split('\n') : [];
  for (const l of lines) {
    const [id, size] = l.split(' ');
    if (id && size) synced.set(id, Number(size));
  }
  let cut = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!/^tierline\.wal(\.\d+)?$/.test(name)) continue;
    const path = `${dir}/${name}`;
    const s = fs.statSync(path);
    const keep = Math.min(s.size, synced.get(fileIdOf(s)) ?? 0);
    if (keep < s.size) {
      fs.truncateSync(path, keep);
      cut += s.size - keep;
    }
  }
  return cut;
}
