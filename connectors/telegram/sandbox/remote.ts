// The Telegram sandbox across processes. The process-level tests run several Tierline processes (killed and restarted
// on purpose) against one sandbox world that must outlive them, so the world lives in the test process and the
// services reach it over loopback HTTP:
//
//   serveTelegramSandbox(sandbox)        in the process that holds the world: answers TL requests and streams updates
//   connectRemoteTelegramSandbox(url)    in a service process: a TelegramSandbox whose attach() plugs a RemoteConnection
//                                        under GramJS in place of its MTProtoSender, as SandboxConnection does in-process
//
// The TL stays real on both sides: the client sends the bytes GramJS serialised (RequestState.data), the host decodes
// them with GramJS, lets the world answer, and sends the answer's TL bytes back, which the client reads with the
// request's own readResult. Updates travel as TL bytes too and reach GramJS's update handler. Requests of one
// connection go out in order, batched while one batch is in flight; updates come through a long poll.
//
// What a dead process leaves behind is what Telegram leaves: its connection stops polling, updates meant for it are
// lost, and after idleMs the host forgets it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Api, type TelegramClient } from 'telegram';
import { _handleUpdate } from 'telegram/client/updates.js';
import { RPCMessageToError } from 'telegram/errors/index.js';
import { BinaryReader } from 'telegram/extensions/index.js';
import { RequestState } from 'telegram/network/RequestState.js';
import type { SandboxGroup } from '../../../server/contracts.ts';
import { realTimers } from '../clock.ts';
import type { TelegramSandbox } from './index.ts';
import { tlBytes, type SandboxConnection } from './sender.ts';
import type { Viewer } from './world.ts';

type Answer = { ok: string } | { error: { code: number; message: string } } | { drop: true } | { bad: string };
type Info = { serviceUserId: string; botUserId: string; botToken: string; groups: SandboxGroup[] };

// ------------------------------------------------------------------ host side (the process holding the world)

export type TelegramSandboxServer = {
  url: string;
  /** Connections seen, live now, requests answered and updates delivered (the tests print them). */
  stats(): { connections: number; live: number; requests: number; updates: number; lostUpdates: number };
  close(): Promise<void>;
};

class HostedViewer implements Viewer {
  readonly id: number;
  accountId: string | null;
  lastSeen = Date.now();
  queue: Buffer[] = [];
  waiter: ((updates: Buffer[]) => void) | null = null;
  closed = false;
  private readonly onSerialiseError: (err: unknown) => void;

  constructor(id: number, accountId: string | null, onSerialiseError: (err: unknown) => void) {
    this.id = id;
    this.accountId = accountId;
    this.onSerialiseError = onSerialiseError;
  }

  isUp(): boolean {
    return !this.closed;
  }

  push(updates: Api.TypeUpdates): void {
    let bytes: Buffer;
    try {
      bytes = tlBytes(updates);
    } catch (err) {
      this.onSerialiseError(err);
      return;
    }
    this.queue.push(bytes);
    this.wake();
  }

