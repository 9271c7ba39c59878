// A port for a server a test or the bench starts later (a child process, PostgreSQL) and must name first, e.g. in a
// webhook URL. Chosen below the kernel's ephemeral range: a port merely checked and released inside that range can be
// handed to the next `listen(0)` or outgoing connection (a sandbox started in between), and the later listen then
// fails with EADDRINUSE. Below it, only a process asking for that exact port can take it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1_000 ? low : 32_768;
  } catch {
    return 32_768; // not Linux: the usual start of the range
  }
}

const canListen = (port: number) =>
  new Promise<boolean>((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
  });

export async function freePort(): Promise<number> {
  const high = ephemeralStart();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
    if (await canListen(port)) return port;
  }
  throw new Error(`No free port found between ${LOWEST} and ${high} after 50 tries; is something holding most of them?`);
}
