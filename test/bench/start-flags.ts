// The Node flags `npm start` runs the service with (package.json's start script), so the bench and the soak measure
// the service as shipped.
import { readFileSync } from 'node:fs';

export const START_FLAGS: string[] = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start
  .split(/\s+/)
  .filter((x) => x.startsWith('--'));