  wake(): void {
    if (!this.waiter || !this.queue.length) return;
    const w = this.waiter;
    this.waiter = null;
    w(this.queue.splice(0));
  }
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Serves a sandbox world on 127.0.0.1 (ephemeral port) to connections from other processes. A connection that has
 * not polled for idleMs (its process died) is dropped from the world.
 */
export async function serveTelegramSandbox(sandbox: TelegramSandbox, opts: { idleMs?: number; pollMs?: number; latencyMs?: number } = {}): Promise<TelegramSandboxServer> {
  const idleMs = opts.idleMs ?? 10_000;
  // Added to every answer, as SandboxConnection's latencyMs does in-process (the end-to-end benchmark's slow upstream).
  const latencyMs = opts.latencyMs ?? 0;
  const pollMs = opts.pollMs ?? 15_000;
  const conns = new Map<string, { viewer: HostedViewer; host: ReturnType<TelegramSandbox['host']> }>();
  const counts = { connections: 0, requests: 0, updates: 0, lostUpdates: 0 };
  let ids = 0;

  const connection = (id: string, as: string | null) => {
    let c = conns.get(id);
    if (!c) {
      // The user connection is the service account from the start; a bot connection signs in with its token.
      const viewer: HostedViewer = new HostedViewer(++ids, as === 'bot' ? null : sandbox.serviceUserId, (err) => c?.host.serialiseError(err));
      c = { viewer, host: sandbox.host(viewer) };
      conns.set(id, c);
      counts.connections += 1;
    }
    c.viewer.lastSeen = Date.now();
    return c;
  };
  const drop = (id: string) => {
    const c = conns.get(id);
    if (!c) return;
    conns.delete(id);
    c.viewer.closed = true;
    counts.lostUpdates += c.viewer.queue.length;
    c.viewer.waiter?.([]);
    c.host.close();
  };

  const answer = (c: { host: ReturnType<TelegramSandbox['host']> }, b64: string): Answer => {
    let req: { className: string } & Record<string, unknown>;
    try {
      // What the world receives is what GramJS serialised, decoded by GramJS.
      req = new BinaryReader(Buffer.from(b64, 'base64')).tgReadObject() as typeof req;
    } catch (err) {
      c.host.serialiseError(err);
      return { bad: `the sandbox could not read the request: ${err instanceof Error ? err.message : String(err)}` };
    }
    const out = c.host.handle(req);
    counts.requests += 1;
    if ('drop' in out) return { drop: true };
    if ('error' in out) return { error: out.error };
    try {
      return { ok: tlBytes(out.result).toString('base64') };
    } catch (err) {
      c.host.serialiseError(err);
      return { bad: `the sandbox could not serialise its answer to ${req.className}` };
    }
  };

  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const [, what, id] = u.pathname.split('/');
    const as = u.searchParams.get('as');
    (async () => {
      if (req.method === 'GET' && what === 'info') {
        const info: Info = { serviceUserId: sandbox.serviceUserId, botUserId: sandbox.botUserId, botToken: sandbox.botToken, groups: sandbox.groups() };
        return send(res, 200, info);
      }
      if (!id) return send(res, 404, { error: 'no such endpoint' });
      if (req.method === 'POST' && what === 'invoke') {
        const requests = (JSON.parse(await body(req)) as { requests: string[] }).requests;
        const c = connection(id, as);
        const answers = requests.map((r) => answer(c, r));
        if (latencyMs > 0) await new Promise((ok) => setTimeout(ok, latencyMs));
        return send(res, 200, { answers });
      }
      if (req.method === 'GET' && what === 'updates') {
        const c = connection(id, as);
        const v = c.viewer;
        v.waiter?.([]);
        const wait = Math.min(pollMs, Number(u.searchParams.get('wait') ?? pollMs));
        const updates = await new Promise<Buffer[]>((ok) => {
          const t = setTimeout(() => {
            if (v.waiter === done) v.waiter = null;
            ok([]);
          }, wait);
          const done = (x: Buffer[]) => {
            clearTimeout(t);
            ok(x);
          };
          v.waiter = done;
          res.on('close', () => {
            if (v.waiter === done) {
              v.waiter = null;
              clearTimeout(t);
              ok([]);
            }
          });
          v.wake();
        });
        v.lastSeen = Date.now();
        if (res.destroyed) {
          // The poller is gone (its process died mid-poll): these updates are lost, as on a cut connection.
          counts.lostUpdates += updates.length;
          return;
        }
        counts.updates += updates.length;
        return send(res, 200, { updates: updates.map((b) => b.toString('base64')) });
      }
      if (req.method === 'POST' && what === 'disconnect') {
        drop(id);
        return send(res, 200, { ok: true });
      }
      return send(res, 404, { error: 'no such endpoint' });
    })().catch((err) => {
      if (!res.headersSent) send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  server.keepAliveTimeout = pollMs + 5_000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const reaper = setInterval(() => {
    const now = Date.now();
    for (const [id, c] of conns) if (!c.viewer.waiter && now - c.viewer.lastSeen > idleMs) drop(id);
  }, Math.min(1_000, idleMs));
  reaper.unref();

  return {
    url,
    stats: () => ({ ...counts, live: conns.size }),
    async close() {
      clearInterval(reaper);
      for (const id of [...conns.keys()]) drop(id);
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

// ------------------------------------------------------------------ client side (a service process)

/** The private parts of TelegramClient a sender plugs into (GramJS 2.26), as in sender.ts. */
type ClientInternals = { _sender?: unknown; _connectedDeferred: { resolve(): void }; _loopStarted: boolean };

/** Takes the place of GramJS's MTProtoSender and talks to a world served by serveTelegramSandbox. */
export class RemoteConnection {
  readonly id = randomUUID();
  // Fields GramJS reads on its sender.
  userDisconnected = false;
  isReconnecting = false;
  _disconnected = false;
  readonly authKey = { getKey: () => undefined, setKey: async () => {} };

  private readonly url: string;
  private readonly as: 'user' | 'bot';
  private readonly client: TelegramClient;
  private queue: RequestState[] = [];
  private sending = false;
  /**
   * One controller per request in flight, aborted together on disconnect. Not one shared signal: fetch adds an abort
   * listener to the signal it is given and drops it only when the request is garbage collected, so a long-lived signal
   * collected thousands, and adding each next one (a duplicate check over the list) took 6% of the service's CPU in
   * the soak, growing with the run.
   */
  private readonly inFlight = new Set<AbortController>();

  constructor(opts: { url: string; client: TelegramClient; as: 'user' | 'bot' }) {
    this.url = opts.url;
    this.client = opts.client;
    this.as = opts.as;
  }

  install(): void {
    const c = this.client as unknown as ClientInternals;
    c._sender = this;
    // The keep-alive ping loop is for real sockets.
    c._loopStarted = true;
    c._connectedDeferred.resolve();
    void this.poll();
  }

  isConnected(): boolean {
    return !this.userDisconnected;
  }

  addStateToQueue(state: RequestState): void {
    if (this.userDisconnected) return state.reject(new Error('Disconnect'));
    this.queue.push(state);
    void this.flush();
  }

  async send(request: Api.AnyRequest): Promise<unknown> {
    const state = new RequestState(request);
    this.addStateToQueue(state);
    return state.promise;
  }

  async disconnect(): Promise<void> {
    if (this.userDisconnected) return;
    this.userDisconnected = true;
    this._disconnected = true;
    for (const c of this.inFlight) c.abort();
    for (const s of this.queue.splice(0)) s.reject(new Error('Disconnect'));
    await fetch(this.endpoint('disconnect'), { method: 'POST', signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
  }

  reconnect(): void {}

  private endpoint(what: string, extra = ''): string {
    return `${this.url}/${what}/${this.id}?as=${this.as}${extra}`;
  }

  /** Runs one request with its own abort signal, which disconnect() aborts. */
  private async request<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const c = new AbortController();
    this.inFlight.add(c);
    try {
      return await run(c.signal);
    } finally {
      this.inFlight.delete(c);
    }
  }

  /** One batch in flight at a time keeps this connection's requests in the order GramJS queued them. */
  private async flush(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length && !this.userDisconnected) {
        const batch = this.queue.splice(0, 256);
        let answers: Answer[];
        try {
          answers = await this.request(async (signal) => {
            const res = await fetch(this.endpoint('invoke'), {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ requests: batch.map((s) => Buffer.from(s.data).toString('base64')) }),
              signal,
            });
            if (res.status !== 200) throw new Error(`the sandbox answered HTTP ${res.status}`);
            return ((await res.json()) as { answers: Answer[] }).answers;
          });
        } catch (err) {
          // The world is unreachable: like a dropped socket, the caller's step fails and is retried.
          for (const s of batch) s.reject(err instanceof Error ? err : new Error(String(err)));
          continue;
        }
        batch.forEach((s, i) => this.settle(s, answers[i]!));
      }
    } finally {
      this.sending = false;
    }
  }

  private settle(state: RequestState, a: Answer): void {
    if ('drop' in a) return; // done by the world, the answer never arrives
    if ('bad' in a) return state.reject(new Error(a.bad));
    if ('error' in a) {
      const rpc = new BinaryReader(new Api.RpcError({ errorCode: a.error.code, errorMessage: a.error.message }).getBytes()).tgReadObject() as Api.RpcError;
      return state.reject(RPCMessageToError(rpc, state.request));
    }
    try {
      state.resolve(state.request.readResult(new BinaryReader(Buffer.from(a.ok, 'base64'))));
    } catch (err) {
      state.reject(err);
    }
  }

  private async poll(): Promise<void> {
    while (!this.userDisconnected) {
      let updates: string[];
      try {
        updates = await this.request(async (signal) => {
          const res = await fetch(this.endpoint('updates', '&wait=10000'), { signal });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          return ((await res.json()) as { updates: string[] }).updates;
        });
      } catch {
        if (this.userDisconnected) return;
        await new Promise((r) => setTimeout(r, 200).unref());
        continue;
      }
      for (const b of updates) {
        let decoded: unknown;
        try {
          decoded = new BinaryReader(Buffer.from(b, 'base64')).tgReadObject();
        } catch {
          continue; // the host counts serialisation errors on its side
        }
        _handleUpdate(this.client, decoded as Api.TypeUpdate);
      }
    }
  }
}

const elsewhere = (what: string) => () => {
  throw new Error(`sandbox: ${what} is not available through the remote bridge; drive and inspect the world in the process that serves it.`);
};

/**
 * A TelegramSandbox for a service process whose world lives elsewhere (serveTelegramSandbox). The connector needs
 * attach(), the bot token and the groups; the driver and inspection helpers belong to the process holding the world.
 */
export async function connectRemoteTelegramSandbox(url: string): Promise<TelegramSandbox> {
  const res = await fetch(`${url}/info`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`the remote Telegram sandbox at ${url} answered HTTP ${res.status}`);
  const info = (await res.json()) as Info;
  const fail = elsewhere;
  return {
    kind: 'telegram-sandbox',
    timers: realTimers(),
    serviceUserId: info.serviceUserId,
    botUserId: info.botUserId,
    botToken: info.botToken,
    attach(client, as) {
      const conn = new RemoteConnection({ url, client, as });
      conn.install();
      // Nothing reads the returned connection but in-process tests that drive it (cut, restore), which do not apply.
      return conn as unknown as SandboxConnection;
    },
    groups: () => info.groups.map((g) => ({ ...g })),
    topics: fail('topics()'),
    messages: fail('messages()'),
    agents: fail('agents()'),
    reply: async () => fail('reply()')(),
    closeTopic: async () => fail('closeTopic()')(),
    setOnline: async () => fail('setOnline()')(),
    addGroup: fail('addGroup()'),
    setForum: fail('setForum()'),
    setMember: fail('setMember()'),
    isMember: fail('isMember()'),
    setSlowMode: fail('setSlowMode()'),
    deleteTopic: fail('deleteTopic()'),
    injectError: fail('injectError()'),
    dropNextResponse: fail('dropNextResponse()'),
    cutConnections: fail('cutConnections()'),
    restoreConnections: fail('restoreConnections()'),
    allMessages: fail('allMessages()'),
    topicCreations: fail('topicCreations()'),
    stats: fail('stats()'),
    host: fail('host()'),
  };
}
