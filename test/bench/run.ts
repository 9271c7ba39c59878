// `npm run bench`: every performance figure Tierline promises, measured on this machine. A table by default;
// `--json` prints one object whose keys name the figure and its unit. `--only core,store` runs a subset.
import { benchCore } from './core.ts';

type Bench = { name: string; run: () => Promise<Record<string, number | boolean>> | Record<string, number | boolean> };

const benches: Bench[] = [{ name: 'core', run: benchCore }];

const args = process.argv.slice(2);
const json = args.includes('--json');
const onlyArg = args.find((a) => a.startsWith('--only='))?.slice(7);
const only = onlyArg ? new Set(onlyArg.split(',')) : null;

const results: Record<string, number | boolean> = {};
for (const b of benches) {
  if (only && !only.has(b.name)) continue;
  if (!json) process.stderr.write(`running ${b.name}…\n`);
  Object.assign(results, await b.run());
}
if (json) process.stdout.write(JSON.stringify(results) + '\n');
else {
  const w = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [k, v] of Object.entries(results)) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}
