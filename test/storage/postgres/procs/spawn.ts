// Starts several child processes, waits until each says "ready" (store open, migrations done), then releases
// them together with "go", so concurrent phases really overlap. Resolves with each child's result line and exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type ChildOutcome<T> = { result: T | null; code: number | null; signal: NodeJS.Signals | null; stderr: string };

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
export const DECIDER = here('./decider.ts');
export const CLAIMER = here('./claimer.ts');

export async function runTogether<T>(script: string, options: unknown[]): Promise<ChildOutcome<T>[]> {
  const children: { proc: ChildProcess; out: string; err: string; ready: Promise<void>; done: Promise<ChildOutcome<T>> }[] = [];
  for (const o of options) {
    const proc = spawn(process.execPath, [script, JSON.stringify(o)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = { proc, out: '', err: '' } as (typeof children)[number];
    let markReady!: () => void;
    c.ready = new Promise<void>((r) => (markReady = r));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      c.out += d;
      if (c.out.includes('ready\n')) markReady();
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (c.err += d));
    c.done = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        markReady(); // a child that died before "ready" must not hang the others
        const last = c.out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
        resolve({ result: last ? (JSON.parse(last) as T) : null, code, signal, stderr: c.err });
      }),
    );
    children.push(c);
  }
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.proc.stdin!.end('go\n');
  return Promise.all(children.map((c) => c.done));
}
