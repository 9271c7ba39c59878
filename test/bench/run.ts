// `npm run bench`: every performance figure Tierline promises, measured on this machine. A table by default;
// `--json` prints one object whose keys name the figure and its unit. `--only core,store` runs a subset.
import { benchTelegramBurst } from '../connectors/telegram/bench.ts';
import { benchConsole } from './console.ts';
import { benchCore } from './core.ts';
import { benchE2e } from './e2e.ts';
import { benchPostgres } from './postgres.ts';
import { benchStore } from './store.ts';

type Bench = { name: string; run: () => Promise<Record<string, number | boolean>> | Record<string, number | boolean> };

const prefixed = (prefix: string, o: Record<string, number | boolean>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}.${k}`, v]));
const numArg = (name: string) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : undefined;
};

const benches: Bench[] = [
  { name: 'core', run: benchCore },
  { name: 'store', run: benchStore },
  { name: 'e2e', run: () => benchE2e({ rate: numArg('rate'), seconds: numArg('seconds'), tickets: numArg('tickets'), latencyMs: numArg('latency') }) },
  { name: 'telegram', run: async () => prefixed('telegram.burst', (await benchTelegramBurst()) as unknown as Record<string, number | boolean>) },
  { name: 'console', run: benchConsole },
  { name: 'postgres', run: () => benchPostgres() },
];

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
